//! Python binding of the key and value codecs: Arrow arrays in and out through the C data
//! interface (zero-copy), the GIL released around every kernel (`py.detach`, as every binding
//! does), so other Python threads (the server's event loop) keep running. Conversion only; the
//! kernels live in `keys`, `feast_value` and `mmh3`.
use arrow::array::{make_array, Array, ArrayData, ArrayRef};
use arrow::pyarrow::PyArrowType;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::CoreError;
use crate::feast_value::{self, ValueType};
use crate::keys::{self, KeyPart, KeyType, KeyVersion};
use crate::mmh3;

type PyArray = PyArrowType<ArrayData>;

fn out(array: &dyn Array) -> PyArray {
    PyArrowType(array.to_data())
}

#[pyfunction]
#[pyo3(
    signature = (names, columns, value_types, version = 3, suffix = b"".as_slice(), *, num_rows = None),
    text_signature = "(names, columns, value_types, version=3, suffix=b'', *, num_rows=None)"
)]
fn serialize_entity_keys(
    py: Python<'_>,
    names: Vec<String>,
    columns: Vec<PyArray>,
    value_types: Vec<i64>,
    version: i64,
    suffix: &[u8],
    num_rows: Option<usize>,
) -> PyResult<PyArray> {
    let arrays: Vec<ArrayRef> = columns.into_iter().map(|c| make_array(c.0)).collect();
    let suffix = suffix.to_vec();
    let keys = py.detach(move || {
        if names.len() != arrays.len() || names.len() != value_types.len() {
            return Err(CoreError::InvalidArgument(format!(
                "names, columns and value_types differ in length ({}, {}, {})",
                names.len(),
                arrays.len(),
                value_types.len()
            )));
        }
        let version = KeyVersion::from_number(version)?;
        let rows = match (num_rows, arrays.first()) {
            (Some(n), _) => n,
            (None, Some(first)) => first.len(),
            (None, None) => {
                return Err(CoreError::InvalidArgument(
                    "num_rows is required when there are no key columns".to_owned(),
                ))
            }
        };
        let mut parts = Vec::with_capacity(names.len());
        for ((name, array), &code) in names.iter().zip(&arrays).zip(&value_types) {
            if array.len() != rows {
                return Err(CoreError::InvalidArgument(format!(
                    "column '{name}' has {} rows, expected {rows}",
                    array.len()
                )));
            }
            let key_type = KeyType::from_code(code).map_err(|e| match e {
                CoreError::UnsupportedType { detail, .. } => CoreError::unsupported(name, detail),
                other => other,
            })?;
            parts.push(KeyPart {
                name,
                key_type,
                column: keys::key_column_from_arrow(array.as_ref(), key_type, name)?,
            });
        }
        let serialized = keys::serialize_entity_keys(&parts, rows, version, &suffix)?;
        Ok(arrow::array::BinaryArray::new(
            arrow::buffer::OffsetBuffer::new(serialized.offsets.into()),
            serialized.data.into(),
            None,
        ))
    })?;
    Ok(out(&keys))
}

// pyo3 extracts a `list[str]` argument only into an owned `Vec`.
#[allow(clippy::needless_pass_by_value)]
#[pyfunction]
fn entity_key_prefix(py: Python<'_>, names: Vec<String>) -> PyResult<Bound<'_, PyBytes>> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Ok(PyBytes::new(py, &keys::entity_key_prefix(&names)?))
}

#[pyfunction]
fn mmh3_32(data: &[u8]) -> u32 {
    mmh3::x86_32(data, 0)
}

#[allow(clippy::needless_pass_by_value)] // as above
#[pyfunction]
fn feature_field_names<'py>(
    py: Python<'py>,
    view: &str,
    features: Vec<String>,
) -> Vec<Bound<'py, PyBytes>> {
    features
        .iter()
        .map(|f| PyBytes::new(py, &mmh3::feature_field_name(view, f)))
        .collect()
}

fn value_type(code: i64, column: &str) -> Result<ValueType, CoreError> {
    ValueType::from_code(code).map_err(|e| match e {
        CoreError::UnsupportedType { detail, .. } => CoreError::unsupported(column, detail),
        other => other,
    })
}

#[pyfunction]
#[pyo3(signature = (array, value_type, column = ""))]
fn encode_values(
    py: Python<'_>,
    array: PyArray,
    value_type: i64,
    column: &str,
) -> PyResult<PyArray> {
    let array = make_array(array.0);
    let column = column.to_owned();
    let encoded = py.detach(move || {
        let vt = self::value_type(value_type, &column)?;
        feast_value::encode_values(array.as_ref(), vt, &column)
    })?;
    Ok(out(&encoded))
}

#[pyfunction]
#[pyo3(signature = (array, value_type, column = ""))]
fn decode_values(
    py: Python<'_>,
    array: PyArray,
    value_type: i64,
    column: &str,
) -> PyResult<PyArray> {
    let array = make_array(array.0);
    let column = column.to_owned();
    let decoded = py.detach(move || {
        let vt = self::value_type(value_type, &column)?;
        feast_value::decode_values(array.as_ref(), vt, &column)
    })?;
    Ok(out(decoded.as_ref()))
}

#[pyfunction]
#[pyo3(signature = (array, column = ""))]
fn encode_timestamps(py: Python<'_>, array: PyArray, column: &str) -> PyResult<PyArray> {
    let array = make_array(array.0);
    let column = column.to_owned();
    let encoded = py.detach(move || feast_value::encode_timestamps(array.as_ref(), &column))?;
    Ok(out(&encoded))
}

#[pyfunction]
#[pyo3(signature = (array, column = ""))]
fn decode_timestamps(py: Python<'_>, array: PyArray, column: &str) -> PyResult<PyArray> {
    let array = make_array(array.0);
    let column = column.to_owned();
    let decoded = py.detach(move || feast_value::decode_timestamps(array.as_ref(), &column))?;
    Ok(out(decoded.as_ref()))
}

/// Adds the codec functions to `repast._core`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(serialize_entity_keys, m)?)?;
    m.add_function(wrap_pyfunction!(entity_key_prefix, m)?)?;
    m.add_function(wrap_pyfunction!(mmh3_32, m)?)?;
    m.add_function(wrap_pyfunction!(feature_field_names, m)?)?;
    m.add_function(wrap_pyfunction!(encode_values, m)?)?;
    m.add_function(wrap_pyfunction!(decode_values, m)?)?;
    m.add_function(wrap_pyfunction!(encode_timestamps, m)?)?;
    m.add_function(wrap_pyfunction!(decode_timestamps, m)?)?;
    Ok(())
}
