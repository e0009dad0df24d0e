"""A small reader of the protobuf wire format, enough to read Feast's registry without Feast.

A message is read whole into `Message`: field number -> the values in file order, a varint
or fixed-width field as an int and a length-delimited one as bytes (a nested message, a
string or packed numbers: the schema in `convert.py` says which). Unknown fields are kept and
ignored, as protobuf readers do; anything that does not parse to the end (a truncated or
corrupt file) raises `WireError` with the byte offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

__all__ = ["Message", "WireError", "parse"]

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(data: bytes, pos: int, base: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError(f"byte {base + pos}: the data ends inside a varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError(f"byte {base + pos}: a varint longer than 10 bytes")


def parse(data: bytes, base: int = 0) -> Message:
    """`data` read as one message; `base` is its offset in the file (for error messages)."""
    fields: dict[int, list[int | bytes]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos, base)
        number, kind = key >> 3, key & 7
        if number == 0:
            raise WireError(f"byte {base + pos}: field number 0")
        value: int | bytes
        if kind == _VARINT:
            value, pos = _varint(data, pos, base)
        elif kind in (_FIXED64, _FIXED32):
            width = 8 if kind == _FIXED64 else 4
            if pos + width > len(data):
                raise WireError(f"byte {base + pos}: the data ends inside a fixed-width field")
            value = int.from_bytes(data[pos : pos + width], "little")
            pos += width
        elif kind == _BYTES:
            length, pos = _varint(data, pos, base)
            if pos + length > len(data):
                raise WireError(
                    f"byte {base + pos}: a field of {length} bytes runs past the end of the data"
                )
            value = data[pos : pos + length]
            pos += length
        else:
            raise WireError(f"byte {base + pos}: unknown wire type {kind}")
        fields.setdefault(number, []).append(value)
    return Message(fields, base)


class Message:
    """One parsed message; accessors take the field number and give protobuf's defaults
    (0, "", False, empty) for fields that are absent."""

    def __init__(self, fields: dict[int, list[int | bytes]], base: int) -> None:
        self._fields = fields
        self.base = base

    def has(self, number: int) -> bool:
        return number in self._fields

    def _last(self, number: int) -> int | bytes | None:
        values = self._fields.get(number)
        return values[-1] if values else None

    def number(self, number: int) -> int:
        value = self._last(number)
        if isinstance(value, bytes):
            raise WireError(f"message at byte {self.base}: field {number} is not a number")
        return value or 0

    def flag(self, number: int) -> bool:
        return self.number(number) != 0

    def text(self, number: int) -> str:
        value = self._last(number)
        if value is None:
            return ""
        if not isinstance(value, bytes):
            raise WireError(f"message at byte {self.base}: field {number} is not a string")
        try:
            return value.decode()
        except UnicodeDecodeError as exc:
            raise WireError(f"message at byte {self.base}: field {number}: {exc}") from None

    def texts(self, number: int) -> list[str]:
        return [Message({1: [v]}, self.base).text(1) for v in self._fields.get(number, [])]

    def msg(self, number: int) -> Message | None:
        value = self._last(number)
        if value is None:
            return None
        if not isinstance(value, bytes):
            raise WireError(f"message at byte {self.base}: field {number} is not a message")
        return parse(value, self.base)

    def msgs(self, number: int) -> Iterator[Message]:
        for value in self._fields.get(number, []):
            if not isinstance(value, bytes):
                raise WireError(f"message at byte {self.base}: field {number} is not a message")
            yield parse(value, self.base)

    def map(self, number: int) -> dict[str, str]:
        """A `map<string, string>` field (entries with key 1 and value 2)."""
        return {entry.text(1): entry.text(2) for entry in self.msgs(number)}

    def timestamp(self, number: int) -> datetime | None:
        """A `google.protobuf.Timestamp` field (seconds 1, nanos 2) as UTC, None if absent."""
        stamp = self.msg(number)
        if stamp is None:
            return None
        micros = _signed(stamp.number(1)) * 1_000_000 + stamp.number(2) // 1000
        try:
            return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
        except OverflowError:
            raise WireError(
                f"message at byte {self.base}: field {number}: time out of range"
            ) from None

    def duration(self, number: int) -> timedelta | None:
        """A `google.protobuf.Duration` field (seconds 1, nanos 2), None if absent."""
        value = self.msg(number)
        if value is None:
            return None
        try:
            return timedelta(
                seconds=_signed(value.number(1)), microseconds=_signed(value.number(2)) // 1000
            )
        except OverflowError:
            raise WireError(
                f"message at byte {self.base}: field {number}: duration out of range"
            ) from None


def _signed(value: int) -> int:
    """An int64 varint as a signed number (negative values are sent as 2^64 + v)."""
    return value - (1 << 64) if value >= 1 << 63 else value
