//! `point_in_time_indices`: pyarrow arrays in (zero-copy), the `pit` kernel with the GIL
//! released, pyarrow `UInt64Array`s of source row indices out (null = no match).
//!
//! Conversion only; the rules live in `pit.rs`. The Python driver (`repast.offline.join`)
//! normalizes the inputs first (integer keys as int64, strings as `string`/`large_string`,
//! timestamps as int64 nanoseconds), so this layer accepts exactly those layouts.
use arrow::array::{Array, ArrayData, UInt32Array, UInt64Array};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::pyarrow::PyArrowType;
use pyo3::prelude::*;

use crate::error::CoreError;
use crate::pit::{
    key_partitions, point_in_time_join_many, EntitySide, KeyColumn, KeyValues, PitError,
    PitOptions, Side, SourceSide, TimeColumn, Validity, ViewInput, NO_MATCH, NO_PARTITION,
};

type Named = (String, PyArrowType<ArrayData>);

/// One view as Python passes it:
/// `(view_name, entity_keys, source_keys, event_timestamps, created_timestamps, ttl_ns)`,
/// each column a `(column_name, array)` pair.
#[derive(FromPyObject)]
pub(crate) struct ViewArgs(String, Vec<Named>, Vec<Named>, Named, Option<Named>, i64);

fn validity(data: &ArrayData) -> Option<Validity<'_>> {
    data.nulls()
        .filter(|n| n.null_count() > 0)
        .map(|n| Validity::new(n.validity(), n.offset()))
}

fn key_column<'a>(name: &'a str, data: &'a ArrayData) -> Result<KeyColumn<'a>, CoreError> {
    let len = data.len();
    let values = match data.data_type() {
        DataType::Int64 => KeyValues::Int64(&data.buffer::<i64>(0)[..len]),
        DataType::Utf8 | DataType::Binary => KeyValues::Bytes {
            offsets: &data.buffer::<i32>(0)[..=len],
            data: data.buffers()[1].as_slice(),
        },
        DataType::LargeUtf8 | DataType::LargeBinary => KeyValues::LargeBytes {
            offsets: &data.buffer::<i64>(0)[..=len],
            data: data.buffers()[1].as_slice(),
        },
        other => {
            return Err(CoreError::unsupported(
                name,
                format!(
                    "a join key must be int64, string, large_string, binary or \
                     large_binary here, not {other}"
                ),
            ))
        }
    };
    Ok(KeyColumn {
        name,
        values,
        validity: validity(data),
    })
}

fn time_column<'a>(name: &'a str, data: &'a ArrayData) -> Result<TimeColumn<'a>, CoreError> {
    match data.data_type() {
        DataType::Int64 | DataType::Timestamp(TimeUnit::Nanosecond, _) => Ok(TimeColumn {
            name,
            values: &data.buffer::<i64>(0)[..data.len()],
            validity: validity(data),
        }),
        other => Err(CoreError::unsupported(
            name,
            format!("timestamps must be int64 nanoseconds or timestamp[ns], not {other}"),
        )),
    }
}

fn pit_error(view: &str, err: &PitError) -> CoreError {
    let message = format!("feature view '{view}': {err}");
    match err {
        PitError::KeyKind { .. } => CoreError::UnsupportedType {
            column: String::new(),
            detail: message,
        },
        _ => CoreError::InvalidArgument(message),
    }
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

/// A view's arrays, owned, so the kernel can borrow them with the GIL released.
struct View {
    name: String,
    entity_keys: Vec<(String, ArrayData)>,
    source_keys: Vec<(String, ArrayData)>,
    event_timestamps: (String, ArrayData),
    created_timestamps: Option<(String, ArrayData)>,
    ttl_ns: i64,
}

fn unwrap((name, array): Named) -> (String, ArrayData) {
    (name, array.0)
}

impl From<ViewArgs> for View {
    fn from(ViewArgs(name, ek, sk, event, created, ttl_ns): ViewArgs) -> Self {
        Self {
            name,
            entity_keys: ek.into_iter().map(unwrap).collect(),
            source_keys: sk.into_iter().map(unwrap).collect(),
            event_timestamps: unwrap(event),
            created_timestamps: created.map(unwrap),
            ttl_ns,
        }
    }
}

fn run(
    entity_ts: &(String, ArrayData),
    views: &[View],
    filter_by_created_timestamp: bool,
) -> Result<Vec<ArrayData>, CoreError> {
    let timestamps = time_column(&entity_ts.0, &entity_ts.1)?;
    let mut key_columns: Vec<(Vec<KeyColumn<'_>>, Vec<KeyColumn<'_>>)> =
        Vec::with_capacity(views.len());
    for view in views {
        let ek = view
            .entity_keys
            .iter()
            .map(|(n, d)| key_column(n, d))
            .collect::<Result<Vec<_>, _>>()?;
        let sk = view
            .source_keys
            .iter()
            .map(|(n, d)| key_column(n, d))
            .collect::<Result<Vec<_>, _>>()?;
        key_columns.push((ek, sk));
    }
    let mut inputs = Vec::with_capacity(views.len());
    for (view, (ek, sk)) in views.iter().zip(&key_columns) {
        let (event, created) = (&view.event_timestamps, &view.created_timestamps);
        inputs.push(ViewInput {
            entity: EntitySide {
                keys: ek,
                timestamps,
            },
            source: SourceSide {
                keys: sk,
                event_timestamps: time_column(&event.0, &event.1)?,
                created_timestamps: created
                    .as_ref()
                    .map(|(n, d)| time_column(n, d))
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
        .map(|(result, view)| {
            result
                .map(to_indices)
                .map_err(|e| pit_error(&view.name, &e))
        })
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
    let entity_ts = unwrap(entity_timestamps);
    let views: Vec<View> = views.into_iter().map(View::from).collect();
    let out = py.detach(|| run(&entity_ts, &views, filter_by_created_timestamp))?;
    Ok(out.into_iter().map(PyArrowType).collect())
}

fn partitions_of(keys: &[(String, ArrayData)], partitions: u32) -> Result<ArrayData, CoreError> {
    let columns = keys
        .iter()
        .map(|(n, d)| key_column(n, d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ids = key_partitions(Side::Source, &columns, partitions)
        .map_err(|e| CoreError::InvalidArgument(e.to_string()))?;
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
    let keys: Vec<(String, ArrayData)> = keys.into_iter().map(unwrap).collect();
    let out = py.detach(|| partitions_of(&keys, partitions))?;
    Ok(PyArrowType(out))
}
