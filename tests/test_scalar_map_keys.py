"""ScalarMap keys beyond int, float and bool, against Feast 0.67 (tests/golden/nested_values.json,
the `scalar_map_cases` with a `key_kind`, recorded by scripts/record_feast_nested_values.py).

Feast takes bytes, uuid.UUID, decimal.Decimal and datetime (pandas.Timestamp too) keys; Repast
does not store them yet (docs/feast-compatibility.md §2.6): a write holding one is refused with
the column and row, and Feast's own bytes holding one still read with every value, in order."""

from __future__ import annotations

import decimal
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repast import _core
from repast.errors import InvalidValueError
from repast.online.stored_types import json_column, python_values, scalar_map_inputs

GOLDEN = orjson.loads((Path(__file__).parent / "golden" / "nested_values.json").read_bytes())
KEYED = [c for c in GOLDEN["scalar_map_cases"] if "key_kind" in c]
SM = 47


def _id(case: dict[str, Any]) -> str:
    return f"{case['key_kind']}:{orjson.dumps(case['python_pairs']).decode()[:30]}"


def _python(tagged: Any) -> Any:
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
            return {_python(k): _python(v) for k, v in text}
        if kind == "datetime64":
            import numpy as np

            return np.datetime64(text)
        if kind == "date":
            return datetime.fromisoformat(text).date()
        if kind == "tuple":
            return tuple(int(p) for p in text.strip("()").split(","))
    return {k: _python(v) for k, v in tagged.items()}


def _dict(case: dict[str, Any]) -> dict[Any, Any]:
    return {_python(k): _python(v) for k, v in case["python_pairs"]}


def _write(dicts: list[Any]) -> pa.Array:
    return _core.nested_json_text(scalar_map_inputs(dicts, "m"), SM, None, "m")


# Everything but the ScalarMap nested in a value, whose outer keys are ints (a separate gap).
UNSTORED = [c for c in KEYED if c["key_kind"] != "nested_scalar_map"]


@pytest.mark.parametrize("case", UNSTORED, ids=_id)
def test_keys_repast_does_not_store_are_refused_naming_column_and_row(
    case: dict[str, Any],
) -> None:
    # Feast takes bytes/UUID/decimal/datetime keys and refuses numpy.datetime64, date, tuple
    # and None; Repast refuses all of these (the text of a UUID/datetime key is not typed).
    assert case.get("feast_error", "TypeError") == "TypeError"
    with pytest.raises(InvalidValueError, match="column 'm' row 1: not a SCALAR_MAP value") as e:
        _write([{1: "fine"}, _dict(case), {2: "fine"}])
    if "feast_error" not in case:  # a key Feast takes: the error says Repast lacks it
        assert "which Repast does not store yet" in str(e.value)


@pytest.mark.parametrize("case", [c for c in UNSTORED if "hex" in c], ids=_id)
def test_feasts_bytes_with_such_keys_read_every_value_in_order(case: dict[str, Any]) -> None:
    decoded = _core.decode_nested(pa.array([bytes.fromhex(case["hex"])]), SM, None, "m")
    got = python_values(json_column(decoded), SM)[0]
    want = [_python(v) for _, v in case["read_back_pairs"]]
    # Keys read as text (base64 bytes, UUID and decimal text, epoch seconds): the known gap.
    assert list(got.values()) == want
    assert len(got) == len(case["read_back_pairs"])


def test_feasts_bytes_of_a_scalar_map_nested_in_a_value_keep_the_values() -> None:
    case = next(c for c in KEYED if c["key_kind"] == "nested_scalar_map")
    decoded = _core.decode_nested(pa.array([bytes.fromhex(case["hex"])]), SM, None, "m")
    got = python_values(json_column(decoded), SM)[0]
    assert list(got) == [1, 2]  # the outer keys stay ints; the inner ones read as their text
    assert got[1] == {"2": "x", "3": None}
    assert got[2] == {"aw==": {"1.5": "deep"}}


INT64 = st.integers(-(2**63), 2**63 - 1)
UNKEPT_KEYS = st.one_of(
    st.binary(max_size=8),
    st.decimals(allow_nan=False, places=3),
    st.datetimes().map(pd.Timestamp),
    st.tuples(st.integers(), st.integers()),
)


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(st.dictionaries(INT64, INT64, max_size=3), max_size=5),
    key=UNKEPT_KEYS,
    good=st.dictionaries(INT64, st.text(max_size=3), max_size=3),
)
def test_the_row_of_an_unkept_key_is_named(
    before: list[dict[int, int]], key: Any, good: dict[int, str]
) -> None:
    bad = {**good, key: 1}
    with pytest.raises(InvalidValueError) as raised:
        _write([*before, bad, good])
    message = str(raised.value)
    assert message.startswith(f"column 'm' row {len(before)}: not a SCALAR_MAP value: key ")
    assert type(key).__name__ in message


def test_a_python_dict_nested_in_a_value_is_written_with_text_keys() -> None:
    # The known gap (docs/feast-compatibility.md §2.6): Feast writes the inner dict as a nested
    # `scalar_map_val` (field 47, tag fa02); Repast writes a `map_val` (field 20, tag a201)
    # with the key's text.
    stored = _write([{1: {2: "x"}}])
    assert stored.to_pylist() == ['{"1":{"2":"x"}}']
    encoded = _core.encode_nested(stored, SM, "m")[0].as_py()
    assert encoded.hex() == "fa02150a130a021001120da2010a0a080a01321203120178"
