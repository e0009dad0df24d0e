"""`SparkSource` (Feast's `feast.infra.offline_stores.contrib.spark_offline_store.spark_source`):
a batch source that a Spark job reads. Exactly one of `table` (a catalog table), `query` (Spark
SQL) or `path` (files in `file_format`: parquet, csv, json, orc, avro or delta) names the rows.

Defining one needs no pyspark; reading it does (the `spark` offline store and batch engine,
`repast[spark]`).
"""

from __future__ import annotations

from typing import Any

from repast._spec import check_str, fail, where
from repast.data_source import DataSource, _base_kwargs

__all__ = ["SparkSource"]

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
