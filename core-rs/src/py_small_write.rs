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

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyList, PyString};

use crate::columns::BytesColumn;
use crate::error::CoreError;
use crate::iso_time;
use crate::keys::{serialize_entity_keys, KeyColumn, KeyPart, KeyType, KeyVersion};
use crate::packed::{Cell, FeatureType, Scalar};
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

/// A feature value taken out of Python (strings owned: the list items are temporaries).
enum Plain {
    Null,
    Int(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(String),
}

impl Plain {
    fn cell(&self) -> Cell<'_> {
        match self {
            Self::Null => Cell::Null,
            Self::Int(v) => Cell::Int(*v),
            Self::F32(v) => Cell::F32(*v),
            Self::F64(v) => Cell::F64(*v),
            Self::Bool(v) => Cell::Bool(*v),
            Self::Str(v) => Cell::Str(v),
        }
    }
}

/// One value of a feature of `scalar` type, or `None` when it is not plainly of that type.
fn plain(value: &Bound<'_, PyAny>, scalar: Scalar) -> Option<Plain> {
    if value.is_none() {
        return Some(Plain::Null);
    }
    match scalar {
        Scalar::Int64 => int(value).map(Plain::Int),
        Scalar::Int32 => int(value)
            .filter(|v| i32::try_from(*v).is_ok())
            .map(Plain::Int),
        Scalar::Double => float(value, FLOAT64_EXACT).map(Plain::F64),
        // pyarrow narrows each double to float32 by rounding to nearest, as `as` does.
        Scalar::Float => float(value, FLOAT32_EXACT).map(|f| Plain::F32(f as f32)),
        Scalar::Bool if value.is_exact_instance_of::<PyBool>() => {
            value.extract::<bool>().ok().map(Plain::Bool)
        }
        Scalar::String => string(value).map(Plain::Str),
        _ => None,
    }
}

fn feature_values(list: &Bound<'_, PyList>, feature_type: FeatureType) -> Option<Vec<Plain>> {
    if feature_type.list {
        return None;
    }
    list.iter()
        .map(|item| plain(&item, feature_type.scalar))
        .collect()
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

/// Each string's time (`None` where the value is null, if `nulls` allows it), or `None`
/// when a value is not a string in `iso_time`'s subset.
fn parse_times(list: &Bound<'_, PyList>, nulls: bool) -> Option<Vec<Option<i64>>> {
    let mut zoned = None;
    list.iter()
        .map(|item| {
            if nulls && item.is_none() {
                return Some(None);
            }
            let text = item.cast_exact::<PyString>().ok()?;
            let parsed = iso_time::parse(text.to_str().ok()?)?;
            // Arrow parses a column of zoned strings or one of naive strings, not a mix.
            if *zoned.get_or_insert(parsed.zoned) != parsed.zoned {
                return None;
            }
            Some(Some(parsed.micros))
        })
        .collect()
}

fn timestamps(list: &Bound<'_, PyList>) -> Option<Vec<i64>> {
    parse_times(list, false)?.into_iter().collect()
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
/// Feature and key columns come in the order of `feature_types` / `key_names`;
/// `other_timestamps` are columns that are not stored but must hold valid times or nulls
/// (a created-timestamp column).
#[pyfunction]
#[pyo3(signature = (key_names, key_types, key_columns, feature_types, feature_columns, timestamps, version = 3, other_timestamps = Vec::new()))]
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
    other_timestamps: Vec<Bound<'py, PyAny>>,
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
    // Not stored, but the general path parses them and refuses a bad one.
    let others = lists(&other_timestamps, rows);
    if !others.is_some_and(|l| l.iter().all(|list| parse_times(list, true).is_some())) {
        return Ok(None);
    }
    let Some(keys) = owned_keys(&key_columns, &key_types, rows)? else {
        return Ok(None);
    };
    let mut values = Vec::with_capacity(feature_lists.len());
    for (list, &code) in feature_lists.iter().zip(&feature_types) {
        match feature_values(list, FeatureType::from_code(code)?) {
            Some(column) => values.push(column),
            None => return Ok(None),
        }
    }
    let cells: Vec<Vec<Cell<'_>>> = values
        .iter()
        .map(|column| column.iter().map(Plain::cell).collect())
        .collect();
    let parts = key_parts(&key_names, &key_types, &keys)?;
    // A few rows encode in microseconds: releasing the GIL would cost about as much.
    let Some(write) = encode(&parts, &cells, &micros, version)? else {
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
