"""A view's batch source as a Spark DataFrame: `SparkSource` (table, query, path) or a
`FileSource`'s Parquet files (local paths resolved against the repo, `s3://` read as `s3a://`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from repast.config import RepoConfig, is_uri
from repast.data_source import DataSource, FileSource
from repast.errors import SourceReadError
from repast.spark.errors import first_line
from repast.spark_source import SparkSource

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "FILE",
    "POSITION",
    "arrow_schema",
    "describe",
    "prune_dates",
    "read_source",
    "spark_location",
    "with_file_order",
]

# A file's path and a row's position in it: the order the local store reads rows in (files in
# path order, rows in file order), which decides a full tie (same event and created time): the
# later row wins, in both stores.
FILE = "__repast_file"
POSITION = "__repast_position"


def spark_location(config: RepoConfig, path: str) -> str:
    """A path as Spark's Hadoop file systems name it: `s3://` is `s3a://`, local is absolute."""
    if path.startswith("s3://"):
        return "s3a://" + path[len("s3://") :]
    if is_uri(path):
        return path
    return str(config.resolve(path))


def describe(source: DataSource) -> str:
    if isinstance(source, SparkSource):
        return f"SparkSource '{source.name}' ({source.describe()})"
    if isinstance(source, FileSource):
        return f"FileSource '{source.name}' ({source.path})"
    return f"{type(source).__name__} '{source.name}'"


def read_source(spark: SparkSession, config: RepoConfig, source: DataSource) -> DataFrame:
    """The source's rows as a DataFrame (lazy: Spark reads only what the job selects)."""
    try:
        if isinstance(source, SparkSource):
            if source.table:
                return spark.table(source.table)
            if source.query:
                return spark.sql(source.query)
            reader = spark.read.format(source.file_format or "parquet")
            if source.file_format == "csv":
                reader = reader.option("header", "true").option("inferSchema", "true")
            return reader.load(spark_location(config, source.path or ""))
        if isinstance(source, FileSource):
            return spark.read.parquet(spark_location(config, source.path))
    except Exception as exc:  # Spark raises AnalysisException & co. from its own hierarchy
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise SourceReadError(f"cannot read {describe(source)}: {first_line(exc)}") from exc
    raise SourceReadError(
        f"{describe(source)}: the spark offline store reads SparkSources and FileSources"
    )


def prune_dates(
    frame: DataFrame, source: Any, start: datetime | None, end: datetime | None
) -> DataFrame:
    """The frame without the date partitions of a `SparkSource` (`date_partition_column`,
    dates written with `date_partition_column_format`) that cannot hold rows in
    `[start, end]`: Spark then skips those directories (or table partitions) entirely.

    The partition values are compared as text, as Feast does, so the format must sort as the
    dates do (year first, zero-padded: the default `%Y-%m-%d`, or `%Y%m%d`). A value Spark
    inferred as a date or a number is compared in its text form, which is the directory's
    for those formats. A row's event time is assumed to fall on its partition's date (UTC).
    """
    if not isinstance(source, SparkSource) or not source.date_partition_column:
        return frame
    from pyspark.sql import functions as F

    column = source.date_partition_column
    if column not in frame.columns:
        raise SourceReadError(
            f"{describe(source)}: date_partition_column '{column}' is not a column of the "
            f"source (columns: {', '.join(frame.columns)})"
        )
    value = F.col(f"`{column}`").cast("string")
    form = source.date_partition_column_format
    if start is not None:
        frame = frame.where(value >= F.lit(start.strftime(form)))
    if end is not None:
        frame = frame.where(value <= F.lit(end.strftime(form)))
    return frame


def with_file_order(frame: DataFrame) -> tuple[DataFrame, bool]:
    """The frame with `FILE` and `POSITION` columns when its rows come from files (Spark's
    `_metadata` column), and whether they were added (not for a query's rows)."""
    from pyspark.sql import functions as F

    try:
        ordered = frame.select(
            "*",
            F.col("_metadata.file_path").alias(FILE),
            F.col("_metadata.row_index").alias(POSITION),
        )
        ordered.schema  # noqa: B018 - Spark Connect analyses lazily: fail here, not in the job
    except Exception as exc:  # AnalysisException: no `_metadata` for this plan
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return frame, False
    return ordered, True


def arrow_schema(frame: DataFrame) -> pa.Schema:
    """The Arrow schema Spark's `toArrow`/`applyInArrow` use for the frame's columns."""
    from pyspark.sql.pandas.types import to_arrow_schema

    schema: pa.Schema = to_arrow_schema(frame.schema, timezone="UTC")
    return schema
