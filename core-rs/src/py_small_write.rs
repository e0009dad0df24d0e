//! `encode_small_write`: the values of a few rows straight from Python lists (a parsed JSON
//! push) into the `small_write` kernel, without an Arrow array per column on the Python side
//! (each costs microseconds; a one-row push of 50 features made ~150 of them).
//!
//! Only exact types are taken: `int` for integer features and keys, `float` (or an `int` a
//! float holds exactly) for floating-point ones, `bool`, `str`, `None` for null. Anything else
//! — a bool where a number belongs, an out-of-range integer, a timestamp outside
//! `iso_time`'s subset — answers `None`, and the caller takes the Arrow path, which converts
//! or rejects it with its usual messages. So this path never has errors of its own to word.
use std::borrow::Cow;

use arrow::array::StringArray;
use arrow::array::{ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyList, PyString};

use crate::columns::BytesColumn;
use crate::error::CoreError;
use crate::iso_time;
use crate::keys::{serialize_entity_keys, KeyColumn, KeyPart, KeyType, KeyVersion};
use crate::packed::{FeatureColumn, FeatureType, Scalar};
use crate::small_write::encode_small_write as encode;

/// Largest integers a float32 / float64 holds exactly; pyarrow refuses larger ones.
const FLOAT32_EXACT: i64 = 1 << 24;
const FLOAT64_EXACT: i64 = 1 << 53;

fn int(value: &Bound<'_, PyAny>) -> Option<i64> {
    // `bool` is an `int` subclass: exact `int` only.
    if value.is_exact_instance_of::<PyInt>() {
        value.extract::<i64>().ok()
    } else {
        None
    }
}

fn float(value: &Bound<'_, PyAny>, exact_ints: i64) -> Option<f64> {
    if value.is_exact_instance_of::<PyFloat>() {
        return value.extract::<f64>().ok();
    }
    int(value)
        .filter(|v| v.abs() <= exact_ints)
        .map(|v| v as f64)
}

fn string(value: &Bound<'_, PyAny>) -> Option<String> {
    if value.is_exact_instance_of::<PyString>() {
        value.extract::<String>().ok()
    } else {
        None
    }
}

/// Every element of `list` through `take` (`None` elements stay null); `None` when any
/// element is of another type.
fn values<T>(
    list: &Bound<'_, PyList>,
    take: impl Fn(&Bound<'_, PyAny>) -> Option<T>,
) -> Option<Vec<Option<T>>> {
    list.iter()
        .map(|item| {
            if item.is_none() {
                Some(None)
            } else {
                take(&item).map(Some)
            }
        })
        .collect()
}

fn feature_array(list: &Bound<'_, PyList>, feature_type: FeatureType) -> Option<ArrayRef> {
    if feature_type.list {
        return None;
    }
    let array: ArrayRef = match feature_type.scalar {
        Scalar::Int64 => std::sync::Arc::new(Int64Array::from(values(list, int)?)),
        Scalar::Int32 => std::sync::Arc::new(Int32Array::from(values(list, |v| {
            int(v).and_then(|v| i32::try_from(v).ok())
        })?)),
        Scalar::Double => std::sync::Arc::new(Float64Array::from(values(list, |v| {
            float(v, FLOAT64_EXACT)
        })?)),
        // pyarrow narrows each double to float32 by rounding to nearest, as `as` does.
        Scalar::Float => std::sync::Arc::new(Float32Array::from(values(list, |v| {
            float(v, FLOAT32_EXACT).map(|f| f as f32)
        })?)),
        Scalar::Bool => std::sync::Arc::new(BooleanArray::from(values(list, |v| {
            if v.is_exact_instance_of::<PyBool>() {
                v.extract::<bool>().ok()
            } else {
                None
            }
        })?)),
        Scalar::String => std::sync::Arc::new(StringArray::from(values(list, string)?)),
        _ => return None,
    };
    Some(array)
}

enum OwnedKey {
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Strings(Vec<String>),
}

fn key_values(list: &Bound<'_, PyList>, key_type: KeyType) -> Option<OwnedKey> {
    match key_type {
        KeyType::Int64 => list
            .iter()
            .map(|v| int(&v))
            .collect::<Option<Vec<_>>>()
            .map(OwnedKey::Int64),
        KeyType::Int32 => list
            .iter()
            .map(|v| int(&v).and_then(|v| i32::try_from(v).ok()))
            .collect::<Option<Vec<_>>>()
            .map(OwnedKey::Int32),
        KeyType::String => list
            .iter()
            .map(|v| string(&v))
            .collect::<Option<Vec<_>>>()
            .map(OwnedKey::Strings),
        _ => None,
    }
}

fn key_parts<'a>(
    names: &'a [String],
    types: &[i64],
    keys: &'a [OwnedKey],
) -> Result<Vec<KeyPart<'a>>, CoreError> {
    names
        .iter()
        .zip(types)
        .zip(keys)
        .map(|((name, &code), values)| {
            Ok(KeyPart {
                name,
                key_type: KeyType::from_code(code)?,
                column: match values {
                    OwnedKey::Int32(v) => KeyColumn::Int32(Cow::Borrowed(v)),
                    OwnedKey::Int64(v) => KeyColumn::Int64(Cow::Borrowed(v)),
                    OwnedKey::Strings(v) => KeyColumn::Bytes(BytesColumn::Slices(
                        v.iter().map(String::as_bytes).collect(),
                    )),
                },
            })
        })
        .collect()
}

/// Each key column's values, or `None` when one is not a list of `rows` plain values.
fn owned_keys(
    columns: &[Bound<'_, PyAny>],
    types: &[i64],
    rows: usize,
) -> Result<Option<Vec<OwnedKey>>, CoreError> {
    let Some(lists) = lists(columns, rows) else {
        return Ok(None);
    };
    let mut keys = Vec::with_capacity(lists.len());
    for (list, &code) in lists.iter().zip(types) {
        match key_values(list, KeyType::from_code(code)?) {
            Some(values) => keys.push(values),
            None => return Ok(None),
        }
    }
    Ok(Some(keys))
}

fn timestamps(list: &Bound<'_, PyList>) -> Option<Vec<i64>> {
    let mut zoned = None;
    list.iter()
        .map(|item| {
            let text = item.cast_exact::<PyString>().ok()?;
            let parsed = iso_time::parse(text.to_str().ok()?)?;
            // Arrow parses a column of zoned strings or one of naive strings, not a mix.
            if *zoned.get_or_insert(parsed.zoned) != parsed.zoned {
                return None;
            }
            Some(parsed.micros)
        })
        .collect()
}

/// The lists as given, or `None` when one is not a list of `rows` values.
fn lists<'a, 'py>(
    columns: &'a [Bound<'py, PyAny>],
    rows: usize,
) -> Option<Vec<&'a Bound<'py, PyList>>> {
    columns
        .iter()
        .map(|c| c.cast_exact::<PyList>().ok().filter(|l| l.len() == rows))
        .collect()
}

/// A few rows' entity keys and packed rows from their JSON values: `(keys, rows)` as lists of
/// bytes (keys without the store's suffix), or `None` when the general path must take them.
/// Feature and key columns come in the order of `feature_types` / `key_names`.
#[pyfunction]
#[pyo3(signature = (key_names, key_types, key_columns, feature_types, feature_columns, timestamps, version = 3))]
#[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)]
pub(crate) fn encode_small_write<'py>(
    py: Python<'py>,
    key_names: Vec<String>,
    key_types: Vec<i64>,
    key_columns: Vec<Bound<'py, PyAny>>,
    feature_types: Vec<i64>,
    feature_columns: Vec<Bound<'py, PyAny>>,
    timestamps: Bound<'py, PyAny>,
    version: i64,
) -> PyResult<Option<(Bound<'py, PyList>, Bound<'py, PyList>)>> {
    let version = KeyVersion::from_number(version)?;
    if key_names.len() != key_types.len()
        || key_names.len() != key_columns.len()
        || feature_types.len() != feature_columns.len()
    {
        return Err(CoreError::InvalidArgument(format!(
            "{} key names, {} key types, {} key columns; {} feature types, {} feature columns: \
             give one of each per key and per feature",
            key_names.len(),
            key_types.len(),
            key_columns.len(),
            feature_types.len(),
            feature_columns.len()
        ))
        .into());
    }
    let Ok(stamps) = timestamps.cast_exact::<PyList>() else {
        return Ok(None);
    };
    let rows = stamps.len();
    let Some(feature_lists) = lists(&feature_columns, rows) else {
        return Ok(None);
    };
    let Some(micros) = self::timestamps(stamps) else {
        return Ok(None);
    };
    let Some(keys) = owned_keys(&key_columns, &key_types, rows)? else {
        return Ok(None);
    };
    let mut arrays = Vec::with_capacity(feature_lists.len());
    let mut types = Vec::with_capacity(feature_lists.len());
    for (list, &code) in feature_lists.iter().zip(&feature_types) {
        let feature_type = FeatureType::from_code(code)?;
        match feature_array(list, feature_type) {
            Some(array) => arrays.push(array),
            None => return Ok(None),
        }
        types.push(feature_type);
    }
    let parts = key_parts(&key_names, &key_types, &keys)?;
    let features: Vec<FeatureColumn<'_>> = arrays
        .iter()
        .zip(&types)
        .map(|(array, &feature_type)| FeatureColumn {
            name: "",
            feature_type,
            array: array.as_ref(),
        })
        .collect();
    // A few rows encode in microseconds: releasing the GIL would cost about as much.
    let Some(write) = encode(&parts, &features, micros, version)? else {
        return Ok(None);
    };
    let out_keys = PyList::empty(py);
    let out_rows = PyList::empty(py);
    for i in 0..write.len() {
        let (key, row) = write.row(i);
        out_keys.append(PyBytes::new(py, key))?;
        out_rows.append(PyBytes::new(py, row))?;
    }
    Ok(Some((out_keys, out_rows)))
}

/// Entity keys for a few rows of plain values (a JSON read request): one `bytes` per row,
/// or `None` when a value is not plainly of its key's type (the caller then builds Arrow
/// arrays, which convert or reject it with their usual messages).
#[pyfunction]
#[pyo3(signature = (key_names, key_types, key_columns, rows, version = 3))]
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn small_entity_keys<'py>(
    py: Python<'py>,
    key_names: Vec<String>,
    key_types: Vec<i64>,
    key_columns: Vec<Bound<'py, PyAny>>,
    rows: usize,
    version: i64,
) -> PyResult<Option<Bound<'py, PyList>>> {
    let version = KeyVersion::from_number(version)?;
    if key_names.len() != key_types.len() || key_names.len() != key_columns.len() {
        return Err(CoreError::InvalidArgument(format!(
            "{} key names, {} key types, {} key columns: give one of each per key",
            key_names.len(),
            key_types.len(),
            key_columns.len()
        ))
        .into());
    }
    let Some(keys) = owned_keys(&key_columns, &key_types, rows)? else {
        return Ok(None);
    };
    let parts = key_parts(&key_names, &key_types, &keys)?;
    let serialized = serialize_entity_keys(&parts, rows, version, b"")?;
    let out = PyList::empty(py);
    for pair in serialized.offsets.windows(2) {
        out.append(PyBytes::new(
            py,
            &serialized.data[pair[0] as usize..pair[1] as usize],
        ))?;
    }
    Ok(Some(out))
}
