"""Offline writes to a `SparkSource` (`write_to_offline_store`, push `to: offline`): the rows
are checked and cast against the source's Spark schema exactly as a FileSource's are
(`repast.offline.write`), then appended by Spark: `insertInto` a table, or new files in the
source's format under its path. A query source cannot be written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from repast.context import StoreContext
from repast.errors import OfflineWriteError
from repast.feature_view import FeatureView
from repast.offline.checks import cast_to, check_columns, unmapped
from repast.online.write import to_arrow
from repast.spark.materialize import spark_conf
from repast.spark.session import spark_session
from repast.spark.sources import arrow_schema, read_source, spark_location
from repast.spark_source import SparkSource

__all__ = ["SparkOfflineWrite", "prepare_spark_write"]


@dataclass(frozen=True)
class SparkOfflineWrite:
    """Checked, cast rows for a SparkSource; `commit()` appends them through Spark."""

    view: str
    source: SparkSource
    location: str
    table: pa.Table
    spark_conf: dict[str, str]
    path: str | None

    def commit(self) -> list[str]:
        """Append the rows; returns the table or path written (none for no rows)."""
        if self.table.num_rows == 0:
            return []
        spark = spark_session(self.spark_conf)
        frame = spark.createDataFrame(self.table)
        try:
            if self.source.table:
                frame.write.insertInto(self.source.table)
            else:
                writer = frame.write.mode("append").format(self.source.file_format or "parquet")
                if self.source.file_format == "csv":
                    writer = writer.option("header", "true")
                writer.save(self.path)
        except Exception as exc:  # Spark's own exception classes
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OfflineWriteError(
                f"appending to {self.location} for feature view '{self.view}' failed: {line}"
            ) from exc
        return [self.location]


def prepare_spark_write(
    store: StoreContext, view: FeatureView, df: Any, what: str, reorder_columns: bool
) -> SparkOfflineWrite:
    """Check and cast `df` for the view's SparkSource without writing anything."""
    source = view.batch_source
    assert isinstance(source, SparkSource)
    location = f"SparkSource '{source.name}' ({source.describe()})"
    if source.query:
        raise OfflineWriteError(
            f"{what} for feature view '{view.name}': its batch source is a query "
            f"({source.query!r}), which cannot be appended to; use a table or a path"
        )
    conf = spark_conf(store.config)
    spark = spark_session(conf)
    schema = arrow_schema(read_source(spark, store.config, source))
    table = unmapped(to_arrow(df), source, schema)
    table = check_columns(table, schema, view.name, location, reorder_columns, what)
    table = cast_to(table, schema, view.name, location, what)
    path = spark_location(store.config, source.path) if source.path else None
    return SparkOfflineWrite(view.name, source, location, table, conf, path)
