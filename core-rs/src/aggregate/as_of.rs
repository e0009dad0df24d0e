//! The offline kernel: every entity row's windowed aggregate as of its timestamp, from raw
//! events (docs/aggregations.md).
//!
//! Events are sorted once by (key, event time, row) ([`EventIndex`]); an entity row finds its
//! key's run and, per window, the events with `s(t) < event_ts <= t` by binary search
//! ([`super::window_start`]). Those events are folded exactly as the online path folds them:
//! into one partial per tile, in (event time, row) order, and the tiles' partials merged from
//! the oldest to the newest. So an online read at `t` over tiles filled in that order returns
//! the same bits, floats included. Rows run in parallel (rayon).
//!
//! Keys arrive as dense ids (`0..n`, the caller's dictionary encoding of the join keys, equal
//! keys equal ids on both sides); a null key or a null time never matches.
use std::ops::Range;

use arrow::buffer::NullBuffer;
use rayon::prelude::*;

use super::partial::{At, Partial};
use super::tile_of;
use crate::error::CoreError;

/// Dense key ids and times of one side (events or entity rows). `keys` is `None` for views
/// without entities: every row has the same key.
#[derive(Clone, Copy, Debug)]
pub struct Side<'a> {
    pub keys: Option<(&'a [i64], Option<&'a NullBuffer>)>,
    pub times: (&'a [i64], Option<&'a NullBuffer>),
}

impl Side<'_> {
    fn len(&self) -> usize {
        self.times.0.len()
    }

    /// The row's key id, or `None` when its key or time is null.
    fn key(&self, row: usize) -> Option<i64> {
        if self.times.1.is_some_and(|n| n.is_null(row)) {
            return None;
        }
        match self.keys {
            None => Some(0),
            Some((_, Some(nulls))) if nulls.is_null(row) => None,
            Some((keys, _)) => Some(keys[row]),
        }
    }

    fn check(&self, what: &str) -> Result<(), CoreError> {
        if let Some((keys, _)) = self.keys {
            if keys.len() != self.len() {
                return Err(CoreError::InvalidArgument(format!(
                    "{what}: {} key ids for {} timestamps",
                    keys.len(),
                    self.len()
                )));
            }
            if let Some(row) = keys
                .iter()
                .position(|&k| !(0..=i64::from(u32::MAX)).contains(&k))
            {
                if self.key(row).is_some() {
                    return Err(CoreError::InvalidArgument(format!(
                        "{what}: key id {} at row {row} is not a dense id",
                        keys[row]
                    )));
                }
            }
        }
        if self.len() > u32::MAX as usize {
            return Err(CoreError::InvalidArgument(format!(
                "{what}: more than {} rows",
                u32::MAX
            )));
        }
        Ok(())
    }
}

/// The events sorted by (key, event time, row), with each key's run.
pub struct EventIndex {
    rows: Vec<u32>,
    times: Vec<i64>,
    /// `runs[k]..runs[k + 1]` are key `k`'s positions in `rows` and `times`.
    runs: Vec<usize>,
    /// Every event row, matched or not: the length of the value columns.
    events: usize,
}

impl EventIndex {
    pub fn new(events: Side<'_>) -> Result<Self, CoreError> {
        events.check("events")?;
        // One u128 per event orders by key, then time (offset to sort as unsigned), then row.
        let mut packed: Vec<u128> = (0..events.len())
            .into_par_iter()
            .filter_map(|row| {
                let key = events.key(row)?;
                let time = (events.times.0[row] as u64) ^ (1 << 63);
                Some((key as u128) << 96 | u128::from(time) << 32 | row as u128)
            })
            .collect();
        packed.par_sort_unstable();
        let keys = packed.last().map_or(0, |&p| (p >> 96) as usize + 1);
        let mut runs = vec![0usize; keys + 1];
        for &p in &packed {
            runs[(p >> 96) as usize + 1] += 1;
        }
        for k in 0..keys {
            runs[k + 1] += runs[k];
        }
        let rows = packed.par_iter().map(|&p| p as u32).collect();
        let times = packed
            .par_iter()
            .map(|&p| ((p >> 32) as u64 ^ (1 << 63)) as i64)
            .collect();
        Ok(Self {
            rows,
            times,
            runs,
            events: events.len(),
        })
    }

    /// The event rows with a key and a time, in (key, event time, row) order.
    pub fn rows(&self) -> &[u32] {
        &self.rows
    }

    /// The number of event rows, null keys and times included.
    pub fn len(&self) -> usize {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// The positions of key `key`'s events with `start < event_ts <= t`.
    fn window(&self, key: i64, start: i64, t: i64) -> Range<usize> {
        let k = key as usize;
        if k + 1 >= self.runs.len() {
            return 0..0;
        }
        let (lo, hi) = (self.runs[k], self.runs[k + 1]);
        let run = &self.times[lo..hi];
        let first = run.partition_point(|&ts| ts <= start);
        let end = run.partition_point(|&ts| ts <= t);
        lo + first..lo + end.max(first)
    }
}

/// One aggregation's value for every entity row: `P`'s partials over each row's window,
/// folded per tile. `value(position)` is the input of the event at that position of
/// [`EventIndex::rows`] (the caller puts its column in that order once, so windows read it
/// sequentially), `None` for a null value.
pub fn aggregate<P, F>(
    index: &EventIndex,
    rows: Side<'_>,
    window_ns: i64,
    tile_ns: i64,
    value: F,
) -> Result<Vec<Option<P::Out>>, CoreError>
where
    P: Partial,
    F: Fn(usize) -> Option<P::In> + Sync,
{
    rows.check("entity rows")?;
    if tile_ns <= 0 || window_ns <= 0 {
        return Err(CoreError::InvalidArgument(format!(
            "window ({window_ns} ns) and tile ({tile_ns} ns) must be positive"
        )));
    }
    let events: Vec<(i64, Option<P::In>)> = index
        .times
        .par_iter()
        .enumerate()
        .map(|(pos, &ts)| (tile_of(ts, tile_ns), value(pos)))
        .collect();
    Ok((0..rows.len())
        .into_par_iter()
        .map(|row| {
            // A row without a key or time has an empty window (count 0, others null).
            let Some(key) = rows.key(row) else {
                return P::default().finish();
            };
            let t = rows.times.0[row];
            let start = super::window_start(t, window_ns, tile_ns);
            fold::<P>(index, &events, index.window(key, start, t)).finish()
        })
        .collect())
}

/// The events at `positions`, one partial per tile, merged oldest first.
fn fold<P: Partial>(
    index: &EventIndex,
    events: &[(i64, Option<P::In>)],
    positions: Range<usize>,
) -> P {
    let mut total = P::default();
    let mut tile = P::default();
    let mut current = None;
    for pos in positions {
        let (k, value) = events[pos];
        if current != Some(k) {
            total.merge(&tile);
            tile = P::default();
            current = Some(k);
        }
        if let Some(v) = value {
            tile.add(
                v,
                At {
                    ts: index.times[pos],
                    seq: u64::from(index.rows[pos]),
                },
            );
        }
    }
    total.merge(&tile);
    total
}

#[cfg(test)]
mod tests {
    use super::super::partial::{Count, Extreme, Last, SumFloat, SumInt};
    use super::*;

    fn side<'a>(keys: &'a [i64], times: &'a [i64]) -> Side<'a> {
        Side {
            keys: Some((keys, None)),
            times: (times, None),
        }
    }

    #[test]
    fn windows_cover_start_exclusive_to_t_inclusive() {
        // Key 0 has events at 10, 20, 30, 40; key 1 at 25.
        let (ekeys, etimes) = ([0, 0, 1, 0, 0], [40, 10, 25, 30, 20]);
        let index = EventIndex::new(side(&ekeys, &etimes)).unwrap();
        let values = [4, 1, 100, 3, 2];
        // Tile 10: a window of 20 at t=40 covers (20, 40]; at t=35, (10, 35] (sawtooth).
        let (rkeys, rtimes) = ([0, 0, 1, 2, 0], [40, 35, 30, 40, 5]);
        let order = index.rows();
        let by_position = |p: usize| Some(values[order[p] as usize]);
        let out =
            aggregate::<SumInt, _>(&index, side(&rkeys, &rtimes), 20, 10, by_position).unwrap();
        assert_eq!(out, vec![Some(7), Some(5), Some(100), None, None]);
        let counts =
            aggregate::<Count, _>(&index, side(&rkeys, &rtimes), 20, 10, |_| Some(())).unwrap();
        assert_eq!(counts, vec![Some(2), Some(2), Some(1), Some(0), Some(0)]);
    }

    #[test]
    fn nulls_never_match_and_null_values_are_skipped() {
        let (ekeys, etimes) = ([0, 0, 0], [1, 2, 3]);
        let key_nulls = NullBuffer::from(vec![true, false, true]);
        let events = Side {
            keys: Some((&ekeys, Some(&key_nulls))),
            times: (&etimes, None),
        };
        let index = EventIndex::new(events).unwrap();
        let row_nulls = NullBuffer::from(vec![true, false]);
        let rows = Side {
            keys: None,
            times: (&[10, 10], Some(&row_nulls)),
        };
        let values = [Some(1.5), Some(99.0), None];
        let order = index.rows();
        let out =
            aggregate::<SumFloat, _>(&index, rows, 100, 1, |p| values[order[p] as usize]).unwrap();
        assert_eq!(out, vec![Some(1.5), None]);
        let counts = aggregate::<Count, _>(&index, rows, 100, 1, |p| {
            values[order[p] as usize].map(|_| ())
        })
        .unwrap();
        assert_eq!(counts, vec![Some(1), Some(0)]);
    }

    #[test]
    fn last_and_extremes_return_rows() {
        let (ekeys, etimes) = ([0, 0, 0], [5, 5, 3]);
        let index = EventIndex::new(side(&ekeys, &etimes)).unwrap();
        let rows = side(&[0], &[10]);
        let last = aggregate::<Last<()>, _>(&index, rows, 10, 1, |_| Some(())).unwrap();
        assert_eq!(last[0].unwrap().1.seq, 1);
        let values = [2, 2, 7];
        let order = index.rows();
        let by_position = |p: usize| Some(values[order[p] as usize]);
        let min = aggregate::<Extreme<i64, false>, _>(&index, rows, 10, 1, by_position).unwrap();
        assert_eq!(min[0].unwrap().1.seq, 0);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let index = EventIndex::new(side(&[0], &[1])).unwrap();
        let err = aggregate::<Count, _>(&index, side(&[0], &[1]), 0, 1, |_| Some(())).unwrap_err();
        assert!(err.to_string().contains("must be positive"));
        assert!(EventIndex::new(side(&[-3], &[1])).is_err());
        assert!(EventIndex::new(side(&[0, 1], &[1])).is_err());
    }
}
