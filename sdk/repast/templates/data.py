"""Synthetic driver statistics for the demo project (seeded, so every run writes the same rows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["write_driver_stats"]


def write_driver_stats(
    path: Path,
    *,
    drivers: int = 5,
    days: int = 15,
    end: datetime | None = None,
    seed: int = 7,
) -> pa.Table:
    """Hourly rows for drivers 1001.. over the `days` before `end` (default: this hour, UTC)."""
    if end is None:
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hours = days * 24
    rng = np.random.default_rng(seed)
    start_us = int((end - timedelta(hours=hours - 1)).timestamp() * 1_000_000)
    hour_us = 3_600_000_000
    ts = np.tile(start_us + np.arange(hours, dtype=np.int64) * hour_us, drivers)
    ids = np.repeat(np.arange(1001, 1001 + drivers, dtype=np.int64), hours)
    n = len(ts)
    utc_us = pa.timestamp("us", tz="UTC")
    table = pa.table(
        {
            "event_timestamp": pa.array(ts, utc_us),
            "driver_id": ids,
            "conv_rate": rng.random(n, dtype=np.float32),
            "acc_rate": rng.random(n, dtype=np.float32),
            "avg_daily_trips": rng.integers(0, 1000, n, dtype=np.int64),
            "created": pa.array(ts + rng.integers(0, 600_000_000, n), utc_us),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return table
