"""Feast 0.67's ScalarMap cases with bytes, UUID, decimal and datetime keys
(tests/golden/nested_values.json, `scalar_map_cases` with a `key_kind`, recorded by
scripts/record_feast_nested_values.py), as the Python objects Feast was given and read back."""

from __future__ import annotations

import decimal
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

__all__ = ["KEYED", "STORED", "case_dict", "entries", "recorded_object", "read_back"]

_GOLDEN = orjson.loads((Path(__file__).parent / "golden" / "nested_values.json").read_bytes())
KEYED: list[dict[str, Any]] = [c for c in _GOLDEN["scalar_map_cases"] if "key_kind" in c]
"""Every case with a `key_kind`: those Feast stored (`hex`) and those it refused."""
STORED = [c for c in KEYED if "hex" in c and c["key_kind"] != "nested_scalar_map"]
"""The cases Feast stored, but the ScalarMap nested in a value (a separate, documented gap)."""


def recorded_object(tagged: Any) -> Any:
    """A recorded key or value back as the Python object Feast was given."""
    if not isinstance(tagged, dict):
        return tagged
    if len(tagged) == 1:
        ((kind, text),) = tagged.items()
        if kind == "bytes":
            return bytes.fromhex(text)
        if kind == "uuid":
            return uuid.UUID(text)
        if kind == "decimal":
            return decimal.Decimal(text)
        if kind == "datetime":
            return datetime.fromisoformat(text["isoformat"])
        if kind == "scalar_map":
            return {recorded_object(k): recorded_object(v) for k, v in text}
        if kind == "datetime64":
            import numpy as np

            return np.datetime64(text)
        if kind == "date":
            return datetime.fromisoformat(text).date()
        if kind == "tuple":
            return tuple(int(p) for p in text.strip("()").split(","))
    return {k: recorded_object(v) for k, v in tagged.items()}


def case_dict(case: dict[str, Any]) -> dict[Any, Any]:
    """The dict Feast was given; a `pandas_timestamp` case's keys as pandas Timestamps."""
    given = {recorded_object(k): recorded_object(v) for k, v in case["python_pairs"]}
    if case["key_kind"] == "pandas_timestamp":
        return {pd.Timestamp(k): v for k, v in given.items()}
    return given


def read_back(case: dict[str, Any]) -> dict[Any, Any]:
    """What Feast's SDK read back, as Python objects."""
    return {recorded_object(k): recorded_object(v) for k, v in case["read_back_pairs"]}


def entries(read: dict[Any, Any] | None) -> list[tuple[type, str, Any]] | None:
    """A read map's entries in order, each key's type and text (a NaN key is not equal to
    itself, its text is)."""
    return None if read is None else [(type(k), str(k), v) for k, v in read.items()]
