//! `latest_per_key` and `LatestState`: pyarrow arrays in (zero-copy), the `latest` kernels with
//! the GIL released, pyarrow `UInt64Array`s of row indices out. Conversion only.
use arrow::array::{make_array, Array, ArrayData, ArrayRef, UInt64Array};
use arrow::pyarrow::PyArrowType;
use pyo3::prelude::*;

use crate::error::CoreError;
use crate::latest::{self, Batch};

type PyArray = PyArrowType<ArrayData>;

fn indices(v: Vec<u64>) -> PyArray {
    PyArrowType(UInt64Array::from(v).into_data())
}

struct Columns {
    keys: ArrayRef,
    event: ArrayRef,
    created: Option<ArrayRef>,
}

impl Columns {
    fn new(keys: PyArray, event: PyArray, created: Option<PyArray>) -> Self {
        Self {
            keys: make_array(keys.0),
            event: make_array(event.0),
            created: created.map(|c| make_array(c.0)),
        }
    }

    fn batch(&self) -> Result<Batch<'_>, CoreError> {
        Batch::new(
            self.keys.as_ref(),
            self.event.as_ref(),
            self.created.as_deref(),
        )
    }
}

/// The index of every distinct key's latest row (max event time, then max created time, then
/// the last row), ascending, as a pyarrow `UInt64Array`.
#[pyfunction]
#[pyo3(signature = (keys, event_timestamps, created_timestamps = None))]
pub(crate) fn latest_per_key(
    py: Python<'_>,
    keys: PyArray,
    event_timestamps: PyArray,
    created_timestamps: Option<PyArray>,
) -> PyResult<PyArray> {
    let columns = Columns::new(keys, event_timestamps, created_timestamps);
    let out = py.detach(|| columns.batch().map(|b| latest::latest_per_key(&b)))?;
    Ok(indices(out))
}

/// The running latest row per key over a stream of batches (see `latest.rs`).
#[pyclass(module = "repast._core", name = "LatestState")]
pub(crate) struct PyLatestState {
    inner: latest::LatestState,
}

#[pymethods]
impl PyLatestState {
    #[new]
    fn new() -> Self {
        Self {
            inner: latest::LatestState::new(),
        }
    }

    /// Feeds one batch; returns the rows of the batch that are now their key's winner,
    /// ascending. They take the candidate ids `candidates .. candidates + len` in that order.
    #[pyo3(signature = (keys, event_timestamps, created_timestamps = None))]
    fn update(
        &mut self,
        py: Python<'_>,
        keys: PyArray,
        event_timestamps: PyArray,
        created_timestamps: Option<PyArray>,
    ) -> PyResult<PyArray> {
        let columns = Columns::new(keys, event_timestamps, created_timestamps);
        let inner = &mut self.inner;
        let out = py.detach(|| columns.batch().map(|b| inner.update(&b)))?;
        Ok(indices(out))
    }

    /// The candidate ids of every key's winner, ascending.
    fn winners(&self, py: Python<'_>) -> PyArray {
        indices(py.detach(|| self.inner.winners()))
    }

    /// The winners' candidate ids, ascending, then renumbers them `0 .. len(self)`.
    fn compact(&mut self, py: Python<'_>) -> PyArray {
        let inner = &mut self.inner;
        indices(py.detach(|| inner.compact()))
    }

    /// Candidate ids handed out since the last compaction.
    #[getter]
    fn candidates(&self) -> u64 {
        self.inner.candidates()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }
}
