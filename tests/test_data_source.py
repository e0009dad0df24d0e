from __future__ import annotations

import json
from datetime import timedelta

import pytest

from repast import (
    AvroFormat,
    DataSource,
    Field,
    FileSource,
    JsonFormat,
    KafkaSource,
    KinesisSource,
    ParquetFormat,
    PushSource,
    RequestSource,
)
from repast.data_format import (
    DeltaFormat,
    ProtoFormat,
    file_format_from_dict,
    stream_format_from_dict,
)
from repast.data_source import data_source_from_dict
from repast.errors import RepoValidationError
from repast.types import Float64, Int64

SCHEMA_JSON = "driver_id integer, event_timestamp timestamp, conv_rate double"


def file_source(**kwargs: object) -> FileSource:
    args: dict[str, object] = {
        "name": "driver_stats_source",
        "path": "data/driver_stats.parquet",
        "timestamp_field": "event_timestamp",
        "created_timestamp_column": "created",
    }
    args.update(kwargs)
    return FileSource(**args)  # type: ignore[arg-type]


def round_trip(source: DataSource) -> None:
    d = source.to_dict()
    text = json.dumps(d, sort_keys=True)
    back = data_source_from_dict(json.loads(text))
    assert type(back) is type(source)
    assert back == source
    assert json.dumps(back.to_dict(), sort_keys=True) == text
    assert DataSource.from_dict(d) == source
    assert type(source).from_dict(d) == source


def test_file_source_defaults() -> None:
    s = FileSource(path="data/x.parquet")
    assert s.name == "data/x.parquet"
    assert s.file_format == ParquetFormat()
    assert s.timestamp_field == ""
    assert s.created_timestamp_column == ""
    assert s.field_mapping == {}
    assert s.s3_endpoint_override is None
    assert (s.description, s.tags, s.owner) == ("", {}, "")


def test_file_source_feast_usage_and_round_trip() -> None:
    s = file_source(
        field_mapping={"id": "driver_id"},
        s3_endpoint_override="http://127.0.0.1:9000",
        description="hourly stats",
        tags={"team": "drivers"},
        owner="me@example.com",
    )
    assert s.path == "data/driver_stats.parquet"
    d = s.to_dict()
    assert d["type"] == "file"
    assert d["file_format"] == {"type": "parquet"}
    assert d["field_mapping"] == {"id": "driver_id"}
    round_trip(s)
    round_trip(FileSource(path="s3://bucket/x", file_format=DeltaFormat()))
    assert repr(s) == "FileSource(name='driver_stats_source', path='data/driver_stats.parquet')"


def test_file_source_event_timestamp_column_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning, match="event_timestamp_column is deprecated"):
        s = FileSource(path="x.parquet", event_timestamp_column="ts")
    assert s.timestamp_field == "ts"
    with (
        pytest.warns(DeprecationWarning, match="event_timestamp_column is deprecated"),
        pytest.raises(RepoValidationError, match="event_timestamp_column and timestamp_field"),
    ):
        FileSource(path="x.parquet", event_timestamp_column="ts", timestamp_field="other")


def test_push_source() -> None:
    batch = file_source()
    push = PushSource(name="driver_push", batch_source=batch)
    assert push.batch_source is batch
    assert push.to_dict()["batch_source"] == batch.to_dict()
    round_trip(push)
    round_trip(PushSource(name="lonely"))


def test_kafka_source() -> None:
    kafka = KafkaSource(
        name="driver_events",
        kafka_bootstrap_servers="127.0.0.1:9092",
        topic="drivers",
        timestamp_field="event_timestamp",
        batch_source=file_source(),
        message_format=JsonFormat(schema_json=SCHEMA_JSON),
        watermark_delay_threshold=timedelta(minutes=5),
    )
    assert kafka.bootstrap_servers == "127.0.0.1:9092"
    d = kafka.to_dict()
    assert d["message_format"] == {"type": "json", "schema_json": SCHEMA_JSON}
    assert d["watermark_delay_threshold"] == 300
    round_trip(kafka)
    avro = KafkaSource(
        name="avro_events",
        timestamp_field="ts",
        message_format=AvroFormat('{"type": "record"}'),
    )
    assert avro.watermark_delay_threshold is None
    round_trip(avro)


def test_kafka_bootstrap_servers_alias() -> None:
    with pytest.warns(DeprecationWarning, match="bootstrap_servers is deprecated"):
        kafka = KafkaSource(
            name="k", timestamp_field="ts", message_format=JsonFormat(""), bootstrap_servers="b:1"
        )
    assert kafka.kafka_bootstrap_servers == "b:1"


def test_kinesis_source() -> None:
    kinesis = KinesisSource(
        name="k",
        record_format=ProtoFormat("my.Class"),
        region="eu-west-1",
        stream_name="s",
        timestamp_field="ts",
        batch_source=file_source(),
    )
    round_trip(kinesis)


def test_request_source() -> None:
    request = RequestSource(
        name="vals_to_add",
        schema=[Field(name="val_to_add", dtype=Int64), Field(name="val_2", dtype=Float64)],
    )
    assert [f.name for f in request.schema] == ["val_to_add", "val_2"]
    assert request.timestamp_field == ""
    assert request.to_dict()["type"] == "request"
    round_trip(request)


def test_equality_and_hash() -> None:
    assert file_source() == file_source()
    assert file_source() != file_source(owner="x")
    assert hash(file_source()) == hash(file_source(owner="x"))
    assert file_source() != PushSource(name="driver_stats_source")


def test_formats() -> None:
    assert JsonFormat("a int") == JsonFormat("a int")
    assert JsonFormat("a int") != AvroFormat("a int")
    assert repr(JsonFormat("a int")) == "JsonFormat('a int')"
    assert repr(ParquetFormat()) == "ParquetFormat()"
    assert len({ParquetFormat(), ParquetFormat()}) == 1
    for fmt in (JsonFormat("x"), AvroFormat("y"), ProtoFormat("z")):
        assert stream_format_from_dict(fmt.to_dict()) == fmt
    assert file_format_from_dict({"type": "delta"}) == DeltaFormat()
    with pytest.raises(RepoValidationError, match="unknown file format 'csv'"):
        file_format_from_dict({"type": "csv"})
    with pytest.raises(RepoValidationError, match="unknown stream format 'xml'"):
        stream_format_from_dict({"type": "xml"})
    with pytest.raises(RepoValidationError, match="JsonFormat: schema_json must be a string"):
        JsonFormat(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: FileSource(path=""), "FileSource: path must be a non-empty string"),
        (
            lambda: file_source(created_timestamp_column="event_timestamp"),
            "FileSource 'driver_stats_source': timestamp_field and created_timestamp_column "
            "must be different",
        ),
        (
            lambda: file_source(field_mapping={"a": "x", "b": "x"}),
            "FileSource 'driver_stats_source': field_mapping maps more than one column to 'x'",
        ),
        (
            lambda: file_source(field_mapping={"a": 1}),
            "FileSource 'driver_stats_source': field_mapping must map strings to strings",
        ),
        (
            lambda: file_source(file_format="parquet"),
            "FileSource 'driver_stats_source': file_format must be a FileFormat",
        ),
        (lambda: PushSource(name=""), "PushSource: name must be a non-empty string"),
        (
            lambda: PushSource(name="p", batch_source=PushSource(name="q")),
            "PushSource 'p': batch_source must be a batch source such as FileSource",
        ),
        (
            lambda: KafkaSource(
                name="k",
                timestamp_field="ts",
                message_format=ParquetFormat(),  # type: ignore[arg-type]
            ),
            "KafkaSource 'k': message_format must be JsonFormat or AvroFormat",
        ),
        (
            lambda: KafkaSource(
                name="k",
                timestamp_field="ts",
                message_format=JsonFormat("x"),
                watermark_delay_threshold=timedelta(seconds=-1),
            ),
            "KafkaSource 'k': watermark_delay_threshold must not be negative",
        ),
        (
            lambda: RequestSource(name="r", schema=[]),
            "RequestSource 'r': schema must list at least one Field",
        ),
        (
            lambda: RequestSource(name="r", schema=["a"]),  # type: ignore[list-item]
            "RequestSource 'r': schema must be a list of Field",
        ),
        (
            lambda: RequestSource(
                name="r", schema=[Field(name="a", dtype=Int64), Field(name="a", dtype=Int64)]
            ),
            "RequestSource 'r': schema names 'a' twice",
        ),
    ],
)
def test_validation(build: object, message: str) -> None:
    with pytest.raises(RepoValidationError, match=message):
        build()  # type: ignore[operator]


def test_unknown_type() -> None:
    with pytest.raises(RepoValidationError, match="data source 'x': unknown type 'bigquery'"):
        data_source_from_dict({"type": "bigquery", "name": "x"})
