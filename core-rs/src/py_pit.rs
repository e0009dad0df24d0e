//! `point_in_time_indices`: pyarrow arrays in (zero-copy), the `pit` kernel with the GIL
//! released, pyarrow `UInt64Array`s of source row indices out (null = no match).
//!
//! Conversion only; the rules live in `pit.rs`. The Python driver (`repast.offline.join`)
//! normalizes the inputs first (integer keys as int64, strings as `string`/`large_string`,
//! timestamps as int64 nanoseconds), so this layer accepts exactly those layouts.
use arrow::array::{make_array, Array, ArrayData, ArrayRef, AsArray, UInt32Array, UInt64Array};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampNanosecondType};
use arrow::pyarrow::PyArrowType;
use pyo3::prelude::*;

use crate::columns::{bytes_column, validity};
use crate::error::CoreError;
use crate::pit::{
    key_partitions, point_in_time_join_many, EntitySide, KeyColumn, KeyValues, PitOptions, Side,
    SourceSide, TimeColumn, ViewInput, NO_MATCH, NO_PARTITION,
};

type Named = (String, PyArrowType<ArrayData>);

/// One view as Python passes it:
/// `(view_name, entity_keys, source_keys, event_timestamps, created_timestamps, ttl_ns)`,
/// each column a `(column_name, array)` pair.
#[derive(FromPyObject)]
pub(crate) struct ViewArgs(String, Vec<Named>, Vec<Named>, Named, Option<Named>, i64);

/// One named input column and its validity (`columns::validity`), owned, so the kernel can
/// borrow them with the GIL released.
struct Column {
    name: String,
    array: ArrayRef,
    validity: Option<NullBuffer>,
}

impl From<Named> for Column {
    fn from((name, array): Named) -> Self {
        let array = make_array(array.0);
        let validity = validity(array.as_ref());
        Self {
            name,
            array,
            validity,
        }
    }
}

fn key_column(column: &Column) -> Result<KeyColumn<'_>, CoreError> {
    let array = column.array.as_ref();
    let bytes = match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 => bytes_column(array, true),
        DataType::Binary | DataType::LargeBinary => bytes_column(array, false),
        _ => None,
    };
    let values = match (array.data_type(), bytes) {
        (DataType::Int64, _) => KeyValues::Int64(array.as_primitive::<Int64Type>().values()),
        (_, Some(bytes)) => KeyValues::Bytes(bytes),
        (other, None) => {
            return Err(CoreError::unsupported(
                &column.name,
                format!(
                    "a join key must be int64, string, large_string, binary or \
                     large_binary here, not {other}"
                ),
            ))
        }
    };
    Ok(KeyColumn {
        name: &column.name,
        values,
        validity: column.validity.as_ref(),
    })
}

fn time_column(column: &Column) -> Result<TimeColumn<'_>, CoreError> {
    let array = column.array.as_ref();
    let values: &[i64] = match array.data_type() {
        DataType::Int64 => array.as_primitive::<Int64Type>().values(),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            array.as_primitive::<TimestampNanosecondType>().values()
        }
        other => {
            return Err(CoreError::unsupported(
                &column.name,
                format!("timestamps must be int64 nanoseconds or timestamp[ns], not {other}"),
            ))
        }
    };
    Ok(TimeColumn {
        name: &column.name,
        values,
        validity: column.validity.as_ref(),
    })
}

/// Indices as a `UInt64Array`, null where nothing matched (the slot's value is 0).
fn to_indices(mut indices: Vec<u64>) -> ArrayData {
    let valid = BooleanBuffer::collect_bool(indices.len(), |i| indices[i] != NO_MATCH);
    let nulls = NullBuffer::new(valid);
    for v in &mut indices {
        if *v == NO_MATCH {
            *v = 0;
        }
    }
    let nulls = (nulls.null_count() > 0).then_some(nulls);
    UInt64Array::new(ScalarBuffer::from(indices), nulls).into_data()
}

/// A view's columns, owned, so the kernel can borrow them with the GIL released.
struct View {
    name: String,
    entity_keys: Vec<Column>,
    source_keys: Vec<Column>,
    event_timestamps: Column,
    created_timestamps: Option<Column>,
    ttl_ns: i64,
}

impl From<ViewArgs> for View {
    fn from(ViewArgs(name, ek, sk, event, created, ttl_ns): ViewArgs) -> Self {
        Self {
            name,
            entity_keys: ek.into_iter().map(Column::from).collect(),
            source_keys: sk.into_iter().map(Column::from).collect(),
            event_timestamps: event.into(),
            created_timestamps: created.map(Column::from),
            ttl_ns,
        }
    }
}

fn key_columns(columns: &[Column]) -> Result<Vec<KeyColumn<'_>>, CoreError> {
    columns.iter().map(key_column).collect()
}

fn run(
    entity_ts: &Column,
    views: &[View],
    filter_by_created_timestamp: bool,
) -> Result<Vec<ArrayData>, CoreError> {
    let timestamps = time_column(entity_ts)?;
    let mut keys: Vec<(Vec<KeyColumn<'_>>, Vec<KeyColumn<'_>>)> = Vec::with_capacity(views.len());
    for view in views {
        keys.push((
            key_columns(&view.entity_keys)?,
            key_columns(&view.source_keys)?,
        ));
    }
    let mut inputs = Vec::with_capacity(views.len());
    for (view, (ek, sk)) in views.iter().zip(&keys) {
        inputs.push(ViewInput {
            entity: EntitySide {
                keys: ek,
                timestamps,
            },
            source: SourceSide {
                keys: sk,
                event_timestamps: time_column(&view.event_timestamps)?,
                created_timestamps: view
                    .created_timestamps
                    .as_ref()
                    .map(time_column)
                    .transpose()?,
            },
            options: PitOptions {
                ttl_ns: view.ttl_ns,
                filter_by_created_timestamp,
            },
        });
    }
    point_in_time_join_many(&inputs)
        .into_iter()
        .zip(views)
        .map(|(result, view)| result.map(to_indices).map_err(|e| e.in_view(&view.name)))
        .collect()
}

/// For every view, the source row each entity row joins to (docs/feast-compatibility.md §7.1),
/// as a pyarrow `UInt64Array` with nulls where nothing matches: `source.take(indices)` gathers
/// the features.
#[pyfunction]
#[pyo3(signature = (entity_timestamps, views, filter_by_created_timestamp = false))]
pub(crate) fn point_in_time_indices(
    py: Python<'_>,
    entity_timestamps: Named,
    views: Vec<ViewArgs>,
    filter_by_created_timestamp: bool,
) -> PyResult<Vec<PyArrowType<ArrayData>>> {
    let entity_ts = Column::from(entity_timestamps);
    let views: Vec<View> = views.into_iter().map(View::from).collect();
    let out = py.detach(|| run(&entity_ts, &views, filter_by_created_timestamp))?;
    Ok(out.into_iter().map(PyArrowType).collect())
}

fn partitions_of(keys: &[Column], partitions: u32) -> Result<ArrayData, CoreError> {
    let mut ids = key_partitions(Side::Source, &key_columns(keys)?, partitions)?;
    let valid = BooleanBuffer::collect_bool(ids.len(), |i| ids[i] != NO_PARTITION);
    let nulls = NullBuffer::new(valid);
    for id in &mut ids {
        if *id == NO_PARTITION {
            *id = 0;
        }
    }
    let nulls = (nulls.null_count() > 0).then_some(nulls);
    Ok(UInt32Array::new(ScalarBuffer::from(ids), nulls).into_data())
}

/// For every row of the join-key columns, its key-hash partition in `0..partitions` as a
/// pyarrow `UInt32Array` (null where a key is null), for joins too large for memory: equal keys
/// (entity or source, any string layout) always get the same id.
#[pyfunction]
pub(crate) fn point_in_time_partitions(
    py: Python<'_>,
    keys: Vec<Named>,
    partitions: u32,
) -> PyResult<PyArrowType<ArrayData>> {
    let keys: Vec<Column> = keys.into_iter().map(Column::from).collect();
    let out = py.detach(|| partitions_of(&keys, partitions))?;
    Ok(PyArrowType(out))
}
