//! Python binding of the nested-value codecs (`nested`): whole Arrow columns in and out, the
//! GIL released around each kernel. Conversion only.
use arrow::array::{make_array, Array, ArrayData};
use arrow::datatypes::DataType;
use arrow::pyarrow::PyArrowType;
use pyo3::prelude::*;

use crate::nested;

type PyArray = PyArrowType<ArrayData>;

fn out(array: &dyn Array) -> PyArray {
    PyArrowType(array.to_data())
}

#[pyfunction]
#[pyo3(signature = (array, value_type, declared = None, column = ""))]
fn nested_json_text(
    py: Python<'_>,
    array: PyArray,
    value_type: i64,
    declared: Option<PyArrowType<DataType>>,
    column: &str,
) -> PyResult<PyArray> {
    let array = make_array(array.0);
    let declared = declared.map(|d| d.0);
    let column = column.to_owned();
    let text = py.detach(move || {
        nested::json_text(array.as_ref(), value_type, declared.as_ref(), &column)
    })?;
    Ok(out(&text))
}

#[pyfunction]
#[pyo3(signature = (array, value_type, column = ""))]
fn encode_nested(
    py: Python<'_>,
    array: PyArray,
    value_type: i64,
    column: &str,
) -> PyResult<PyArray> {
    let array = make_array(array.0);
    let column = column.to_owned();
    let encoded = py.detach(move || nested::encode_feast(array.as_ref(), value_type, &column))?;
    Ok(out(&encoded))
}

#[pyfunction]
#[pyo3(signature = (array, value_type, declared = None, column = ""))]
fn decode_nested(
    py: Python<'_>,
    array: PyArray,
    value_type: i64,
    declared: Option<PyArrowType<DataType>>,
    column: &str,
) -> PyResult<PyArray> {
    let array = make_array(array.0);
    let declared = declared.map(|d| d.0);
    let column = column.to_owned();
    let decoded = py.detach(move || {
        nested::decode_feast(array.as_ref(), value_type, declared.as_ref(), &column)
    })?;
    Ok(out(decoded.as_ref()))
}

#[pyfunction]
#[pyo3(signature = (array, value_type, column = ""))]
fn check_text_values(
    py: Python<'_>,
    array: PyArray,
    value_type: i64,
    column: &str,
) -> PyResult<()> {
    let array = make_array(array.0);
    let column = column.to_owned();
    py.detach(move || nested::check_text(array.as_ref(), value_type, &column))?;
    Ok(())
}

#[pyfunction]
#[pyo3(signature = (array, value_type, column = ""))]
fn unique_set_values(
    py: Python<'_>,
    array: PyArray,
    value_type: i64,
    column: &str,
) -> PyResult<PyArray> {
    let array = make_array(array.0);
    let column = column.to_owned();
    let sets = py.detach(move || nested::unique_sets(array.as_ref(), value_type, &column))?;
    Ok(out(sets.as_ref()))
}

#[pyfunction]
#[pyo3(signature = (text, column = ""))]
fn json_array_cells(py: Python<'_>, text: &[u8], column: &str) -> PyResult<PyArray> {
    let text = std::str::from_utf8(text)
        .map_err(|e| crate::error::CoreError::unsupported(column, format!("not UTF-8: {e}")))?
        .to_owned();
    let column = column.to_owned();
    let cells = py.detach(move || nested::json_array_cells(&text, &column))?;
    Ok(out(&cells))
}

#[pyfunction]
#[pyo3(signature = (array, column = ""))]
fn zoned_text(py: Python<'_>, array: PyArray, column: &str) -> PyResult<PyArray> {
    let array = make_array(array.0);
    let column = column.to_owned();
    let text = py.detach(move || nested::zoned::zoned_text(array.as_ref(), &column))?;
    Ok(out(&text))
}

#[pyfunction]
fn is_native_feast_type(value_type: i64) -> bool {
    nested::is_native(value_type)
}

/// Adds the nested-value functions to `repast._core`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(nested_json_text, m)?)?;
    m.add_function(wrap_pyfunction!(encode_nested, m)?)?;
    m.add_function(wrap_pyfunction!(decode_nested, m)?)?;
    m.add_function(wrap_pyfunction!(check_text_values, m)?)?;
    m.add_function(wrap_pyfunction!(unique_set_values, m)?)?;
    m.add_function(wrap_pyfunction!(json_array_cells, m)?)?;
    m.add_function(wrap_pyfunction!(is_native_feast_type, m)?)?;
    m.add_function(wrap_pyfunction!(zoned_text, m)?)?;
    Ok(())
}
