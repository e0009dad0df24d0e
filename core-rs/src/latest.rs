//! Latest row per key, for materialization (plain Rust; no pyo3).
//!
//! The winner of a key is the row with the largest event time, then the largest created time
//! (a null created time is older than any other); on a full tie the later row wins, so the
//! result is deterministic. Keys are byte strings (serialized entity keys).
//!
//! [`latest_per_key`] reduces one batch in one sequential pass with a hash table of the distinct
//! keys (memory proportional to them, not to the rows). [`LatestState`] reduces a stream of batches in bounded memory:
//! it keeps, per distinct key, the key bytes, the winning times and a *candidate id*. Every
//! batch row that becomes its key's winner (for now) gets the next candidate id; the caller
//! keeps those rows (`batch.take(rows)`) in a winners table in id order. At the end
//! [`LatestState::winners`] names the rows of that table to write. [`LatestState::compact`]
//! lets the caller shrink the table to the current winners whenever it has grown past
//! (say) twice the distinct keys, so the table never holds more than about twice the keys
//! plus one batch, whatever the number of input rows.
use std::borrow::Cow;

use arrow::array::{Array, AsArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

use crate::columns::{bytes_column, first_null, integers_as_i64, validity, BytesColumn};
use crate::error::CoreError;

/// Fixed seeds: the hash never leaves the process, and fixed seeds keep runs reproducible.
const HASHER: ahash::RandomState = ahash::RandomState::with_seeds(
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
);

#[inline]
fn hash(key: &[u8]) -> u64 {
    HASHER.hash_one(key)
}

/// A timestamp column: values in the column's unit and the unit's length in nanoseconds, so
/// columns (and batches) of different units compare.
pub struct Times<'a> {
    values: Cow<'a, [i64]>,
    nanos_per_unit: i128,
    nulls: Option<NullBuffer>,
}

impl<'a> Times<'a> {
    /// A timestamp column of any unit and time zone, or an integer column (taken as
    /// nanoseconds); `None` for other types.
    pub fn new(array: &'a dyn Array, column: &str) -> Result<Option<Self>, CoreError> {
        let (values, nanos_per_unit) = match array.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => (
                Cow::Borrowed(&array.as_primitive::<TimestampSecondType>().values()[..]),
                1_000_000_000,
            ),
            DataType::Timestamp(TimeUnit::Millisecond, _) => (
                Cow::Borrowed(&array.as_primitive::<TimestampMillisecondType>().values()[..]),
                1_000_000,
            ),
            DataType::Timestamp(TimeUnit::Microsecond, _) => (
                Cow::Borrowed(&array.as_primitive::<TimestampMicrosecondType>().values()[..]),
                1_000,
            ),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => (
                Cow::Borrowed(&array.as_primitive::<TimestampNanosecondType>().values()[..]),
                1,
            ),
            _ => match integers_as_i64(array, column)? {
                Some(values) => (values, 1),
                None => return Ok(None),
            },
        };
        Ok(Some(Self {
            values,
            nanos_per_unit,
            nulls: validity(array),
        }))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Nanoseconds since the epoch; a null is older than every value.
    #[inline]
    fn nanos(&self, i: usize) -> i128 {
        if self.nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            i128::MIN
        } else {
            i128::from(self.values[i]) * self.nanos_per_unit
        }
    }
}

/// One batch: keys, event times and optional created times, all of one length.
pub struct Batch<'a> {
    keys: BytesColumn<'a>,
    event: Times<'a>,
    created: Option<Times<'a>>,
}

impl<'a> Batch<'a> {
    /// Checks the columns: a binary (or string) key column without nulls, a timestamp event
    /// column without nulls, an optional created column (nulls allowed), equal lengths.
    pub fn new(
        keys: &'a dyn Array,
        event_timestamps: &'a dyn Array,
        created_timestamps: Option<&'a dyn Array>,
    ) -> Result<Self, CoreError> {
        let key_column = bytes_column(keys, false)
            .or_else(|| bytes_column(keys, true))
            .ok_or_else(|| {
                CoreError::unsupported(
                    "keys",
                    format!("Arrow type {} is not a binary column", keys.data_type()),
                )
            })?;
        if let Some(row) = first_null(keys) {
            return Err(CoreError::invalid("keys", row, "a key cannot be null"));
        }
        let event = times(event_timestamps, "event_timestamp")?;
        if let Some(row) = first_null(event_timestamps) {
            return Err(CoreError::invalid(
                "event_timestamp",
                row,
                "an event timestamp cannot be null",
            ));
        }
        let created = created_timestamps
            .map(|c| times(c, "created_timestamp"))
            .transpose()?;
        let rows = keys.len();
        for (name, len) in [
            ("event_timestamp", Some(event.len())),
            ("created_timestamp", created.as_ref().map(Times::len)),
        ] {
            if let Some(len) = len.filter(|&len| len != rows) {
                return Err(CoreError::InvalidArgument(format!(
                    "{name} has {len} values for {rows} keys"
                )));
            }
        }
        Ok(Self {
            keys: key_column,
            event,
            created,
        })
    }

    pub fn len(&self) -> usize {
        self.event.len()
    }

    pub fn is_empty(&self) -> bool {
        self.event.is_empty()
    }

    fn created_nanos(&self, i: usize) -> i128 {
        self.created.as_ref().map_or(i128::MIN, |c| c.nanos(i))
    }
}

fn times<'a>(array: &'a dyn Array, column: &str) -> Result<Times<'a>, CoreError> {
    Times::new(array, column)?.ok_or_else(|| {
        CoreError::unsupported(
            column,
            format!("Arrow type {} is not a timestamp", array.data_type()),
        )
    })
}

/// A hash table of each distinct key's current winner. The table holds only `(hash, record
/// offset)`, 16 bytes, so it stays small; each record holds the winner's times, its payload
/// (row index or candidate id) and the key bytes, contiguous, so that checking a probe touches
/// one place in memory, never the input columns.
#[derive(Default)]
struct Winners {
    table: HashTable<(u64, usize)>,
    /// Records: event `i128`, created `i128`, payload `u64`, key length `u32`, key bytes.
    records: Vec<u8>,
}

const EVENT: usize = 0;
const CREATED: usize = 16;
const PAYLOAD: usize = 32;
const KEY_LEN: usize = 40;
const KEY: usize = 44;

#[inline]
fn read<const N: usize>(records: &[u8], at: usize) -> [u8; N] {
    records[at..at + N].try_into().expect("N bytes")
}

impl Winners {
    fn key_of(records: &[u8], at: usize) -> &[u8] {
        let len = u32::from_le_bytes(read(records, at + KEY_LEN)) as usize;
        &records[at + KEY..at + KEY + len]
    }

    /// Offers a row; when it beats (or ties with) the key's winner, or the key is new, it
    /// becomes the winner with `payload` and this returns true. Rows must come in order, so
    /// that a tie goes to the later one.
    #[inline]
    fn offer(&mut self, hash: u64, key: &[u8], event: i128, created: i128, payload: u64) -> bool {
        let Self { table, records } = self;
        let entry = table.entry(
            hash,
            |&(h, at)| h == hash && Self::key_of(records, at) == key,
            |&(h, _)| h,
        );
        match entry {
            Entry::Occupied(o) => {
                let at = o.get().1;
                let stored = (
                    i128::from_le_bytes(read(records, at + EVENT)),
                    i128::from_le_bytes(read(records, at + CREATED)),
                );
                if (event, created) < stored {
                    return false;
                }
                records[at + EVENT..at + CREATED].copy_from_slice(&event.to_le_bytes());
                records[at + CREATED..at + PAYLOAD].copy_from_slice(&created.to_le_bytes());
                records[at + PAYLOAD..at + KEY_LEN].copy_from_slice(&payload.to_le_bytes());
            }
            Entry::Vacant(v) => {
                v.insert((hash, records.len()));
                records.extend_from_slice(&event.to_le_bytes());
                records.extend_from_slice(&created.to_le_bytes());
                records.extend_from_slice(&payload.to_le_bytes());
                records.extend_from_slice(&(key.len() as u32).to_le_bytes());
                records.extend_from_slice(key);
            }
        }
        true
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn payloads(&self) -> impl Iterator<Item = u64> + '_ {
        self.table
            .iter()
            .map(|&(_, at)| u64::from_le_bytes(read(&self.records, at + PAYLOAD)))
    }
}

/// The index of each distinct key's winning row, ascending. One sequential pass over the
/// columns; memory proportional to the distinct keys.
pub fn latest_per_key(batch: &Batch<'_>) -> Vec<u64> {
    let keys = &batch.keys;
    let mut winners = Winners::default();
    for i in 0..batch.len() {
        let key = keys.get(i);
        let created = batch.created_nanos(i);
        winners.offer(hash(key), key, batch.event.nanos(i), created, i as u64);
    }
    let mut rows: Vec<u64> = winners.payloads().collect();
    rows.sort_unstable();
    rows
}

/// The running winners of a stream of batches; see the module documentation.
#[derive(Default)]
pub struct LatestState {
    winners: Winners,
    next_candidate: u64,
}

impl LatestState {
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of distinct keys seen.
    pub fn len(&self) -> usize {
        self.winners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.winners.len() == 0
    }

    /// The number of candidate ids handed out since the last compaction (the rows the caller's
    /// winners table holds).
    pub fn candidates(&self) -> u64 {
        self.next_candidate
    }

    /// Feeds one batch. Returns the rows of the batch that are now their key's winner,
    /// ascending; they get the candidate ids `candidates()..candidates() + len` in that order.
    /// Later batches win full ties, as later rows do within a batch.
    pub fn update(&mut self, batch: &Batch<'_>) -> Vec<u64> {
        let mut accepted = Vec::new();
        for row in latest_per_key(batch) {
            let i = row as usize;
            let key = batch.keys.get(i);
            let (event, created) = (batch.event.nanos(i), batch.created_nanos(i));
            if self
                .winners
                .offer(hash(key), key, event, created, self.next_candidate)
            {
                self.next_candidate += 1;
                accepted.push(row);
            }
        }
        accepted
    }

    /// The candidate ids of every key's winner, ascending: the rows of the caller's winners
    /// table to keep.
    pub fn winners(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.winners.payloads().collect();
        ids.sort_unstable();
        ids
    }

    /// Like [`Self::winners`], then renumbers the winners `0..len()` in that order: the
    /// caller replaces its winners table with `table.take(ids)`.
    pub fn compact(&mut self) -> Vec<u64> {
        let ids = self.winners();
        // Ids are distinct, so a winner's new id is its rank among them.
        let Winners { table, records } = &mut self.winners;
        for &(_, at) in table.iter() {
            let id = u64::from_le_bytes(read(records, at + PAYLOAD));
            let rank = ids.binary_search(&id).expect("a winner's id") as u64;
            records[at + PAYLOAD..at + KEY_LEN].copy_from_slice(&rank.to_le_bytes());
        }
        self.next_candidate = ids.len() as u64;
        ids
    }

    /// The bytes of every distinct key (for diagnostics and tests), in first-seen order.
    pub fn keys(&self) -> Vec<&[u8]> {
        let mut at: Vec<usize> = self.winners.table.iter().map(|&(_, at)| at).collect();
        at.sort_unstable();
        at.iter()
            .map(|&at| Winners::key_of(&self.winners.records, at))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BinaryArray, Int64Array, TimestampMicrosecondArray, TimestampNanosecondArray,
        TimestampSecondArray,
    };

    use super::*;

    fn keys(v: &[&str]) -> BinaryArray {
        BinaryArray::from_iter_values(v.iter().map(|s| s.as_bytes()))
    }

    fn run(k: &[&str], ev: &[i64], cr: Option<&[Option<i64>]>) -> Vec<u64> {
        let k = keys(k);
        let ev = TimestampMicrosecondArray::from(ev.to_vec());
        let cr = cr.map(|c| TimestampMicrosecondArray::from(c.to_vec()));
        let batch = Batch::new(&k, &ev, cr.as_ref().map(|c| c as &dyn Array)).unwrap();
        latest_per_key(&batch)
    }

    #[test]
    fn max_event_then_created_then_last_row() {
        assert_eq!(run(&["a", "b", "a", "b"], &[1, 5, 3, 2], None), vec![1, 2]);
        // Event tie: the larger created time wins, wherever it is.
        let created = [Some(9), Some(1), None, Some(2)];
        assert_eq!(
            run(&["a", "a", "b", "b"], &[4, 4, 7, 7], Some(&created)),
            vec![0, 3]
        );
        // Full tie: the last row.
        assert_eq!(run(&["a", "a", "a"], &[4, 4, 2], None), vec![1]);
        let created = [Some(3), Some(3)];
        assert_eq!(run(&["a", "a"], &[1, 1], Some(&created)), vec![1]);
        assert_eq!(run(&[], &[], None), Vec::<u64>::new());
    }

    #[test]
    fn matches_a_sort_based_reference() {
        // A small deterministic pseudo-random stream.
        let mut x: u64 = 42;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let n = 5000;
        let k: Vec<String> = (0..n).map(|_| format!("k{}", next() % 300)).collect();
        let ev: Vec<i64> = (0..n).map(|_| (next() % 20) as i64).collect();
        let cr: Vec<Option<i64>> = (0..n)
            .map(|_| Some((next() % 3) as i64).filter(|&v| v != 0))
            .collect();
        let refs: Vec<&str> = k.iter().map(String::as_str).collect();
        let got = run(&refs, &ev, Some(&cr));
        let mut best: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for i in 0..n {
            let better =
                |j: usize| (ev[i], cr[i].unwrap_or(i64::MIN)) >= (ev[j], cr[j].unwrap_or(i64::MIN));
            let slot = best.entry(&k[i]).or_insert(i);
            if better(*slot) {
                *slot = i;
            }
        }
        let mut want: Vec<u64> = best.values().map(|&i| i as u64).collect();
        want.sort_unstable();
        assert_eq!(got, want);
    }

    #[test]
    fn bad_columns_are_errors() {
        let k = keys(&["a"]);
        let ev = TimestampMicrosecondArray::from(vec![None]);
        let err = Batch::new(&k, &ev, None).err().unwrap();
        assert_eq!(
            err.to_string(),
            "column 'event_timestamp' row 0: an event timestamp cannot be null"
        );
        let ev = TimestampMicrosecondArray::from(vec![1, 2]);
        let err = Batch::new(&k, &ev, None).err().unwrap();
        assert_eq!(err.to_string(), "event_timestamp has 2 values for 1 keys");
        let k = BinaryArray::from(vec![None::<&[u8]>]);
        let ev = TimestampMicrosecondArray::from(vec![1]);
        assert!(Batch::new(&k, &ev, None).is_err());
        let k = keys(&["a"]);
        let ev = arrow::array::Float64Array::from(vec![1.0]);
        assert!(Batch::new(&k, &ev, None).is_err());
    }

    /// Feeds `batches` through a `LatestState` as the Python side does, compacting after
    /// every batch when `compact` is set; returns (key, event) of every final winner.
    fn stream(batches: &[(Vec<&str>, ArrayRef)], compact: bool) -> Vec<(String, i128)> {
        let mut state = LatestState::new();
        // The caller's winners table: (key, event nanos) per candidate id.
        let mut table: Vec<(String, i128)> = Vec::new();
        for (k, ev) in batches {
            let karr = keys(k);
            let batch = Batch::new(&karr, ev.as_ref(), None).unwrap();
            let first = state.candidates();
            assert_eq!(first as usize, table.len());
            for row in state.update(&batch) {
                let row = row as usize;
                table.push((k[row].to_owned(), batch.event.nanos(row)));
            }
            if compact {
                let ids = state.compact();
                table = ids.iter().map(|&i| table[i as usize].clone()).collect();
                assert_eq!(table.len(), state.len());
            }
        }
        let mut out: Vec<(String, i128)> = state
            .winners()
            .iter()
            .map(|&i| table[i as usize].clone())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn streaming_across_batches_and_units() {
        let batches: Vec<(Vec<&str>, ArrayRef)> = vec![
            (
                vec!["a", "b", "a"],
                Arc::new(TimestampSecondArray::from(vec![10, 5, 12])),
            ),
            // 11 s in nanoseconds loses to a's 12 s; b's 6 s wins.
            (
                vec!["a", "b", "c"],
                Arc::new(TimestampNanosecondArray::from(vec![
                    11_000_000_000,
                    6_000_000_000,
                    1,
                ])),
            ),
            // A full tie with the stored winner: the later batch wins (same result here).
            (vec!["c"], Arc::new(Int64Array::from(vec![1]))),
        ];
        let want = vec![
            ("a".to_owned(), 12_000_000_000),
            ("b".to_owned(), 6_000_000_000),
            ("c".to_owned(), 1),
        ];
        assert_eq!(stream(&batches, false), want);
        assert_eq!(stream(&batches, true), want);
    }

    #[test]
    fn compaction_renumbers_in_table_order() {
        let mut state = LatestState::new();
        let k = keys(&["a", "b"]);
        let ev = TimestampMicrosecondArray::from(vec![1, 1]);
        assert_eq!(
            state.update(&Batch::new(&k, &ev, None).unwrap()),
            vec![0, 1]
        );
        let k = keys(&["b"]);
        let ev = TimestampMicrosecondArray::from(vec![2]);
        assert_eq!(state.update(&Batch::new(&k, &ev, None).unwrap()), vec![0]);
        assert_eq!(state.candidates(), 3);
        assert_eq!(state.winners(), vec![0, 2]);
        assert_eq!(state.compact(), vec![0, 2]);
        assert_eq!(state.winners(), vec![0, 1]);
        assert_eq!(state.candidates(), 2);
        assert_eq!(state.keys(), vec![b"a", b"b"]);
    }
}
