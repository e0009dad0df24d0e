"""Data sources (`feast.data_source`): where a view's rows come from.

Batch: `FileSource` (Parquet files, local or `s3://`), `SparkSource` (a Spark table, query or
path, read by the `spark` offline store and batch engine; defining one needs no pyspark).
Stream: `PushSource` (rows pushed through the SDK or HTTP), `KafkaSource`, `KinesisSource`;
each stream source names a
`batch_source` that holds the same rows for training and materialization.
`RequestSource` declares values that arrive with the online request (for ODFVs).

Every source serializes with a `"type"` discriminator; `data_source_from_dict` dispatches.
"""

from __future__ import annotations

import enum
import warnings
from datetime import timedelta
from typing import Any, ClassVar

from repast._spec import (
    Spec,
    check_duration,
    check_name,
    check_str,
    check_tags,
    duration,
    fail,
    seconds,
    where,
)
from repast.data_format import (
    FileFormat,
    ParquetFormat,
    StreamFormat,
    file_format_from_dict,
    stream_format_from_dict,
)
from repast.errors import RepoValidationError
from repast.field import Field, check_fields

__all__ = [
    "DataSource",
    "FileSource",
    "KafkaSource",
    "KinesisSource",
    "PushMode",
    "PushSource",
    "RequestSource",
    "SparkSource",
    "data_source_from_dict",
]


class PushMode(enum.Enum):
    """Where `FeatureStore.push` writes (Feast's `feast.data_source.PushMode`)."""

    ONLINE = 1
    OFFLINE = 2
    ONLINE_AND_OFFLINE = 3


class DataSource(Spec):
    """Base of every source: name, timestamp columns, `field_mapping` and metadata.

    `field_mapping` renames source columns to feature/entity names:
    `{source_column: feast_name}`.
    """

    type_name: ClassVar[str] = ""

    def __init__(
        self,
        *,
        name: str,
        timestamp_field: str = "",
        created_timestamp_column: str = "",
        field_mapping: dict[str, str] | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
    ) -> None:
        kind = type(self).__name__
        self.name = check_name(kind, name)
        at = self._where()
        self.timestamp_field: str = check_str(at, "timestamp_field", timestamp_field or "")
        self.created_timestamp_column: str = check_str(
            at, "created_timestamp_column", created_timestamp_column or ""
        )
        if self.timestamp_field and self.timestamp_field == self.created_timestamp_column:
            fail(at, "timestamp_field and created_timestamp_column must be different columns")
        self.field_mapping = check_tags(at, field_mapping, "field_mapping")
        targets = list(self.field_mapping.values())
        for target in targets:
            if targets.count(target) > 1:
                fail(at, f"field_mapping maps more than one column to {target!r}")
        self.description: str = check_str(at, "description", description)
        self.tags = check_tags(at, tags)
        self.owner: str = check_str(at, "owner", owner)

    def _where(self) -> str:
        return where(type(self).__name__, self.name)

    def _base_dict(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "name": self.name,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_column": self.created_timestamp_column,
            "field_mapping": dict(sorted(self.field_mapping.items())),
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
            "owner": self.owner,
        }

    def to_dict(self) -> dict[str, Any]:
        return self._base_dict()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSource:
        """Rebuild any source; on the base class this dispatches on `d["type"]`."""
        return data_source_from_dict(d)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _base_kwargs(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": d["name"],
        "field_mapping": d.get("field_mapping"),
        "description": d.get("description", ""),
        "tags": d.get("tags"),
        "owner": d.get("owner", ""),
    }


def _check_batch_source(at: str, batch_source: object, *, required: bool = False) -> Any:
    if batch_source is None:
        if required:
            fail(at, "batch_source is required")
        return None
    if not isinstance(batch_source, DataSource) or isinstance(
        batch_source, PushSource | KafkaSource | KinesisSource | RequestSource
    ):
        fail(at, f"batch_source must be a batch source such as FileSource, got {batch_source!r}")
    return batch_source


def source_dict(source: DataSource | None) -> dict[str, Any] | None:
    return None if source is None else source.to_dict()


def _batch_from_dict(d: dict[str, Any] | None) -> DataSource | None:
    return None if d is None else data_source_from_dict(d)


class FileSource(DataSource):
    """Parquet files at `path` (a file or directory, local or `s3://`); name defaults to path."""

    type_name = "file"

    def __init__(
        self,
        *,
        path: str,
        name: str = "",
        event_timestamp_column: str = "",
        file_format: FileFormat | None = None,
        created_timestamp_column: str = "",
        field_mapping: dict[str, str] | None = None,
        s3_endpoint_override: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        timestamp_field: str = "",
        connection_ref: str | None = None,
    ) -> None:
        at = where("FileSource", name or path)
        if not isinstance(path, str) or not path:
            fail(at, f"path must be a non-empty string, got {path!r}")
        if event_timestamp_column:
            warnings.warn(
                f"FileSource {name or path!r}: event_timestamp_column is deprecated, "
                "use timestamp_field",
                DeprecationWarning,
                stacklevel=2,
            )
            if timestamp_field and timestamp_field != event_timestamp_column:
                fail(at, "event_timestamp_column and timestamp_field disagree")
            timestamp_field = event_timestamp_column
        super().__init__(
            name=name or path,
            timestamp_field=timestamp_field,
            created_timestamp_column=created_timestamp_column,
            field_mapping=field_mapping,
            description=description,
            tags=tags,
            owner=owner,
        )
        self.path = path
        if file_format is None:
            file_format = ParquetFormat()
        if not isinstance(file_format, FileFormat):
            fail(
                at, f"file_format must be a FileFormat such as ParquetFormat(), got {file_format!r}"
            )
        self.file_format = file_format
        self.s3_endpoint_override: str | None = check_str(
            at, "s3_endpoint_override", s3_endpoint_override or None, optional=True
        )
        self.connection_ref: str | None = check_str(
            at, "connection_ref", connection_ref, optional=True
        )

    def to_dict(self) -> dict[str, Any]:
        d = self._base_dict()
        d.update(
            path=self.path,
            file_format=self.file_format.to_dict(),
            s3_endpoint_override=self.s3_endpoint_override,
            connection_ref=self.connection_ref,
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileSource:
        return cls(
            path=d["path"],
            file_format=file_format_from_dict(d.get("file_format", {"type": "parquet"})),
            s3_endpoint_override=d.get("s3_endpoint_override"),
            connection_ref=d.get("connection_ref"),
            timestamp_field=d.get("timestamp_field", ""),
            created_timestamp_column=d.get("created_timestamp_column", ""),
            **_base_kwargs(d),
        )

    def __repr__(self) -> str:
        return f"FileSource(name={self.name!r}, path={self.path!r})"


class PushSource(DataSource):
    """Rows pushed by clients (`store.push`, `POST /push`); `batch_source` keeps them offline."""

    type_name = "push"

    def __init__(
        self,
        *,
        name: str,
        batch_source: DataSource | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
    ) -> None:
        super().__init__(name=name, description=description, tags=tags, owner=owner)
        self.batch_source: DataSource | None = _check_batch_source(self._where(), batch_source)

    def to_dict(self) -> dict[str, Any]:
        d = self._base_dict()
        d["batch_source"] = source_dict(self.batch_source)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PushSource:
        kw = _base_kwargs(d)
        del kw["field_mapping"]
        return cls(batch_source=_batch_from_dict(d.get("batch_source")), **kw)


class KafkaSource(DataSource):
    """A Kafka topic whose messages (JSON or Avro) carry the source columns."""

    type_name = "kafka"

    def __init__(
        self,
        *,
        name: str,
        timestamp_field: str,
        message_format: StreamFormat,
        bootstrap_servers: str | None = None,
        kafka_bootstrap_servers: str | None = None,
        topic: str | None = None,
        created_timestamp_column: str = "",
        field_mapping: dict[str, str] | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        batch_source: DataSource | None = None,
        watermark_delay_threshold: timedelta | None = None,
    ) -> None:
        super().__init__(
            name=name,
            timestamp_field=timestamp_field,
            created_timestamp_column=created_timestamp_column,
            field_mapping=field_mapping,
            description=description,
            tags=tags,
            owner=owner,
        )
        at = self._where()
        if bootstrap_servers is not None:
            warnings.warn(
                f"KafkaSource {name!r}: bootstrap_servers is deprecated, "
                "use kafka_bootstrap_servers",
                DeprecationWarning,
                stacklevel=2,
            )
            if kafka_bootstrap_servers not in (None, bootstrap_servers):
                fail(at, "bootstrap_servers and kafka_bootstrap_servers disagree")
            kafka_bootstrap_servers = bootstrap_servers
        self.kafka_bootstrap_servers: str | None = check_str(
            at, "kafka_bootstrap_servers", kafka_bootstrap_servers, optional=True
        )
        self.topic: str | None = check_str(at, "topic", topic, optional=True)
        if not isinstance(message_format, StreamFormat):
            fail(
                at,
                f"message_format must be JsonFormat or AvroFormat, got {message_format!r}",
            )
        self.message_format = message_format
        self.batch_source: DataSource | None = _check_batch_source(at, batch_source)
        self.watermark_delay_threshold = check_duration(
            at, "watermark_delay_threshold", watermark_delay_threshold
        )

    @property
    def bootstrap_servers(self) -> str | None:
        return self.kafka_bootstrap_servers

    def to_dict(self) -> dict[str, Any]:
        d = self._base_dict()
        d.update(
            kafka_bootstrap_servers=self.kafka_bootstrap_servers,
            topic=self.topic,
            message_format=self.message_format.to_dict(),
            watermark_delay_threshold=seconds(self.watermark_delay_threshold),
            batch_source=source_dict(self.batch_source),
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KafkaSource:
        return cls(
            timestamp_field=d.get("timestamp_field", ""),
            created_timestamp_column=d.get("created_timestamp_column", ""),
            message_format=stream_format_from_dict(d["message_format"]),
            kafka_bootstrap_servers=d.get("kafka_bootstrap_servers"),
            topic=d.get("topic"),
            batch_source=_batch_from_dict(d.get("batch_source")),
            watermark_delay_threshold=duration(d.get("watermark_delay_threshold")),
            **_base_kwargs(d),
        )

    def __repr__(self) -> str:
        return f"KafkaSource(name={self.name!r}, topic={self.topic!r})"


class KinesisSource(DataSource):
    """An AWS Kinesis stream; declared for compatibility (no Repast processor reads it yet)."""

    type_name = "kinesis"

    def __init__(
        self,
        *,
        name: str,
        record_format: StreamFormat,
        region: str,
        stream_name: str,
        timestamp_field: str = "",
        created_timestamp_column: str = "",
        field_mapping: dict[str, str] | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        batch_source: DataSource | None = None,
    ) -> None:
        super().__init__(
            name=name,
            timestamp_field=timestamp_field,
            created_timestamp_column=created_timestamp_column,
            field_mapping=field_mapping,
            description=description,
            tags=tags,
            owner=owner,
        )
        at = self._where()
        if not isinstance(record_format, StreamFormat):
            fail(at, f"record_format must be a StreamFormat, got {record_format!r}")
        self.record_format = record_format
        self.region: str = check_str(at, "region", region)
        self.stream_name: str = check_str(at, "stream_name", stream_name)
        self.batch_source: DataSource | None = _check_batch_source(at, batch_source)

    def to_dict(self) -> dict[str, Any]:
        d = self._base_dict()
        d.update(
            record_format=self.record_format.to_dict(),
            region=self.region,
            stream_name=self.stream_name,
            batch_source=source_dict(self.batch_source),
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KinesisSource:
        return cls(
            record_format=stream_format_from_dict(d["record_format"]),
            region=d["region"],
            stream_name=d["stream_name"],
            timestamp_field=d.get("timestamp_field", ""),
            created_timestamp_column=d.get("created_timestamp_column", ""),
            batch_source=_batch_from_dict(d.get("batch_source")),
            **_base_kwargs(d),
        )


class RequestSource(DataSource):
    """Values sent with each online request, typed by `schema`; inputs of ODFVs."""

    type_name = "request"

    def __init__(
        self,
        *,
        name: str,
        schema: list[Field],
        timestamp_field: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
    ) -> None:
        super().__init__(
            name=name,
            timestamp_field=timestamp_field or "",
            description=description,
            tags=tags,
            owner=owner,
        )
        at = self._where()
        if not schema:
            fail(at, "schema must list at least one Field")
        self.schema = check_fields(at, "schema", schema)

    def to_dict(self) -> dict[str, Any]:
        d = self._base_dict()
        del d["field_mapping"], d["created_timestamp_column"]
        d["schema"] = [f.to_dict() for f in self.schema]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RequestSource:
        kw = _base_kwargs(d)
        del kw["field_mapping"]
        return cls(
            schema=[Field.from_dict(f) for f in d["schema"]],
            timestamp_field=d.get("timestamp_field", ""),
            **kw,
        )

    def __repr__(self) -> str:
        return f"RequestSource(name={self.name!r}, schema={self.schema!r})"


# Formats Spark reads with `spark.read.format(...)`; delta needs the delta-spark package on the
# cluster (its jars are not in pyspark).
FILE_FORMATS = ("parquet", "csv", "json", "orc", "avro", "delta")


class SparkSource(DataSource):
    """Rows of a Spark table, a Spark SQL query, or files at a path.

    >>> SparkSource(name="trips", path="s3a://lake/trips", file_format="parquet",
    ...             timestamp_field="event_timestamp").file_format
    'parquet'
    """

    type_name = "spark"

    def __init__(
        self,
        *,
        name: str | None = None,
        table: str | None = None,
        query: str | None = None,
        path: str | None = None,
        file_format: str | None = None,
        table_format: Any = None,
        created_timestamp_column: str | None = None,
        field_mapping: dict[str, str] | None = None,
        description: str | None = "",
        tags: dict[str, str] | None = None,
        owner: str | None = "",
        timestamp_field: str | None = None,
        date_partition_column: str | None = None,
        date_partition_column_format: str | None = "%Y-%m-%d",
        connection_ref: str | None = None,
    ) -> None:
        at = where("SparkSource", name or table)
        if not name and not table:
            fail(at, "a name is required (or a table, whose name becomes the source's)")
        given = [k for k, v in (("table", table), ("query", query), ("path", path)) if v]
        if len(given) != 1:
            fail(at, f"give exactly one of table, query or path (got {given or 'none'})")
        super().__init__(
            name=name or table or "",
            timestamp_field=timestamp_field or "",
            created_timestamp_column=created_timestamp_column or "",
            field_mapping=field_mapping,
            description=description or "",
            tags=tags,
            owner=owner or "",
        )
        self.table: str | None = check_str(at, "table", table or None, optional=True)
        self.query: str | None = check_str(at, "query", query or None, optional=True)
        self.path: str | None = check_str(at, "path", path or None, optional=True)
        if path and not file_format:
            fail(at, f"file_format is required with a path (one of {', '.join(FILE_FORMATS)})")
        if file_format is not None and file_format not in FILE_FORMATS:
            fail(at, f"file_format {file_format!r} is not one of {', '.join(FILE_FORMATS)}")
        self.file_format: str | None = file_format
        if table_format is not None:
            fail(at, "table_format is not supported by Repast; use file_format='delta' for Delta")
        self.date_partition_column: str | None = check_str(
            at, "date_partition_column", date_partition_column or None, optional=True
        )
        self.date_partition_column_format: str = check_str(
            at, "date_partition_column_format", date_partition_column_format or "%Y-%m-%d"
        )
        self.connection_ref: str | None = check_str(
            at, "connection_ref", connection_ref, optional=True
        )

    def describe(self) -> str:
        """Where the rows are, for messages: `table t`, `query '...'`, `parquet files at p`."""
        if self.table:
            return f"table {self.table}"
        if self.query:
            return f"query {self.query!r}"
        return f"{self.file_format} files at {self.path}"

    def to_dict(self) -> dict[str, Any]:
        d = self._base_dict()
        d.update(
            table=self.table,
            query=self.query,
            path=self.path,
            file_format=self.file_format,
            date_partition_column=self.date_partition_column,
            date_partition_column_format=self.date_partition_column_format,
            connection_ref=self.connection_ref,
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SparkSource:
        return cls(
            table=d.get("table"),
            query=d.get("query"),
            path=d.get("path"),
            file_format=d.get("file_format"),
            date_partition_column=d.get("date_partition_column"),
            date_partition_column_format=d.get("date_partition_column_format", "%Y-%m-%d"),
            connection_ref=d.get("connection_ref"),
            timestamp_field=d.get("timestamp_field", ""),
            created_timestamp_column=d.get("created_timestamp_column", ""),
            **_base_kwargs(d),
        )

    def __repr__(self) -> str:
        return f"SparkSource(name={self.name!r}, {self.describe()})"


STREAM_SOURCE_TYPES = (PushSource, KafkaSource, KinesisSource)

_BY_TYPE: dict[str, type[DataSource]] = {
    cls.type_name: cls
    for cls in (FileSource, SparkSource, PushSource, KafkaSource, KinesisSource, RequestSource)
}


def data_source_from_dict(d: dict[str, Any]) -> DataSource:
    """Rebuild a source from its `to_dict()`, whichever kind it is."""
    cls = _BY_TYPE.get(d.get("type", ""))
    if cls is None:
        known = ", ".join(sorted(_BY_TYPE))
        raise RepoValidationError(
            f"data source {d.get('name')!r}: unknown type {d.get('type')!r} (known: {known})"
        )
    return cls.from_dict(d)
