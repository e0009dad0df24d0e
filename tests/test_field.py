from __future__ import annotations

import json

import pytest

from repast import Field, ValueType
from repast.errors import RepoValidationError
from repast.types import Array, Float32, Int64, String


def test_defaults() -> None:
    f = Field(name="conv_rate", dtype=Float32)
    assert f.description == ""
    assert f.tags == {}
    assert (f.vector_index, f.vector_length, f.vector_search_metric) == (False, 0, None)
    assert f.to_value_type() == ValueType.FLOAT
    assert repr(f) == "Field(name='conv_rate', dtype=Float32)"


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        Field("conv_rate", Float32)  # type: ignore[call-arg]


def test_round_trip() -> None:
    f = Field(
        name="emb",
        dtype=Array(Float32),
        description="embedding",
        tags={"b": "2", "a": "1"},
        vector_index=True,
        vector_length=8,
        vector_search_metric="cosine",
    )
    d = f.to_dict()
    assert d["dtype"] == "Array(Float32)"
    assert list(d["tags"]) == ["a", "b"]
    back = Field.from_dict(json.loads(json.dumps(d)))
    assert back == f
    assert back.to_dict() == d


def test_equality_and_hash() -> None:
    a = Field(name="x", dtype=Int64)
    assert a == Field(name="x", dtype=Int64)
    assert a != Field(name="x", dtype=String)
    assert a != "x"
    assert hash(a) == hash(Field(name="x", dtype=String))
    assert sorted([a, Field(name="b", dtype=Int64)])[1] is a


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "dtype": Int64}, "Field: name must be a non-empty string"),
        ({"name": "x", "dtype": ValueType.INT64}, "Field 'x': dtype must be a repast.types type"),
        ({"name": "x", "dtype": int}, "Field 'x': dtype must be a repast.types type"),
        ({"name": "x", "dtype": Int64, "tags": {"a": 1}}, "Field 'x': tags must map strings"),
        ({"name": "x", "dtype": Int64, "vector_length": -1}, "Field 'x': vector_length must not"),
        ({"name": "x", "dtype": Int64, "description": None}, "Field 'x': description must be"),
    ],
)
def test_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(RepoValidationError, match=message):
        Field(**kwargs)  # type: ignore[arg-type]
