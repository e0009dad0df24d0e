"""`ValueType`: Feast's value type enum (`feast.value_type`), with Feast's numbers.

The numbers are the `feast.types.ValueType.Enum` protobuf numbers
(docs/feast-compatibility.md §2.6) so that they can go straight into Feast Value tags and
entity keys; `UNKNOWN` stands for the proto's `INVALID` (0), and `PDF_BYTES`/`IMAGE_BYTES`
exist only in Python, as in Feast.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ValueType"]


class ValueType(IntEnum):
    """The type of one Feast value; `*_LIST` and `*_SET` are collections of the base type."""

    UNKNOWN = 0
    BYTES = 1
    STRING = 2
    INT32 = 3
    INT64 = 4
    DOUBLE = 5
    FLOAT = 6
    BOOL = 7
    UNIX_TIMESTAMP = 8
    BYTES_LIST = 11
    STRING_LIST = 12
    INT32_LIST = 13
    INT64_LIST = 14
    DOUBLE_LIST = 15
    FLOAT_LIST = 16
    BOOL_LIST = 17
    UNIX_TIMESTAMP_LIST = 18
    NULL = 19
    MAP = 20
    MAP_LIST = 21
    BYTES_SET = 22
    STRING_SET = 23
    INT32_SET = 24
    INT64_SET = 25
    DOUBLE_SET = 26
    FLOAT_SET = 27
    BOOL_SET = 28
    UNIX_TIMESTAMP_SET = 29
    PDF_BYTES = 30
    IMAGE_BYTES = 31
    JSON = 32
    JSON_LIST = 33
    STRUCT = 34
    STRUCT_LIST = 35
    UUID = 36
    TIME_UUID = 37
    UUID_LIST = 38
    TIME_UUID_LIST = 39
    UUID_SET = 40
    TIME_UUID_SET = 41
    VALUE_LIST = 42
    VALUE_SET = 43
    DECIMAL = 44
    DECIMAL_LIST = 45
    DECIMAL_SET = 46
    SCALAR_MAP = 47
    ZONED_TIMESTAMP = 48
