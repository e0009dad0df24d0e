"""On-demand feature views at read time: the udf run over the features and request data a
read gathered, as Feast runs it.

The udf sees each input as Feast's SDK reads it: JSON features parsed, a ScalarMap as a dict
with its typed keys, a ZonedTimestamp as a datetime in its zone. Its ScalarMap and
ZonedTimestamp outputs are turned into the stored text forms (`stored_types`), so the response
reads them back as it reads stored features of those types; other outputs are Arrow arrays of
the declared type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from repast.conversion import exact_array
from repast.errors import EntityError, InvalidValueError, RepastError, RequestDataNotFoundError
from repast.on_demand_feature_view import OnDemandFeatureView
from repast.online.stored_types import (
    is_json,
    json_column,
    parsed_values,
    python_values,
    scalar_map_inputs,
    to_json_text,
    to_zoned_text,
    zoned_inputs,
)
from repast.validate import closest
from repast.value_type import ValueType

__all__ = ["OdfvPlan", "transform"]

_SCALAR_MAP = int(ValueType.SCALAR_MAP)
_ZONED = int(ValueType.ZONED_TIMESTAMP)
_TYPED = frozenset([_SCALAR_MAP, _ZONED])
"""Value types whose Python form is not what their stored column converts to on its own."""


@dataclass
class OdfvPlan:
    view: OnDemandFeatureView
    features: list[str]
    inputs: list[tuple[int, int, list[str], int | None]]
    """(view plan index, feature index, the names the udf sees it under, its value type)."""
    request: list[tuple[str, pa.DataType]]
    udf: Callable[..., Any]
    dtypes: list[Any] = field(init=False)
    """The declared Feast type of each of `features`."""
    input_kinds: dict[str, int | None] = field(init=False)
    """The value type of each name the udf sees an input under."""

    def __post_init__(self) -> None:
        declared = {f.name: f.dtype for f in self.view.features}
        self.dtypes = [declared[name] for name in self.features]
        self.input_kinds = {alias: kind for _, _, aliases, kind in self.inputs for alias in aliases}

    def output_kind(self, index: int) -> int | None:
        """The value type of output `index` when its response column holds a stored text form
        (ScalarMap, ZonedTimestamp), else None (an Arrow array of the declared type)."""
        kind = int(self.dtypes[index].to_value_type())
        return kind if kind in _TYPED else None


def _python(array: pa.Array, kind: int | None) -> list[Any]:
    return python_values(array, kind) if kind in _TYPED else parsed_values(array)


def _output(name: str, dtype: Any, values: Any, from_pandas: bool) -> pa.Array:
    """One output column (a list, or a pandas Series): ScalarMap and ZonedTimestamp as their
    stored text (checked as a write checks them), anything else as the declared Arrow type."""
    kind = int(dtype.to_value_type())
    if kind == _SCALAR_MAP:
        return json_column(to_json_text(scalar_map_inputs(list(values), name), kind, name))
    if kind == _ZONED:
        return to_zoned_text(pa.array(zoned_inputs(list(values), name), pa.string()), name)
    return pa.array(values, dtype.to_arrow_type(), from_pandas=from_pandas)


def transform(
    plan: OdfvPlan, values: list[list[pa.Array]], raw: Mapping[str, Sequence[Any]], n: int
) -> list[pa.Array]:
    """Run an ODFV's udf over the gathered features and request data; one array per
    requested output feature."""
    columns: dict[str, pa.Array] = {}
    for vi, fi, aliases, _ in plan.inputs:
        for alias in aliases:
            columns[alias] = values[vi][fi]
    kinds = plan.input_kinds
    for name, arrow in plan.request:
        if name not in raw:
            raise RequestDataNotFoundError(
                f"on-demand feature view '{plan.view.name}' needs request data '{name}'; "
                f"the entity rows have {sorted(raw)}{closest(name, list(raw))}"
            )
        columns[name] = exact_array(raw[name], arrow, f"request data '{name}'", EntityError)
    try:
        if plan.view.mode == "python":
            out = plan.udf({k: _python(v, kinds.get(k)) for k, v in columns.items()})
            outputs = zip(plan.features, plan.dtypes, strict=True)
            return [_output(f, dtype, out[f], False) for f, dtype in outputs]
        import pandas as pd  # pandas-mode udfs only: the base install has no pandas

        special = {k for k, v in columns.items() if is_json(v.type) or kinds.get(k) in _TYPED}
        plain = {k: v for k, v in columns.items() if k not in special}
        inputs = pa.table(plain).to_pandas() if plain else pd.DataFrame(index=range(n))
        for k in special:  # reach the udf as Python objects, as Feast passes them
            inputs[k] = _python(columns[k], kinds.get(k))
        frame = plan.udf(inputs[list(columns)])
        outputs = zip(plan.features, plan.dtypes, strict=True)
        return [_output(f, dtype, frame[f], True) for f, dtype in outputs]
    except (KeyError, pa.ArrowException, InvalidValueError) as exc:
        types = [str(dtype.to_arrow_type()) for dtype in plan.dtypes]
        raise RepastError(
            f"on-demand feature view '{plan.view.name}': its udf did not return "
            f"{plan.features} as {types}: {exc}"
        ) from exc
    except Exception as exc:
        # The udf is user code run on request data (nulls, odd values): its failure is an
        # answer about this request, not a server fault.
        raise EntityError(
            f"on-demand feature view '{plan.view.name}': its udf failed on this request's "
            f"data: {type(exc).__name__}: {exc}"
        ) from exc
