"""File and stream formats (`feast.data_format`): `ParquetFormat`, `JsonFormat`, `AvroFormat`."""

from __future__ import annotations

from typing import Any, ClassVar

from repast.errors import RepoValidationError

__all__ = [
    "AvroFormat",
    "DeltaFormat",
    "FileFormat",
    "JsonFormat",
    "ParquetFormat",
    "ProtoFormat",
    "StreamFormat",
    "file_format_from_dict",
    "stream_format_from_dict",
]


class _Format:
    """A format is a tag plus at most one string option; equal when both are equal."""

    type_name: ClassVar[str]
    option: ClassVar[str | None] = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type_name}
        if self.option is not None:
            d[self.option] = getattr(self, self.option)
        return d

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Format):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.to_dict().items()))

    def __repr__(self) -> str:
        args = "" if self.option is None else f"{getattr(self, self.option)!r}"
        return f"{type(self).__name__}({args})"


def _schema_json(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise RepoValidationError(f"{kind}: schema_json must be a string, got {value!r}")
    return value


class FileFormat(_Format):
    """How a FileSource's files are laid out."""


class ParquetFormat(FileFormat):
    type_name = "parquet"


class DeltaFormat(FileFormat):
    type_name = "delta"


class StreamFormat(_Format):
    """How one stream message (a Kafka or Kinesis record) is encoded."""


class JsonFormat(StreamFormat):
    """One JSON object per message; `schema_json` is a Spark DDL string of its fields."""

    type_name = "json"
    option = "schema_json"

    def __init__(self, schema_json: str) -> None:
        self.schema_json = _schema_json("JsonFormat", schema_json)


class AvroFormat(StreamFormat):
    """One Avro record per message; `schema_json` is the Avro schema as JSON."""

    type_name = "avro"
    option = "schema_json"

    def __init__(self, schema_json: str) -> None:
        self.schema_json = _schema_json("AvroFormat", schema_json)


class ProtoFormat(StreamFormat):
    """One protobuf message per record; `class_path` names the generated class."""

    type_name = "proto"
    option = "class_path"

    def __init__(self, class_path: str) -> None:
        self.class_path = _schema_json("ProtoFormat", class_path)


def file_format_from_dict(d: dict[str, Any]) -> FileFormat:
    kind = d.get("type")
    if kind == "parquet":
        return ParquetFormat()
    if kind == "delta":
        return DeltaFormat()
    raise RepoValidationError(f"unknown file format {kind!r} (known: parquet, delta)")


def stream_format_from_dict(d: dict[str, Any]) -> StreamFormat:
    kind = d.get("type")
    if kind == "json":
        return JsonFormat(d["schema_json"])
    if kind == "avro":
        return AvroFormat(d["schema_json"])
    if kind == "proto":
        return ProtoFormat(d["class_path"])
    raise RepoValidationError(f"unknown stream format {kind!r} (known: json, avro, proto)")
