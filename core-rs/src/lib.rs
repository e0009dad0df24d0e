//! Python bindings only; the kernels live in their own modules.
use pyo3::prelude::*;

pub mod aggregate;
pub mod columns;
pub mod error;
pub mod feast_value;
pub mod iso_time;
pub mod keys;
pub mod latest;
pub mod mmh3;
pub mod nested;
pub mod packed;
pub mod pit;
mod py_aggregate;
mod py_codecs;
mod py_latest;
mod py_nested;
mod py_packed;
mod py_pit;
mod py_response;
mod py_scalar_maps;
mod py_small_write;
mod py_tiles;
pub mod response;
pub mod small_write;
pub mod value_type;

use error::{DecodeError, InvalidValueError, RepastError, UnsupportedTypeError};

/// `repast._core`. Every binding releases the GIL the same way, `py.detach(|| kernel)?`: the
/// kernel returns `Result<_, CoreError>` and `?` turns a `CoreError` into its Python class.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    m.add("RepastError", py.get_type::<RepastError>())?;
    m.add("InvalidValueError", py.get_type::<InvalidValueError>())?;
    m.add("DecodeError", py.get_type::<DecodeError>())?;
    m.add(
        "UnsupportedTypeError",
        py.get_type::<UnsupportedTypeError>(),
    )?;
    py_codecs::register(m)?;
    py_nested::register(m)?;
    py_scalar_maps::register(m)?;
    m.add_function(wrap_pyfunction!(py_pit::point_in_time_indices, m)?)?;
    m.add_function(wrap_pyfunction!(py_pit::point_in_time_partitions, m)?)?;
    m.add_function(wrap_pyfunction!(py_packed::encode_packed_rows, m)?)?;
    m.add_function(wrap_pyfunction!(py_packed::decode_packed_rows, m)?)?;
    m.add_function(wrap_pyfunction!(py_response::packed_response_json, m)?)?;
    m.add_function(wrap_pyfunction!(py_small_write::encode_small_write, m)?)?;
    m.add_function(wrap_pyfunction!(py_small_write::small_entity_keys, m)?)?;
    m.add_function(wrap_pyfunction!(py_latest::latest_per_key, m)?)?;
    m.add_class::<py_latest::PyLatestState>()?;
    // Windowed aggregations (issue 17).
    m.add_function(wrap_pyfunction!(py_aggregate::aggregate_as_of, m)?)?;
    m.add_function(wrap_pyfunction!(py_tiles::tiles_update, m)?)?;
    m.add_function(wrap_pyfunction!(py_tiles::tiles_read, m)?)?;
    Ok(())
}
