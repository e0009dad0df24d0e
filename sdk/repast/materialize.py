"""`materialize` / `materialize_incremental`: offline rows → online store, with Feast's
semantics (docs/feast-compatibility.md §8).

The local engine, per view: stream record batches from the Parquet dataset (time filter
pushed down, only the needed columns), build entity keys in Rust, keep the latest row per key
in a `LatestState` (Rust) plus a winners table that is compacted whenever it outgrows twice
the distinct keys, so memory follows the number of keys, never the number of rows. Then
encode and write in batches. The view's interval is recorded in the registry only after all
its rows are written; a failure names the view and range and records nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from repast import latest
from repast.context import StoreContext
from repast.data_source import FileSource
from repast.errors import (
    FeatureViewNotFoundError,
    MaterializationCancelled,
    MaterializationError,
    RepastError,
)
from repast.feature_view import FeatureView
from repast.latest import KEY, latest_of, materialized_columns, write_rows
from repast.online.base import OnlineView, WriteBatch
from repast.online.tiles import tile_spec, write_events
from repast.online.write import write_batch
from repast.registry import document
from repast.validate import closest

__all__ = [
    "MaterializationCancelled",
    "MaterializationError",
    "materialize",
    "latest_of",
    "materialize_incremental",
    "scan_latest",
]

logger = logging.getLogger(__name__)


def _check(cancel: threading.Event | None, label: str) -> None:
    if cancel is not None and cancel.is_set():
        raise MaterializationCancelled(f"materializing {label} was cancelled; nothing recorded")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def select_views(store: StoreContext, names: Sequence[str] | None) -> list[FeatureView]:
    """The views to materialize: the named ones, or every online and enabled batch/stream view.

    Label views are left out by default, as in Feast: their rows arrive by push.
    """
    from repast.label_view import LabelView

    views = {v.name: v for v in store.catalog.online_feature_views(allow_cache=False)}
    if names is None:
        return [
            v for v in views.values() if v.online and v.enabled and not isinstance(v, LabelView)
        ]
    out = []
    for name in names:
        if name not in views:
            raise FeatureViewNotFoundError(
                f"feature view '{name}' does not exist in project '{store.project}'"
                f"{closest(name, list(views))}"
            )
        out.append(views[name])
    return out


def materialize(
    store: StoreContext,
    start_date: datetime,
    end_date: datetime,
    feature_views: Sequence[str] | None = None,
    disable_event_timestamp: bool = False,
    *,
    progress: bool = True,
    cancel: threading.Event | None = None,
) -> None:
    """Materialize `[start_date, end_date]` of the views; setting `cancel` (from another
    thread) stops at the next batch with `MaterializationCancelled`."""
    if disable_event_timestamp:
        start_date, end_date = datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC)
    start, end = _utc(start_date), _utc(end_date)
    if start > end:
        raise ValueError(f"start_date ({_iso(start)}) must be before end_date ({_iso(end)})")
    for view in select_views(store, feature_views):
        _materialize_view(store, view, start, end, progress, cancel)


def materialize_incremental(
    store: StoreContext,
    end_date: datetime,
    feature_views: Sequence[str] | None = None,
    *,
    progress: bool = True,
    cancel: threading.Event | None = None,
) -> None:
    end = _utc(end_date)
    now = datetime.now(UTC)
    snapshot = store.registry.snapshot(allow_cache=False)
    for view in select_views(store, feature_views):
        record = snapshot.record(store.project, _kind(view), view.name)
        intervals = (record.meta.get("materialization_intervals") if record else None) or []
        if intervals:
            start = max(datetime.fromisoformat(e.replace("Z", "+00:00")) for _, e in intervals)
        elif view.ttl > timedelta(0):
            start = now - view.ttl
        else:
            start = now - timedelta(weeks=52)
        if start > end:
            # Already materialized past end_date (or its ttl window starts later): nothing to do.
            logger.info("view '%s': nothing to materialize before %s", view.name, _iso(end))
            continue
        _materialize_view(store, view, start, end, progress, cancel)


def _kind(view: FeatureView) -> document.Kind:
    from repast.label_view import LabelView
    from repast.stream_feature_view import StreamFeatureView

    if isinstance(view, LabelView):
        return "label_views"
    return "stream_feature_views" if isinstance(view, StreamFeatureView) else "feature_views"


def _bound(value: datetime, arrow_type: pa.DataType) -> pa.Scalar:
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz is None:
        return pa.scalar(value.replace(tzinfo=None), pa.timestamp("us")).cast(arrow_type)
    return pa.scalar(value, pa.timestamp("us", tz="UTC")).cast(arrow_type)


def _batches(
    store: StoreContext, view: FeatureView, start: datetime, end: datetime
) -> Iterator[pa.RecordBatch]:
    source = view.batch_source
    if not isinstance(source, FileSource):
        raise MaterializationError(
            f"view '{view.name}': the local batch engine reads FileSources, not a "
            f"{type(source).__name__}; use batch_engine: {{type: spark}} for a SparkSource"
        )
    columns = materialized_columns(view)
    # pre_buffer reads whole row groups ahead (hundreds of MB on wide files); without it the
    # scan holds about one row group per column reader.
    parquet = ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False)
    )
    dataset = ds.dataset(store.config.resolve_location(source.path), format=parquet)
    ts_col = columns[source.timestamp_field]
    missing = [c for c in columns.values() if c not in dataset.schema.names]
    if missing:
        raise MaterializationError(
            f"view '{view.name}': source {source.path} has no column '{missing[0]}'"
            f"{closest(missing[0], dataset.schema.names)}"
        )
    ts_type = dataset.schema.field(ts_col).type
    time_filter = (ds.field(ts_col) >= _bound(start, ts_type)) & (
        ds.field(ts_col) <= _bound(end, ts_type)
    )
    rename = list(columns)
    # One row group at a time, decoded on this thread: the dataset scanner reads ahead of a
    # slower consumer (the latest-per-key reduction) and would buffer hundreds of MB.
    # Row groups whose statistics miss the window are skipped; rows are filtered on read.
    for fragment in dataset.get_fragments(filter=time_filter):
        for row_group in fragment.split_by_row_group(time_filter):
            for batch in row_group.to_batches(
                columns=list(columns.values()),
                filter=time_filter,
                batch_size=latest.READ_BATCH_ROWS,
                batch_readahead=0,
                fragment_readahead=0,
                use_threads=False,
            ):
                yield pa.RecordBatch.from_arrays(batch.columns, names=rename)


def scan_latest(
    store: StoreContext,
    view: FeatureView,
    start: datetime,
    end: datetime,
    on_rows: Any = None,
    stats: dict[str, int] | None = None,
) -> pa.Table:
    """The latest source row per entity key in [start, end] (event time, then created time),
    with the key in column `__repast_entity_key`. Memory: about 1.5 times the distinct keys.
    `stats` (if given) receives `max_held`, the most rows the winners table ever held."""
    batches = _batches(store, view, start, end)
    version = store.config.entity_key_serialization_version
    return latest_of(view, batches, version, on_rows, stats)


def _materialize_view(
    store: StoreContext,
    view: FeatureView,
    start: datetime,
    end: datetime,
    progress: bool,
    cancel: threading.Event | None = None,
) -> None:
    label = f"{view.name} from {_iso(start)} to {_iso(end)}"
    _check(cancel, label)
    aggregated = tile_spec(view) is not None
    if store.config.batch_engine.type == "spark":
        _materialize_on_spark(store, view, start, end, progress, cancel, label)
        return
    online = store.online_store
    spec = OnlineView.of(view)

    def read_rows(n: int) -> None:
        _check(cancel, label)
        bar.advance(task, n)

    with _progress(progress) as bar:
        task = bar.add_task(f"{view.name} (reading)", total=None)
        try:
            if aggregated:
                # Every event counts in its tiles, not only the latest per entity.
                version = store.config.entity_key_serialization_version
                for batch in _batches(store, view, start, end):
                    read_rows(batch.num_rows)
                    table = pa.Table.from_batches([batch])
                    write_events(online, view, table, version, f"materializing {label}")
                _check(cancel, label)
                _record_interval(store, view, start, end)
                return
            table = scan_latest(store, view, start, end, read_rows)
            bar.update(
                task, description=f"{view.name} (writing)", total=table.num_rows, completed=0
            )
            batches = _write_batches(
                view, table, write_rows(store.config), bar, task, cancel, label
            )
            online.write_batches(spec, batches)
        except MaterializationCancelled:
            raise
        except RepastError as exc:
            raise MaterializationError(f"materializing {label} failed: {exc}") from exc
        except (OSError, pa.ArrowException) as exc:
            raise MaterializationError(f"materializing {label} failed: {exc}") from exc
    _check(cancel, label)
    _record_interval(store, view, start, end)


def _materialize_on_spark(
    store: StoreContext,
    view: FeatureView,
    start: datetime,
    end: datetime,
    progress: bool,
    cancel: threading.Event | None,
    label: str,
) -> None:
    from repast.spark.materialize import materialize_view

    bar_columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} partitions"),
        TimeElapsedColumn(),
    )
    bar: Any = Progress(*bar_columns) if progress else _Quiet()
    with bar:
        task = bar.add_task(f"{view.name} (spark)", total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if tile_spec(view) is not None:
            # Every event into its tiles, folded from the executors (repast.spark.backfill).
            from repast.spark.backfill import backfill_view

            result = backfill_view(store, view, start, end, progress=report, cancel=cancel)
        else:
            result = materialize_view(store, view, start, end, progress=report, cancel=cancel)
        bar.update(
            task,
            description=(
                f"{view.name}: {result.rows_read:,} rows read, {result.rows_written:,} written, "
                f"{result.rows_per_second:,.0f} rows/s"
            ),
        )
    _check(cancel, label)
    _record_interval(store, view, start, end)


def _write_batches(
    view: FeatureView,
    table: pa.Table,
    rows: int,
    bar: Any,
    task: Any,
    cancel: threading.Event | None = None,
    label: str = "",
) -> Iterator[WriteBatch]:
    for chunk in table.to_batches(max_chunksize=rows):
        _check(cancel, label)
        part = pa.Table.from_batches([chunk])
        yield write_batch(view, part, part.column(KEY).combine_chunks())
        bar.advance(task, chunk.num_rows)


def _record_interval(
    store: StoreContext, view: FeatureView, start: datetime, end: datetime
) -> None:
    kind = _kind(view)

    def mutate(doc: dict[str, Any]) -> None:
        record = document.get_record(doc, store.project, kind, view.name)
        if record is None:  # deleted meanwhile: nothing to record
            return
        intervals = [*record["meta"].get("materialization_intervals", []), [_iso(start), _iso(end)]]
        document.update_meta(
            doc, store.project, kind, view.name, {"materialization_intervals": intervals}
        )

    store.registry.commit(mutate)


class _Quiet:
    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def advance(self, *args: Any) -> None:
        return None

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        # Average over the phase: rich's windowed `speed` is empty for short runs.
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.0f} rows/s")


def _progress(enabled: bool) -> Any:
    if not enabled:
        return _Quiet()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        _RateColumn(),
        TimeElapsedColumn(),
        transient=False,
    )
