"""The Rust kernel + Arrow driver against a brute-force Python oracle of the rule in
docs/feast-compatibility.md §7.1."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast.offline import ViewJoin, point_in_time_join

TS = pa.timestamp("ns", tz="UTC")
US = 1_000  # ns; ttls are whole µs (a timedelta's resolution), timestamps are ns


@dataclass
class Case:
    key_kind: str  # "int", "str", "composite" or "none" (entity-less)
    entity_keys: list[tuple[Any, ...] | None]
    entity_ts: list[int | None]
    source_keys: list[tuple[Any, ...] | None]
    source_ts: list[int | None]
    created: list[int | None] | None
    values: list[int | None]
    ttl: int
    filter_by_created: bool


def oracle(case: Case) -> list[int | None]:
    """The chosen source row per entity row, written as directly as the rule reads.

    Ties on (event, created) go to the later source row, as the kernel documents.
    """
    out: list[int | None] = []
    for key, ts in zip(case.entity_keys, case.entity_ts, strict=True):
        best: tuple[int, float, int] | None = None
        if ts is not None and (case.key_kind == "none" or key is not None):
            for j, (skey, sts) in enumerate(zip(case.source_keys, case.source_ts, strict=True)):
                created = case.created[j] if case.created is not None else None
                if sts is None or (case.key_kind != "none" and skey != key):
                    continue
                if sts > ts or (case.ttl > 0 and sts < ts - case.ttl):
                    continue
                filtered = case.filter_by_created and case.created is not None
                if filtered and (created is None or created > ts):
                    continue
                rank = (sts, float("-inf") if created is None else created, j)
                if best is None or rank > best:
                    best = rank
        out.append(None if best is None else best[2])
    return out


def key_values(kind: str) -> st.SearchStrategy[tuple[Any, ...] | None]:
    ints = st.integers(0, 4)
    if kind == "int":
        base: st.SearchStrategy[tuple[Any, ...]] = st.tuples(ints)
    elif kind == "str":
        base = st.tuples(st.sampled_from(["a", "b", "ab", "", "é"]))
    elif kind == "composite":
        base = st.tuples(ints, st.sampled_from(["x", "y"]))
    else:
        return st.just(None)
    return st.one_of(base, st.none()) if kind != "none" else base


@st.composite
def cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["int", "str", "composite", "none"]))
    span = draw(st.sampled_from([5, 20, 1000]))
    # Timestamps on a µs grid (so ties are common), ttls in whole µs, edges hit to the ns.
    times = st.integers(0, span).map(lambda t: t * US)
    n_src = draw(st.integers(0, 25))
    n_ent = draw(st.integers(0, 25))
    key = key_values(kind)
    source_keys = [draw(key) for _ in range(n_src)]
    source_ts = [
        draw(st.one_of(times, st.none()) if n_src % 7 == 3 else times) for _ in range(n_src)
    ]
    with_created = draw(st.booleans())
    created = [draw(st.one_of(times, st.none())) for _ in range(n_src)] if with_created else None
    values = [draw(st.one_of(st.integers(-(2**62), 2**62), st.none())) for _ in range(n_src)]
    # Entity rows: drawn fresh, copied from a source row, or placed exactly on / 1 ns past a
    # ttl edge of a source row; some duplicated.
    ttl = draw(st.sampled_from([0, 1, 3, 10])) * US
    entity_keys: list[tuple[Any, ...] | None] = []
    entity_ts: list[int | None] = []
    for _ in range(n_ent):
        how = draw(st.sampled_from(["fresh", "copy", "edge", "past_edge", "dup"]))
        if how == "dup" and entity_keys:
            i = draw(st.integers(0, len(entity_keys) - 1))
            entity_keys.append(entity_keys[i])
            entity_ts.append(entity_ts[i])
        elif how in ("copy", "edge", "past_edge") and n_src and source_ts[0] is not None:
            j = draw(st.integers(0, n_src - 1))
            at = source_ts[j]
            base = 0 if at is None else at
            shift = {"copy": 0, "edge": ttl, "past_edge": ttl + 1}[how]  # +1 ns
            entity_keys.append(source_keys[j])
            entity_ts.append(base + shift)
        else:
            entity_keys.append(draw(key))
            entity_ts.append(draw(st.one_of(times, st.none()) if n_ent % 5 == 4 else times))
    return Case(
        key_kind=kind,
        entity_keys=entity_keys,
        entity_ts=entity_ts,
        source_keys=source_keys,
        source_ts=source_ts,
        created=created,
        values=values,
        ttl=ttl,
        filter_by_created=draw(st.booleans()),
    )


KEY_TYPES = {"int": [None], "str": [pa.string()], "composite": [pa.int64(), pa.large_string()]}
NAMES = ["k0", "k1"]


def key_columns(
    kind: str, keys: list[tuple[Any, ...] | None], int_type: pa.DataType
) -> dict[str, pa.Array]:
    if kind == "none":
        return {}
    types = [int_type if t is None else t for t in KEY_TYPES[kind]]
    return {
        NAMES[i]: pa.array([None if k is None else k[i] for k in keys], type=t)
        for i, t in enumerate(types)
    }


def run(case: Case) -> pa.Table:
    """Two views over one source: `v` as drawn, `w` with no ttl and no created column."""
    entity = pa.table(
        {
            **key_columns(case.key_kind, case.entity_keys, pa.int64()),
            "request": pa.array(range(len(case.entity_ts)), type=pa.int64()),
            "event_timestamp": pa.array(case.entity_ts, type=pa.int64()).cast(TS),
        }
    )
    # The source's int key is int32 and the entity's int64: widths differ on purpose.
    source_columns: dict[str, pa.Array] = {
        **key_columns(case.key_kind, case.source_keys, pa.int32()),
        "ts": pa.array(case.source_ts, type=pa.int64()).cast(TS),
        "row": pa.array(range(len(case.source_ts)), type=pa.int64()),
        "value": pa.array(case.values, type=pa.int64()),
        "label": pa.array([None if v is None else str(v) for v in case.values], type=pa.string()),
    }
    if case.created is not None:
        source_columns["created"] = pa.array(case.created, type=pa.int64()).cast(TS)
    source = pa.table(source_columns)
    n_keys = {"int": 1, "str": 1, "composite": 2, "none": 0}[case.key_kind]
    keys = [(NAMES[i], NAMES[i]) for i in range(n_keys)]
    v = ViewJoin(
        name="v",
        source=source,
        entity_join_keys=keys,
        timestamp_field="ts",
        created_timestamp_column="created" if case.created is not None else None,
        ttl=timedelta(microseconds=case.ttl // US) if case.ttl else None,
        features=[("row", "v__row"), ("value", "v__value"), ("label", "v__label")],
    )
    w = ViewJoin(
        name="w",
        source=source,
        entity_join_keys=keys,
        timestamp_field="ts",
        features=[("row", "w__row")],
    )
    return point_in_time_join(
        entity, "event_timestamp", [v, w], filter_by_created_timestamp=case.filter_by_created
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_join_matches_oracle(case: Case) -> None:
    expected = oracle(case)
    table = run(case)
    assert table.column_names == [
        *key_columns(case.key_kind, [], pa.int64()),
        "request",
        "event_timestamp",
        "v__row",
        "v__value",
        "v__label",
        "w__row",
    ]
    assert table.column("request").to_pylist() == list(range(len(case.entity_ts)))
    assert table.column("v__row").to_pylist() == expected
    assert table.column("v__value").to_pylist() == [
        None if j is None else case.values[j] for j in expected
    ]
    assert table.column("v__label").to_pylist() == [
        None if j is None or case.values[j] is None else str(case.values[j]) for j in expected
    ]
    assert table.schema.field("v__value").type == pa.int64()
    plain = Case(**{**case.__dict__, "ttl": 0, "created": None, "filter_by_created": False})
    assert table.column("w__row").to_pylist() == oracle(plain)
