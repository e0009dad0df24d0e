//! `tiles_update` and `tiles_read`: stored tile sets (Python `bytes`) and pyarrow event
//! columns in, the `aggregate::tiles` kernel with the GIL released, bytes out. Conversion only.
use std::borrow::Cow;

use arrow::array::ArrayData;
use arrow::pyarrow::PyArrowType;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

use crate::aggregate::partial::At;
use crate::aggregate::tiles::{horizon, watermark, Input, Spec, TileSet, Value};
use crate::aggregate::{tile_of, Function};
use crate::columns::{bytes_column, integers_as_i64, BytesColumn};
use crate::error::CoreError;
use crate::py_aggregate::{hashes, numbers, times, Column, Numbers};

type PyArray = PyArrowType<ArrayData>;
/// One aggregation: (function, input kind "int" / "float" / "text" / "binary" / "other",
/// window in ns).
type SpecArgs = (String, String, i64);

fn specs(args: &[SpecArgs]) -> Result<Vec<Spec>, CoreError> {
    args.iter()
        .map(|(function, input, window_ns)| {
            let spec = Spec {
                function: Function::parse(function).ok_or_else(|| {
                    CoreError::InvalidArgument(format!("unknown aggregate function '{function}'"))
                })?,
                input: match input.as_str() {
                    "int" => Input::Int,
                    "float" => Input::Float,
                    "text" => Input::Text,
                    "binary" => Input::Binary,
                    "other" => Input::Other,
                    other => {
                        return Err(CoreError::InvalidArgument(format!(
                            "unknown aggregation input kind '{other}'"
                        )))
                    }
                },
                window_ns: *window_ns,
            };
            spec.check()?;
            Ok(spec)
        })
        .collect()
}

fn decode_all(specs: &[Spec], stored: &[Option<PyBackedBytes>]) -> Result<Vec<TileSet>, CoreError> {
    stored
        .iter()
        .enumerate()
        .map(|(i, bytes)| match bytes {
            None => Ok(TileSet::default()),
            Some(bytes) => TileSet::decode(specs, bytes).map_err(|e| {
                CoreError::decode(
                    "",
                    i,
                    format!("entity {i}'s stored tiles are unreadable: {e}"),
                )
            }),
        })
        .collect()
}

/// One aggregation's values, by event row.
enum Values<'a> {
    Ints(Cow<'a, [i64]>),
    Floats(Cow<'a, [f64]>),
    Hashes(Vec<u64>),
    Bytes(BytesColumn<'a>),
    Present,
}

fn values<'a>(spec: &Spec, column: &'a Column, name: &str) -> Result<Values<'a>, CoreError> {
    Ok(match (spec.input, spec.function) {
        (Input::Int, _) => match integers_as_i64(column.array.as_ref(), name)? {
            Some(v) => Values::Ints(v),
            None => return Err(CoreError::unsupported(name, "must be integers")),
        },
        (Input::Float, _) => match numbers(column, name, "a float aggregation")? {
            Numbers::Float(v) => Values::Floats(v),
            Numbers::Int(v) => Values::Floats(Cow::Owned(v.iter().map(|&x| x as f64).collect())),
        },
        (Input::Text | Input::Binary, _) => {
            let text = spec.input == Input::Text;
            match bytes_column(column.array.as_ref(), text) {
                Some(b) if b.offsets_in_bounds() => Values::Bytes(b),
                _ => {
                    return Err(CoreError::unsupported(
                        name,
                        format!(
                            "last of a {} column needs {} values, not {}",
                            if text { "string" } else { "bytes" },
                            if text { "string" } else { "binary" },
                            column.array.data_type()
                        ),
                    ))
                }
            }
        }
        (Input::Other, Function::CountDistinct) => Values::Hashes(hashes(column, name)?),
        (Input::Other, _) => Values::Present,
    })
}

impl Values<'_> {
    fn get(&self, row: usize) -> Value<'_> {
        match self {
            Self::Ints(v) => Value::Int(v[row]),
            Self::Floats(v) => Value::Float(v[row]),
            Self::Hashes(v) => Value::Hash(v[row]),
            Self::Bytes(v) => Value::Bytes(v.get(row)),
            Self::Present => Value::Present,
        }
    }
}

struct Update {
    specs: Vec<Spec>,
    tile_ns: i64,
    sets: Vec<TileSet>,
    keys: Column,
    times: Column,
    columns: Vec<(String, Column)>,
    seq_base: u64,
    now_ns: i64,
    lateness_ns: Option<i64>,
}

impl Update {
    /// The events folded into their entities' tiles, in (entity, event time, row) order; the
    /// number of events dropped because their tile is past the horizon, and the number dropped
    /// as later than their entity's watermark (`lateness_ns` set).
    fn run(&mut self) -> Result<(u64, u64), CoreError> {
        let keys = integers_as_i64(self.keys.array.as_ref(), "event entities")?
            .ok_or_else(|| CoreError::InvalidArgument("event entities must be integers".into()))?;
        let stamps = times(&self.times, "event timestamps")?;
        let n = stamps.len();
        if keys.len() != n || self.columns.iter().any(|(_, c)| c.array.len() != n) {
            return Err(CoreError::InvalidArgument(
                "event columns differ in length".into(),
            ));
        }
        let values = self
            .specs
            .iter()
            .zip(&self.columns)
            .map(|(spec, (name, column))| values(spec, column, name))
            .collect::<Result<Vec<_>, _>>()?;
        let mut order: Vec<usize> = (0..n)
            .filter(|&r| self.keys.valid(r) && self.times.valid(r))
            .collect();
        for &r in &order {
            if keys[r] < 0 || keys[r] as usize >= self.sets.len() {
                return Err(CoreError::InvalidArgument(format!(
                    "event {r} names entity {} of {}",
                    keys[r],
                    self.sets.len()
                )));
            }
        }
        order.sort_unstable_by_key(|&r| (keys[r], stamps[r], r));
        let horizon = horizon(&self.specs, self.tile_ns, self.now_ns);
        // Fixed before the batch: its own events do not move it (as a stream's watermark
        // advances between micro-batches).
        let marks: Vec<Option<i64>> = self
            .sets
            .iter()
            .map(|set| self.lateness_ns.and_then(|l| watermark(set, l)))
            .collect();
        let mut dropped = 0;
        let mut late = 0;
        let mut cells = vec![None; self.specs.len()];
        for r in order {
            let tile = tile_of(stamps[r], self.tile_ns);
            if tile < horizon {
                dropped += 1;
                continue;
            }
            if marks[keys[r] as usize].is_some_and(|mark| stamps[r] < mark) {
                late += 1;
                continue;
            }
            for (i, (_, column)) in self.columns.iter().enumerate() {
                cells[i] = column.valid(r).then(|| values[i].get(r));
            }
            let at = At {
                ts: stamps[r],
                seq: self.seq_base + r as u64,
            };
            self.sets[keys[r] as usize].add(&self.specs, tile, at, &cells);
        }
        for set in &mut self.sets {
            set.prune(horizon);
        }
        Ok((dropped, late))
    }
}

/// Folds events into stored tile sets (docs/aggregations.md, "Online"): `stored[i]` is entity
/// i's tiles (None: none yet), `event_entities` each event's entity index, `columns` one input
/// column per spec. Returns the new tile sets, each one's newest event time (µs), how many
/// events were dropped as older than any read at `now_ns` can reach, and how many as later
/// than `lateness_ns` behind their entity's newest stored event (a watermark; None: none).
#[pyfunction]
#[pyo3(signature = (specs, tile_ns, stored, event_entities, event_timestamps, columns, seq_base, now_ns, lateness_ns=None))]
#[allow(
    clippy::too_many_arguments,
    clippy::type_complexity,
    clippy::needless_pass_by_value
)]
pub(crate) fn tiles_update(
    py: Python<'_>,
    specs: Vec<SpecArgs>,
    tile_ns: i64,
    stored: Vec<Option<PyBackedBytes>>,
    event_entities: PyArray,
    event_timestamps: PyArray,
    columns: Vec<(String, PyArray)>,
    seq_base: u64,
    now_ns: i64,
    lateness_ns: Option<i64>,
) -> PyResult<(Vec<Bound<'_, PyBytes>>, Vec<i64>, u64, u64)> {
    let keys = Column::new(event_entities);
    let stamps = Column::new(event_timestamps);
    let columns: Vec<(String, Column)> = columns
        .into_iter()
        .map(|(n, c)| (n, Column::new(c)))
        .collect();
    let (encoded, newest, dropped, late) = py.detach(|| {
        let specs = self::specs(&specs)?;
        if tile_ns <= 0 || columns.len() != specs.len() {
            return Err(CoreError::InvalidArgument(
                "one column per aggregation and a positive tile are needed".into(),
            ));
        }
        let sets = decode_all(&specs, &stored)?;
        let mut update = Update {
            specs,
            tile_ns,
            sets,
            keys,
            times: stamps,
            columns,
            seq_base,
            now_ns,
            lateness_ns,
        };
        let (dropped, late) = update.run()?;
        let newest = update
            .sets
            .iter()
            .map(|s| s.newest_micros.unwrap_or(i64::MIN))
            .collect::<Vec<_>>();
        let encoded = update.sets.iter().map(TileSet::encode).collect::<Vec<_>>();
        Ok::<_, CoreError>((encoded, newest, dropped, late))
    })?;
    let out = encoded.iter().map(|b| PyBytes::new(py, b)).collect();
    Ok((out, newest, dropped, late))
}

/// Each stored tile set read as of `at_ns`, as the view's packed row (one element per
/// aggregation, in spec order; event time: the newest event); None where nothing is stored.
#[pyfunction]
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn tiles_read(
    py: Python<'_>,
    specs: Vec<SpecArgs>,
    tile_ns: i64,
    stored: Vec<Option<PyBackedBytes>>,
    at_ns: i64,
) -> PyResult<Vec<Option<Bound<'_, PyBytes>>>> {
    let rows = py.detach(|| {
        let specs = self::specs(&specs)?;
        if tile_ns <= 0 {
            return Err(CoreError::InvalidArgument(
                "the tile must be positive".into(),
            ));
        }
        let sets = decode_all(&specs, &stored)?;
        let rows = stored
            .iter()
            .zip(&sets)
            .map(|(bytes, set)| {
                let mut row = Vec::new();
                (bytes.is_some() && set.read(&specs, tile_ns, at_ns, &mut row)).then_some(row)
            })
            .collect::<Vec<_>>();
        Ok::<_, CoreError>(rows)
    })?;
    Ok(rows
        .iter()
        .map(|r| r.as_ref().map(|b| PyBytes::new(py, b)))
        .collect())
}
