//! `aggregate_as_of`: pyarrow arrays in (zero-copy), the `aggregate::as_of` kernel with the GIL
//! released, one pyarrow array per aggregation out. Conversion only; the rules live in
//! `aggregate/`.
use std::borrow::Cow;
use std::collections::HashMap;

use arrow::array::{
    make_array, Array, ArrayData, ArrayRef, AsArray, Float64Array, Int64Array, UInt32Array,
    UInt64Array,
};
use arrow::buffer::NullBuffer;
use arrow::compute::take;
use arrow::datatypes::TimestampNanosecondType;
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int64Type, TimeUnit};
use arrow::pyarrow::PyArrowType;
use pyo3::prelude::*;

use crate::aggregate::as_of::{aggregate, EventIndex, Side};
use crate::aggregate::distinct::{hash_bytes, hash_int, Distinct};
use crate::aggregate::partial::{
    Count, Extreme, Last, MeanFloat, MeanInt, Moments, Partial, SumFloat, SumInt,
};
use crate::aggregate::Function;
use crate::columns::{bytes_column, integers_as_i64, validity};
use crate::error::CoreError;

type PyArray = PyArrowType<ArrayData>;

/// One aggregation as Python passes it: `(function, column, values, window_ns)`.
type AggArgs = (String, String, PyArray, i64);

/// One aggregation, its column owned so the kernel can borrow it with the GIL released.
struct Agg {
    function: String,
    name: String,
    column: Column,
    window_ns: i64,
}

impl From<AggArgs> for Agg {
    fn from((function, name, values, window_ns): AggArgs) -> Self {
        Self {
            function,
            name,
            column: Column::new(values),
            window_ns,
        }
    }
}

pub(crate) struct Column {
    pub(crate) array: ArrayRef,
    nulls: Option<NullBuffer>,
}

impl Column {
    pub(crate) fn new(array: PyArray) -> Self {
        let array = make_array(array.0);
        let nulls = validity(array.as_ref());
        Self { array, nulls }
    }

    pub(crate) fn valid(&self, row: usize) -> bool {
        self.nulls.as_ref().is_none_or(|n| n.is_valid(row))
    }
}

fn integers<'a>(column: &'a Column, name: &str) -> Result<Cow<'a, [i64]>, CoreError> {
    integers_as_i64(column.array.as_ref(), name)?.ok_or_else(|| {
        CoreError::unsupported(
            name,
            format!("must be integers here, not {}", column.array.data_type()),
        )
    })
}

pub(crate) fn times<'a>(column: &'a Column, name: &str) -> Result<&'a [i64], CoreError> {
    let array = column.array.as_ref();
    Ok(match array.data_type() {
        DataType::Int64 => array.as_primitive::<Int64Type>().values(),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            array.as_primitive::<TimestampNanosecondType>().values()
        }
        other => {
            return Err(CoreError::unsupported(
                name,
                format!("timestamps must be int64 nanoseconds or timestamp[ns], not {other}"),
            ))
        }
    })
}

/// A numeric input column: integers (any width) or floats (float32 widened).
pub(crate) enum Numbers<'a> {
    Int(Cow<'a, [i64]>),
    Float(Cow<'a, [f64]>),
}

pub(crate) fn numbers<'a>(
    column: &'a Column,
    name: &str,
    function: &str,
) -> Result<Numbers<'a>, CoreError> {
    let array = column.array.as_ref();
    match array.data_type() {
        DataType::Float64 => Ok(Numbers::Float(Cow::Borrowed(
            array.as_primitive::<Float64Type>().values(),
        ))),
        DataType::Float32 => Ok(Numbers::Float(Cow::Owned(
            array
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|&v| f64::from(v))
                .collect(),
        ))),
        other => match integers_as_i64(array, name)? {
            Some(values) => Ok(Numbers::Int(values)),
            None => Err(CoreError::unsupported(
                name,
                format!("{function} needs an integer or float column, not {other}"),
            )),
        },
    }
}

/// Hashes of a `count_distinct` column's values (`aggregate::distinct`).
pub(crate) fn hashes(column: &Column, name: &str) -> Result<Vec<u64>, CoreError> {
    let array = column.array.as_ref();
    let strings = matches!(
        array.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    if let Some(bytes) = bytes_column(array, strings) {
        return Ok((0..bytes.len()).map(|r| hash_bytes(bytes.get(r))).collect());
    }
    match integers_as_i64(array, name)? {
        Some(values) => Ok(values.iter().map(|&v| hash_int(v)).collect()),
        None => Err(CoreError::unsupported(
            name,
            format!(
                "count_distinct needs an integer, string or binary column, not {}",
                array.data_type()
            ),
        )),
    }
}

struct Inputs<'a> {
    index: &'a EventIndex,
    rows: Side<'a>,
    tile_ns: i64,
}

impl Inputs<'_> {
    fn run<P, F>(&self, window_ns: i64, value: F) -> Result<Vec<Option<P::Out>>, CoreError>
    where
        P: Partial,
        F: Fn(usize) -> Option<P::In> + Sync,
    {
        aggregate::<P, F>(self.index, self.rows, window_ns, self.tile_ns, value)
    }
}

fn int64s(values: Vec<Option<i64>>) -> ArrayData {
    Int64Array::from(values).into_data()
}

fn float64s(values: Vec<Option<f64>>) -> ArrayData {
    Float64Array::from(values).into_data()
}

fn rows_of<T>(values: Vec<Option<(T, crate::aggregate::partial::At)>>) -> ArrayData {
    values
        .into_iter()
        .map(|v| v.map(|(_, at)| at.seq))
        .collect::<UInt64Array>()
        .into_data()
}

fn one(inputs: &Inputs<'_>, agg: &Agg) -> Result<ArrayData, CoreError> {
    let (function, name, col) = (agg.function.as_str(), agg.name.as_str(), &agg.column);
    let Some(parsed) = Function::parse(function) else {
        return Err(CoreError::InvalidArgument(format!(
            "unknown aggregate function '{function}'"
        )));
    };
    // `col` is in the index's order (`run`): the kernel reads it by position.
    let w = agg.window_ns;
    macro_rules! numeric {
        ($int:ty, $float:ty, $out:expr) => {
            match numbers(col, name, function)? {
                Numbers::Int(v) => $out(inputs.run::<$int, _>(w, |r| col.valid(r).then(|| v[r]))?),
                Numbers::Float(v) => {
                    $out(inputs.run::<$float, _>(w, |r| col.valid(r).then(|| v[r]))?)
                }
            }
        };
    }
    Ok(match parsed {
        Function::Count => int64s(inputs.run::<Count, _>(w, |r| col.valid(r).then_some(()))?),
        Function::Last => rows_of(inputs.run::<Last<()>, _>(w, |r| col.valid(r).then_some(()))?),
        Function::Sum => match numbers(col, name, function)? {
            Numbers::Int(v) => {
                let sums = inputs.run::<SumInt, _>(w, |r| col.valid(r).then(|| v[r]))?;
                let mut out = Vec::with_capacity(sums.len());
                for (row, sum) in sums.into_iter().enumerate() {
                    out.push(match sum {
                        None => None,
                        Some(s) => Some(i64::try_from(s).map_err(|_| {
                            CoreError::invalid(
                                name,
                                row,
                                format!("sum {s} of entity row {row}'s window overflows int64"),
                            )
                        })?),
                    });
                }
                int64s(out)
            }
            Numbers::Float(v) => {
                float64s(inputs.run::<SumFloat, _>(w, |r| col.valid(r).then(|| v[r]))?)
            }
        },
        Function::Mean => numeric!(MeanInt, MeanFloat, float64s),
        Function::Var | Function::Std => {
            let values: Cow<'_, [f64]> = match numbers(col, name, function)? {
                Numbers::Int(v) => Cow::Owned(v.iter().map(|&x| x as f64).collect()),
                Numbers::Float(v) => v,
            };
            let get = |r: usize| col.valid(r).then(|| values[r]);
            if parsed == Function::Std {
                float64s(inputs.run::<Moments<true>, _>(w, get)?)
            } else {
                float64s(inputs.run::<Moments<false>, _>(w, get)?)
            }
        }
        Function::Min => numeric!(Extreme<i64, false>, Extreme<f64, false>, rows_of),
        Function::Max => numeric!(Extreme<i64, true>, Extreme<f64, true>, rows_of),
        Function::CountDistinct => {
            let hashes = hashes(col, name)?;
            int64s(inputs.run::<Distinct, _>(w, |r| col.valid(r).then(|| hashes[r]))?)
        }
    })
}

fn side<'a>(
    ids: Option<&'a [i64]>,
    (keys, stamps): (Option<&'a Column>, &'a Column),
    what: &str,
) -> Result<Side<'a>, CoreError> {
    Ok(Side {
        keys: ids.map(|ids| (ids, keys.and_then(|c| c.nulls.as_ref()))),
        times: (times(stamps, what)?, stamps.nulls.as_ref()),
    })
}

fn run(
    keys: (Option<&Column>, &Column),
    event: (Option<&Column>, &Column),
    tile_ns: i64,
    aggregations: &[Agg],
) -> Result<Vec<ArrayData>, CoreError> {
    let row_keys = keys.0.map(|c| integers(c, "entity key ids")).transpose()?;
    let event_keys = event.0.map(|c| integers(c, "event key ids")).transpose()?;
    let events = side(event_keys.as_deref(), event, "event timestamps")?;
    let index = EventIndex::new(events)?;
    // Each distinct input column in the index's order, once: the kernel then reads every
    // window's values sequentially, and aggregations of one column share the copy.
    let order = UInt32Array::from(index.rows().to_vec());
    let mut sorted: Vec<Agg> = Vec::with_capacity(aggregations.len());
    let mut by_name: HashMap<&str, ArrayRef> = HashMap::new();
    for agg in aggregations {
        if agg.column.array.len() != index.len() {
            return Err(CoreError::InvalidArgument(format!(
                "column '{}' has {} values for {} events",
                agg.name,
                agg.column.array.len(),
                index.len()
            )));
        }
        let array = if let Some(array) = by_name.get(agg.name.as_str()) {
            array.clone()
        } else {
            let array = take(agg.column.array.as_ref(), &order, None)
                .map_err(|e| CoreError::unsupported(&agg.name, e.to_string()))?;
            by_name.insert(&agg.name, array.clone());
            array
        };
        let nulls = validity(array.as_ref());
        sorted.push(Agg {
            function: agg.function.clone(),
            name: agg.name.clone(),
            column: Column { array, nulls },
            window_ns: agg.window_ns,
        });
    }
    let inputs = Inputs {
        index: &index,
        rows: side(row_keys.as_deref(), keys, "entity timestamps")?,
        tile_ns,
    };
    sorted.iter().map(|a| one(&inputs, a)).collect()
}

/// Every aggregation's value for every entity row as of its timestamp (docs/aggregations.md).
#[pyfunction]
#[pyo3(signature = (entity_keys, entity_timestamps, event_keys, event_timestamps, tile_ns, aggregations))]
pub(crate) fn aggregate_as_of(
    py: Python<'_>,
    entity_keys: Option<PyArray>,
    entity_timestamps: PyArray,
    event_keys: Option<PyArray>,
    event_timestamps: PyArray,
    tile_ns: i64,
    aggregations: Vec<AggArgs>,
) -> PyResult<Vec<PyArray>> {
    let row_keys = entity_keys.map(Column::new);
    let row_times = Column::new(entity_timestamps);
    let event_key_ids = event_keys.map(Column::new);
    let event_times = Column::new(event_timestamps);
    let aggregations: Vec<Agg> = aggregations.into_iter().map(Agg::from).collect();
    let out = py.detach(|| {
        run(
            (row_keys.as_ref(), &row_times),
            (event_key_ids.as_ref(), &event_times),
            tile_ns,
            &aggregations,
        )
    })?;
    Ok(out.into_iter().map(PyArrowType).collect())
}
