"""`Field`: one named, typed column of a view or request source (`feast.field`)."""

from __future__ import annotations

from typing import Any

from repast._spec import Spec, check_bool, check_name, check_str, check_tags, fail, where
from repast.types import ComplexFeastType, FeastType, PrimitiveFeastType, from_string
from repast.value_type import ValueType

__all__ = ["Field"]


class Field(Spec):
    """A feature or entity column: name, dtype (a `repast.types` type) and metadata.

    >>> from repast.types import Float32
    >>> Field(name="conv_rate", dtype=Float32).to_dict()["dtype"]
    'Float32'
    """

    def __init__(
        self,
        *,
        name: str,
        dtype: FeastType,
        description: str = "",
        tags: dict[str, str] | None = None,
        vector_index: bool = False,
        vector_length: int = 0,
        vector_search_metric: str | None = None,
    ) -> None:
        self.name = check_name("Field", name)
        at = where("Field", name)
        if isinstance(dtype, ValueType):
            fail(at, f"dtype must be a repast.types type (e.g. Int64), not ValueType.{dtype.name}")
        if not isinstance(dtype, PrimitiveFeastType | ComplexFeastType):
            fail(at, f"dtype must be a repast.types type (e.g. Int64), got {dtype!r}")
        self.dtype: FeastType = dtype
        self.description: str = check_str(at, "description", description)
        self.tags = check_tags(at, tags)
        self.vector_index = check_bool(at, "vector_index", vector_index)
        if not isinstance(vector_length, int) or isinstance(vector_length, bool):
            fail(at, f"vector_length must be an integer, got {vector_length!r}")
        if vector_length < 0:
            fail(at, "vector_length must not be negative")
        self.vector_length = vector_length
        self.vector_search_metric: str | None = check_str(
            at, "vector_search_metric", vector_search_metric, optional=True
        )

    def to_value_type(self) -> ValueType:
        return self.dtype.to_value_type()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": str(self.dtype),
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
            "vector_index": self.vector_index,
            "vector_length": self.vector_length,
            "vector_search_metric": self.vector_search_metric,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Field:
        return cls(
            name=d["name"],
            dtype=from_string(d["dtype"]),
            description=d.get("description", ""),
            tags=d.get("tags"),
            vector_index=d.get("vector_index", False),
            vector_length=d.get("vector_length", 0),
            vector_search_metric=d.get("vector_search_metric"),
        )

    def __lt__(self, other: Field) -> bool:
        return self.name < other.name

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, dtype={self.dtype})"


def check_fields(where_: str, field: str, value: object) -> list[Field]:
    """A list of `Field`s with distinct names; None is empty."""
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(f, Field) for f in value):
        fail(where_, f"{field} must be a list of Field, got {value!r}")
    seen: set[str] = set()
    for f in value:
        if f.name in seen:
            fail(where_, f"{field} names {f.name!r} twice")
        seen.add(f.name)
    return list(value)
