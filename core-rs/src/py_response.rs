//! `packed_response_json`: stored packed rows (Python `bytes`) in, the feature columns'
//! `results` JSON out. Conversion only; the writing lives in `response.rs`.
use arrow::array::{make_array, Array, ArrayData, AsArray};
use arrow::datatypes::Int32Type;
use arrow::pyarrow::PyArrowType;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

use crate::error::CoreError;
use crate::packed::FeatureType;
use crate::response::{write_feature_results, OutputColumn, ViewRead};

/// (view name, stored rows, value types of every feature, selected positions, fan-out, ttl µs)
type ViewArgs = (
    String,
    Vec<Option<PyBackedBytes>>,
    Vec<i64>,
    Vec<usize>,
    Option<PyArrowType<ArrayData>>,
    i64,
);

/// Below this many values the GIL hand-off costs more than the work it frees the GIL for.
const DETACH_CELLS: usize = 8192;

fn fanout(
    array: Option<PyArrowType<ArrayData>>,
    view: &str,
) -> Result<Option<Vec<usize>>, CoreError> {
    let Some(array) = array else {
        return Ok(None);
    };
    let array = make_array(array.0);
    let Some(indices) = array.as_primitive_opt::<Int32Type>() else {
        return Err(CoreError::InvalidArgument(format!(
            "view '{view}': the fan-out must be an int32 array, got {}",
            array.data_type()
        )));
    };
    if indices.null_count() > 0 || indices.values().iter().any(|&i| i < 0) {
        return Err(CoreError::InvalidArgument(format!(
            "view '{view}': the fan-out holds nulls or negative indices"
        )));
    }
    Ok(Some(indices.values().iter().map(|&i| i as usize).collect()))
}

/// The comma-separated `results` objects (`{"values", "statuses", "event_timestamps"}`) of
/// the feature columns of one online read, as Feast's server writes them. `views` holds one
/// tuple per view read: (name, one stored packed row or None per key read, the Feast value
/// types of all its features in schema order, the schema positions requested, an int32
/// array giving each entity row's read row or None, the ttl in microseconds or 0).
/// `outputs` lists (view index, index into that view's positions) in response order.
#[pyfunction]
// The reads borrow the row bytes out of `views`, so it is kept whole until the end.
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn packed_response_json(
    py: Python<'_>,
    views: Vec<ViewArgs>,
    outputs: Vec<(usize, usize)>,
    entity_rows: usize,
    now_micros: i64,
) -> PyResult<Bound<'_, PyBytes>> {
    let mut reads = Vec::with_capacity(views.len());
    let mut cells = 0usize;
    for (name, rows, value_types, select, fan, ttl_micros) in &views {
        let feature_types = value_types
            .iter()
            .map(|&t| FeatureType::from_code(t))
            .collect::<Result<Vec<_>, _>>()?;
        cells += rows.len() * select.len();
        reads.push(ViewRead {
            name,
            rows: rows.iter().map(|r| r.as_deref()).collect(),
            feature_types,
            select: select.clone(),
            fanout: fanout(fan.as_ref().map(|a| PyArrowType(a.0.clone())), name)?,
            ttl_micros: *ttl_micros,
        });
    }
    let outputs: Vec<OutputColumn> = outputs
        .into_iter()
        .map(|(view, feature)| OutputColumn { view, feature })
        .collect();
    let write = || {
        let mut out = Vec::with_capacity(64 + cells * 12);
        write_feature_results(&reads, &outputs, entity_rows, now_micros, &mut out).map(|()| out)
    };
    let out = if cells >= DETACH_CELLS {
        py.detach(write)?
    } else {
        write()?
    };
    Ok(PyBytes::new(py, &out))
}
