# Hand-written stub of the Rust extension (core-rs); keep it in step with core-rs/src/lib.rs.
from collections.abc import Sequence
from typing import Any, final

import pyarrow as pa

__all__ = [
    "VERSION",
    "RepastError",
    "InvalidValueError",
    "DecodeError",
    "UnsupportedTypeError",
    "serialize_entity_keys",
    "entity_key_prefix",
    "mmh3_32",
    "feature_field_names",
    "encode_values",
    "decode_values",
    "encode_timestamps",
    "decode_timestamps",
    "nested_json_text",
    "encode_nested",
    "decode_nested",
    "check_text_values",
    "unique_set_values",
    "is_native_feast_type",
    "zoned_text",
    "json_array_cells",
    "tag_scalar_map_keys",
    "scalar_map_objects",
    "point_in_time_indices",
    "point_in_time_partitions",
    "encode_packed_rows",
    "decode_packed_rows",
    "packed_response_json",
    "encode_small_write",
    "small_entity_keys",
    "latest_per_key",
    "LatestState",
    "aggregate_as_of",
    "tiles_update",
    "tiles_read",
]

VERSION: str

class RepastError(Exception): ...

# --- Entity keys and Feast Value codecs (core-rs/src/py_codecs.rs) ---------------------------
# Value type codes are Feast's `ValueType` numbers. Arrow types per value type (docs/internals.md,
# "Value types and Arrow"):
#   BYTES(1) binary | STRING(2) string | INT32(3) int32 | INT64(4) int64 | DOUBLE(5) float64
#   FLOAT(6) float32 | BOOL(7) bool | UNIX_TIMESTAMP(8) timestamp[us, tz=UTC] | JSON(32) string
#   *_LIST(11-18) list<element of the scalar type>
# Arrays cross zero-copy (Arrow C data interface); pass `pa.Array`, not `pa.ChunkedArray`.

class InvalidValueError(RepastError):
    """A value cannot be used as asked; the message names the column and row.

    Derives from RepastError only (not ValueError): `create_exception!` takes one base.
    """

class DecodeError(InvalidValueError):
    """Stored bytes are not a valid Value/Timestamp protobuf or hold another type than asked."""

class UnsupportedTypeError(RepastError):
    """An Arrow type or value type the codec does not handle."""

def serialize_entity_keys(
    names: list[str],
    columns: list[pa.Array],
    value_types: list[int],
    version: int = 3,
    suffix: bytes = b"",
    *,
    num_rows: int | None = None,
) -> pa.BinaryArray:
    """Feast `serialize_entity_key` (v3 or v2) of every row, each followed by `suffix`.

    value_types: BYTES=1, STRING=2, INT32=3, INT64=4, UNIX_TIMESTAMP=8. Nulls are an error.
    With no columns, `num_rows` is required and every row is the zero-key serialization.
    """

def entity_key_prefix(names: list[str]) -> bytes:
    """Feast `serialize_entity_key_prefix`: the v3 count and sorted name section."""

def mmh3_32(data: bytes) -> int:
    """MurmurHash3 x86 32-bit, seed 0, as an unsigned int."""

def feature_field_names(view: str, features: list[str]) -> list[bytes]:
    """Feast Redis hash fields: `mmh3_32(f"{view}:{feature}")` as 4 bytes little-endian."""

def encode_values(array: pa.Array, value_type: int, column: str = "") -> pa.BinaryArray:
    """Feast `Value` protobuf bytes per cell; a null cell (or a scalar NaN) gives b""."""

def decode_values(array: pa.Array, value_type: int, column: str = "") -> pa.Array:
    """Feast `Value` bytes back to the Arrow type of `value_type`; b"" and null_val are null."""

def encode_timestamps(array: pa.Array, column: str = "") -> pa.BinaryArray:
    """`google.protobuf.Timestamp` bytes of a timestamp (any unit) or int64-nanosecond column."""

def decode_timestamps(array: pa.Array, column: str = "") -> pa.TimestampArray:
    """`google.protobuf.Timestamp` bytes to timestamp[us, tz=UTC]; b"" is the epoch."""

# --- Nested values: maps, structs, sets, UUIDs, decimals (core-rs/src/py_nested.rs) ---------

def nested_json_text(
    array: pa.Array, value_type: int, declared: pa.DataType | None = None, column: str = ""
) -> pa.StringArray:
    """Compact JSON text per cell of a MAP/MAP_LIST/STRUCT/STRUCT_LIST/VALUE_LIST/VALUE_SET/
    SCALAR_MAP column (struct, map or list column, or JSON text); a Map's keys sorted, a
    Struct checked against `declared`, a ScalarMap's int/float/bool keys kept in order as their
    JSON text (`{"1":"a"}`). Raises `InvalidValueError` naming the column and row."""

def encode_nested(array: pa.Array, value_type: int, column: str = "") -> pa.BinaryArray:
    """Feast `Value` bytes (b"" for null) of a nested, set, UUID, decimal or zoned-timestamp
    column, as Feast writes them (map entries sorted by key, set elements deduplicated and
    sorted, a ScalarMap's entries in order)."""

def decode_nested(
    array: pa.Array, value_type: int, declared: pa.DataType | None = None, column: str = ""
) -> pa.Array:
    """Feast `Value` bytes of those types back to JSON text (nested; a Struct's fields in the
    order `declared` gives), lists (sets), strings, or `<isoformat>[<zone>]` text (zoned)."""

def check_text_values(array: pa.Array, value_type: int, column: str = "") -> None:
    """Raise `InvalidValueError` for UUID/decimal text Python's `uuid`/`decimal` would refuse."""

def unique_set_values(array: pa.Array, value_type: int, column: str = "") -> pa.ListArray:
    """A set feature's list column with each row's elements deduplicated and sorted (as Feast
    stores a set); a null element raises `InvalidValueError`."""

def json_array_cells(text: bytes, column: str = "") -> pa.StringArray:
    """One JSON text cell per element of a JSON array (null elements as null cells)."""

def tag_scalar_map_keys(values: list[Any], column: str = "") -> list[Any]:
    """`values` with each dict that has a bytes, `uuid.UUID`, `decimal.Decimal` or `datetime`
    key replaced by its `[key, value]` pairs, those keys tagged (`{"bytes": base64}`,
    `{"uuid": text}`, `{"decimal": text}`, `{"timestamp": whole seconds}`, a naive datetime
    taken as UTC); other items as they are. Any other key type (a date, a tuple, None...)
    raises `InvalidValueError` naming the column and row."""

def scalar_map_objects(array: pa.Array, column: str = "") -> list[dict[Any, Any] | None]:
    """The dicts of a stored SCALAR_MAP column (its JSON text) with their keys typed as Feast's
    SDK reads them: ints, floats, bools, bytes, `uuid.UUID`, `decimal.Decimal`, UTC datetimes;
    None for a null cell. Raises `DecodeError` naming the row of text that is not a stored map."""

def zoned_text(array: pa.Array, column: str = "") -> pa.StringArray:
    """`<isoformat>[<zone>]` per cell of a ZONED_TIMESTAMP column: a timestamp column (its zone
    for every row), ISO 8601 text (optionally with a `[zone]` suffix) or a struct of
    `timestamp` and `zone`. Raises `InvalidValueError` naming the row of bad text or an unknown
    zone, `UnsupportedTypeError` for another column type."""

def is_native_feast_type(value_type: int) -> bool:
    """Whether `encode_nested`/`decode_nested` handle `value_type`."""

# --- Packed rows and latest-per-key (core-rs/src/py_packed.rs, py_latest.rs) ------------------
# Packed row format: docs/internals.md, "Packed rows". Value types as above, plus JSON_LIST(33).

def encode_packed_rows(
    columns: list[pa.Array],
    value_types: list[int],
    event_timestamps: pa.Array,
    names: list[str] | None = None,
) -> pa.BinaryArray:
    """One packed row per row: `columns[i]` is feature i of the row (Feast type `value_types[i]`).

    event_timestamps: a timestamp column of any unit and time zone, no nulls. `names` label errors.
    Null and NaN values are stored as nil; UNIX_TIMESTAMP values as whole seconds.
    """

def decode_packed_rows(
    rows: pa.Array, value_types: list[int], select: list[int]
) -> tuple[pa.TimestampArray, list[pa.Array]]:
    """Packed rows (binary, null = none stored) of a view with `value_types` in schema order.

    Returns the event times (timestamp[us, tz=UTC]) and one array per index in `select`; null
    where the row is missing or holds fewer features. A corrupt row raises DecodeError.
    """

# --- Small writes (core-rs/src/py_small_write.rs, small_write.rs, iso_time.rs) ----------------

def encode_small_write(
    key_names: list[str],
    key_types: list[int],
    key_columns: list[list[Any]],
    feature_types: list[int],
    feature_columns: list[list[Any]],
    timestamps: list[Any],
    version: int = 3,
    other_timestamps: list[list[Any]] = ...,
) -> tuple[list[bytes], list[bytes]] | None:
    """A few rows' entity keys (no store suffix) and packed rows, from plain Python values.

    Columns are lists of one value per row (`None` = null); `timestamps` are ISO 8601 strings
    (`YYYY-MM-DD[T ]HH:MM:SS[.ffffff][Z|+HH:MM]`, all zoned or all naive = UTC);
    `other_timestamps` are not stored but must hold such strings or None. Exact types
    only: int for INT32/INT64 (and keys), float or an exactly representable int for
    FLOAT/DOUBLE, bool, str for STRING (and keys). Returns None — use the Arrow path — for any
    other value, type or timestamp form, for a repeated key, and when no feature holds a value.
    """

def small_entity_keys(
    key_names: list[str],
    key_types: list[int],
    key_columns: list[list[Any]],
    rows: int,
    version: int = 3,
) -> list[bytes] | None:
    """Serialized entity keys of `rows` rows of plain Python values, one per row.

    Exact types only (int for INT32/INT64, str for STRING; no nulls); None — use the Arrow
    path — for anything else, or when a column is not a list of `rows` values.
    """

# --- Response JSON (core-rs/src/py_response.rs) ---------------------------------------------

def packed_response_json(
    views: list[
        tuple[str, list[bytes | None], list[int], list[int], pa.Int32Array | pa.Array | None, int]
    ],
    outputs: list[tuple[int, int]],
    entity_rows: int,
    now_micros: int,
) -> bytes:
    """The feature columns' `results` objects of a `/get-online-features` answer, comma-separated.

    `views`: per view read, (name, stored packed row or None per key read, value types of all
    its features in schema order, schema positions requested, int32 read row per entity row
    or None when rows were read one per entity row, ttl in microseconds or 0). `outputs`:
    (view index, index into its positions) per feature column, in response order. Values
    print as orjson prints them; statuses are PRESENT / NOT_FOUND / OUTSIDE_MAX_AGE (judged
    against `now_micros`; a stale value is null). A corrupt row raises DecodeError naming
    the view and row; inconsistent arguments raise InvalidValueError.
    """

def latest_per_key(
    keys: pa.Array, event_timestamps: pa.Array, created_timestamps: pa.Array | None = None
) -> pa.UInt64Array:
    """Index of each distinct key's latest row, ascending.

    Latest = max event time, then max created time (null = oldest), then the last row.
    """

@final
class LatestState:
    """Latest row per key over a stream of batches, in memory proportional to the keys.

    Each row `update` returns takes the next candidate id; keep those rows (in that order) in a
    winners table, `compact()` it when it grows, and take `winners()` from it at the end.
    """

    def __init__(self) -> None: ...
    def update(
        self,
        keys: pa.Array,
        event_timestamps: pa.Array,
        created_timestamps: pa.Array | None = None,
    ) -> pa.UInt64Array:
        """Rows of this batch that are now their key's winner, ascending."""
    def winners(self) -> pa.UInt64Array:
        """Candidate ids of every key's current winner, ascending."""
    def compact(self) -> pa.UInt64Array:
        """Like `winners()`, then renumbers those candidates 0..len(self)-1 in that order."""
    @property
    def candidates(self) -> int:
        """Candidate ids handed out since the last compaction."""
    def __len__(self) -> int: ...

# --- Point-in-time join (core-rs/src/py_pit.rs; rules in pit.rs and
# docs/feast-compatibility.md §7.1) -------------------------------------------------------------
# A column is a `(name, array)` pair; the name labels errors. Keys: int64, string, large_string,
# binary or large_binary (the driver in repast.offline.join casts to these). Timestamps: int64
# nanoseconds since the epoch (UTC) or timestamp[ns]. Arrays cross zero-copy.

_Column = tuple[str, pa.Array]
# (view name, entity key columns, source key columns (same order), source event timestamps,
#  source created timestamps or None, ttl in ns (0 = unbounded))
_PitView = tuple[str, Sequence[_Column], Sequence[_Column], _Column, _Column | None, int]

def point_in_time_indices(
    entity_timestamps: _Column,
    views: Sequence[_PitView],
    filter_by_created_timestamp: bool = False,
) -> list[pa.UInt64Array]:
    """Per view, the source row each entity row joins to, null where none (GIL released).

    Equal keys, latest event time <= the entity time and >= entity time - ttl, ties to the
    larger created time, then to the later source row. Views run in parallel.
    """

def point_in_time_partitions(keys: Sequence[_Column], partitions: int) -> pa.UInt32Array:
    """Per row of the join-key columns, its key-hash partition in `0..partitions`, null where a
    key is null (GIL released). Equal keys get equal ids on either side and in any string
    layout, so a join too large for memory can run partition by partition.
    """

# --- Windowed aggregations (core-rs/src/py_aggregate.rs; docs/aggregations.md) ---------------

def aggregate_as_of(
    entity_keys: pa.Array | None,
    entity_timestamps: pa.Array,
    event_keys: pa.Array | None,
    event_timestamps: pa.Array,
    tile_ns: int,
    aggregations: Sequence[tuple[str, str, pa.Array, int]],
) -> list[pa.Array]:
    """Every `(function, column, values, window_ns)` for every entity row as of its timestamp.

    Keys are dense integer ids (equal keys equal ids on both sides; None: a view without
    entities), timestamps int64 nanoseconds or timestamp[ns]; a null key or time never matches.
    Returns int64 (sum of integers, count, count_distinct), float64 (sum of floats, mean, var,
    stddev), or uint64 event rows to `take` (min, max, last), null for an empty window.
    """

def tiles_update(
    specs: Sequence[tuple[str, str, int]],
    tile_ns: int,
    stored: Sequence[bytes | None],
    event_entities: pa.Array,
    event_timestamps: pa.Array,
    columns: Sequence[tuple[str, pa.Array]],
    seq_base: int,
    now_ns: int,
    lateness_ns: int | None = None,
) -> tuple[list[bytes], list[int], int, int]:
    """Folds events into stored tile sets (one per entity; None = none yet).

    `specs`: (function, input kind "int" / "float" / "text" / "binary" / "other", window ns)
    per aggregation; `event_entities`: each event's index into `stored`; `columns`: one (name,
    input column) per spec. Returns the new sets, each one's newest event time (µs), the number
    of events dropped because no read at or after `now_ns` reaches their tile, and the number
    dropped as late: before their entity's newest stored event (before this call) minus
    `lateness_ns` (None: no event is late).
    """

def tiles_read(
    specs: Sequence[tuple[str, str, int]],
    tile_ns: int,
    stored: Sequence[bytes | None],
    at_ns: int,
) -> list[bytes | None]:
    """Each stored tile set as of `at_ns`, as the view's packed row (None where none is stored)."""
