//! Point-in-time join kernel (docs/feast-compatibility.md §7.1, the SQL/DuckDB semantics).
//!
//! For one feature view and every entity row, find the index of the source row the view
//! contributes, or [`NO_MATCH`]:
//! - the join keys are equal (a null key on either side never matches),
//! - `event_ts <= entity_ts`, and `event_ts >= entity_ts - ttl` when `ttl > 0` (both inclusive),
//! - with `filter_by_created_timestamp`, also `created_ts <= entity_ts` (a null created
//!   timestamp never passes that filter),
//! - of those, the greatest `event_ts`, ties broken by the greatest created timestamp (null
//!   created sorts first), remaining ties by the greatest source row index, so results are
//!   deterministic.
//!
//! Views without join keys (entity-less views) join on time only. Every entity row gets an
//! answer, in input order.
//!
//! How (a radix-partitioned sort join): both sides are scattered into hash partitions of the
//! key, small enough that a partition's source rows stay in a core's cache. Per partition, in
//! parallel (rayon): the source records `(key, event_ts, row)` are sorted, each key's
//! run goes into a small hash table, and every entity row of the partition finds its key's run
//! and binary searches it for the latest event timestamp at or before its own. So every step
//! touches memory sequentially or in cache, and nothing is allocated per row. A small entity
//! frame first filters the source down to its keys. Several views run in parallel through
//! [`point_in_time_join_many`].
//!
//! Plain Rust over slices and the shared Arrow views (validity as Arrow's `NullBuffer`, string
//! keys as `columns::BytesColumn`); errors are `CoreError`s. `py_pit.rs` converts Arrow arrays
//! into these types.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::buffer::NullBuffer;
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use rayon::prelude::*;

use crate::columns::BytesColumn;
use crate::error::CoreError;

/// The value written for an entity row that no source row matches.
pub const NO_MATCH: u64 = u64::MAX;

/// Most rows a side may have in one call: row ids are kept as `u32` to save memory traffic.
pub const MAX_ROWS: usize = (u32::MAX - 1) as usize;

/// Partitions at least this large are sorted with a parallel sort.
const LARGE_GROUP: usize = 1 << 16;

/// The values of one join-key column.
#[derive(Debug)]
pub enum KeyValues<'a> {
    /// Every integer key, widened to i64 by the caller.
    Int64(&'a [i64]),
    /// Strings or binary, in any layout of the shared adapter (`columns::bytes_column`).
    Bytes(BytesColumn<'a>),
}

impl KeyValues<'_> {
    fn kind(&self) -> &'static str {
        match self {
            KeyValues::Int64(_) => "int64",
            KeyValues::Bytes(_) => "string/binary",
        }
    }
}

/// One join-key column. `validity` is the column's Arrow null bitmap (`None`: no null).
#[derive(Debug)]
pub struct KeyColumn<'a> {
    pub name: &'a str,
    pub values: KeyValues<'a>,
    pub validity: Option<&'a NullBuffer>,
}

impl KeyColumn<'_> {
    pub fn len(&self) -> usize {
        match &self.values {
            KeyValues::Int64(v) => v.len(),
            KeyValues::Bytes(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn is_valid(&self, i: usize) -> bool {
        self.validity.is_none_or(|v| v.is_valid(i))
    }

    #[inline]
    fn hash(&self, i: usize) -> u64 {
        match &self.values {
            KeyValues::Int64(v) => fmix64(v[i] as u64),
            KeyValues::Bytes(b) => BYTES_HASH.hash_one(b.get(i)),
        }
    }

    #[inline]
    fn eq_at(&self, i: usize, other: &KeyColumn<'_>, j: usize) -> bool {
        match (&self.values, &other.values) {
            (KeyValues::Int64(a), KeyValues::Int64(b)) => a[i] == b[j],
            (KeyValues::Bytes(a), KeyValues::Bytes(b)) => a.get(i) == b.get(j),
            _ => false,
        }
    }

    fn check(&self, side: Side, expected: usize) -> Result<(), CoreError> {
        let len = self.len();
        if len != expected {
            return Err(length_error(side, self.name, len, expected));
        }
        check_validity(self.validity, side, self.name, len)?;
        match &self.values {
            KeyValues::Bytes(b) if !b.offsets_in_bounds() => Err(malformed(side, self.name)),
            _ => Ok(()),
        }
    }
}

/// A timestamp column as i64 nanoseconds since the Unix epoch, UTC. `validity` as for
/// [`KeyColumn`].
#[derive(Clone, Copy, Debug)]
pub struct TimeColumn<'a> {
    pub name: &'a str,
    pub values: &'a [i64],
    pub validity: Option<&'a NullBuffer>,
}

impl TimeColumn<'_> {
    #[inline]
    fn get(&self, i: usize) -> Option<i64> {
        if self.validity.is_none_or(|v| v.is_valid(i)) {
            Some(self.values[i])
        } else {
            None
        }
    }

    fn check(&self, side: Side, expected: usize) -> Result<(), CoreError> {
        if self.values.len() != expected {
            return Err(length_error(side, self.name, self.values.len(), expected));
        }
        check_validity(self.validity, side, self.name, expected)
    }
}

fn check_validity(
    validity: Option<&NullBuffer>,
    side: Side,
    column: &str,
    len: usize,
) -> Result<(), CoreError> {
    match validity {
        Some(v) if v.len() != len => Err(malformed(side, column)),
        _ => Ok(()),
    }
}

/// The entity side of one view: its join-key columns (in the same order as the source's) and
/// the entity timestamps (shared by every view of a request).
#[derive(Clone, Copy, Debug)]
pub struct EntitySide<'a> {
    pub keys: &'a [KeyColumn<'a>],
    pub timestamps: TimeColumn<'a>,
}

/// The source side of one view.
#[derive(Clone, Copy, Debug)]
pub struct SourceSide<'a> {
    pub keys: &'a [KeyColumn<'a>],
    pub event_timestamps: TimeColumn<'a>,
    pub created_timestamps: Option<TimeColumn<'a>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PitOptions {
    /// Look-back window in nanoseconds; 0 means unbounded.
    pub ttl_ns: i64,
    pub filter_by_created_timestamp: bool,
}

/// One view of a multi-view request.
#[derive(Clone, Copy, Debug)]
pub struct ViewInput<'a> {
    pub entity: EntitySide<'a>,
    pub source: SourceSide<'a>,
    pub options: PitOptions,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Entity,
    Source,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Entity => "entity",
            Side::Source => "source",
        })
    }
}

// The join's argument errors ([`CoreError::Join`], [`CoreError::JoinKeyKind`]); the binding
// names the view ([`CoreError::in_view`]).

fn length_error(side: Side, column: &str, len: usize, expected: usize) -> CoreError {
    CoreError::join(format!(
        "{side} column '{column}' has {len} rows, expected {expected}"
    ))
}

fn malformed(side: Side, column: &str) -> CoreError {
    CoreError::join(format!("{side} column '{column}' has inconsistent buffers"))
}

const BYTES_HASH: ahash::RandomState = ahash::RandomState::with_seeds(
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
);

/// `MurmurHash3`'s 64-bit finalizer: a bijection whose high and low bits both depend on every
/// input bit (hashbrown uses both).
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// How the rows of one side are keyed.
///
/// Every valid row gets a 64-bit `k`. When `EXACT`, equal `k` means equal keys (one integer
/// key: `k` is the value). Otherwise `k` is a hash and rows with equal `k` are compared column by
/// column before they match.
trait Keys: Sync {
    const EXACT: bool;
    fn is_valid(&self, row: usize) -> bool;
    fn k(&self, row: usize) -> u64;
    /// A well-mixed hash of `k` (partitions use bits 32.., hash tables the low and top bits).
    fn mix(k: u64) -> u64;
    /// Whether row `row` of `self` and row `other_row` of `other` have equal keys; only asked
    /// when `!EXACT` and their `k` are equal.
    fn same(&self, row: usize, other: &Self, other_row: usize) -> bool;
}

/// Entity-less views: every row has the same (empty) key.
struct NoKey;

impl Keys for NoKey {
    const EXACT: bool = true;
    #[inline]
    fn is_valid(&self, _row: usize) -> bool {
        true
    }
    #[inline]
    fn k(&self, _row: usize) -> u64 {
        0
    }
    #[inline]
    fn mix(k: u64) -> u64 {
        k
    }
    #[inline]
    fn same(&self, _row: usize, _other: &Self, _other_row: usize) -> bool {
        true
    }
}

/// The common case, one integer key: `k` is the value itself.
struct IntKey<'a> {
    values: &'a [i64],
    validity: Option<&'a NullBuffer>,
}

impl Keys for IntKey<'_> {
    const EXACT: bool = true;
    #[inline]
    fn is_valid(&self, row: usize) -> bool {
        self.validity.is_none_or(|v| v.is_valid(row))
    }
    #[inline]
    fn k(&self, row: usize) -> u64 {
        self.values[row] as u64
    }
    #[inline]
    fn mix(k: u64) -> u64 {
        fmix64(k)
    }
    #[inline]
    fn same(&self, _row: usize, _other: &Self, _other_row: usize) -> bool {
        true
    }
}

/// Any other key (strings, composite keys): `k` is a hash of every column.
struct AnyKey<'a, 'b> {
    columns: &'b [KeyColumn<'a>],
}

impl Keys for AnyKey<'_, '_> {
    const EXACT: bool = false;
    #[inline]
    fn is_valid(&self, row: usize) -> bool {
        self.columns.iter().all(|c| c.is_valid(row))
    }
    #[inline]
    fn k(&self, row: usize) -> u64 {
        let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
        for c in self.columns {
            h = fmix64(h.rotate_left(23) ^ c.hash(row));
        }
        h
    }
    #[inline]
    fn mix(k: u64) -> u64 {
        k
    }
    #[inline]
    fn same(&self, row: usize, other: &Self, other_row: usize) -> bool {
        self.columns
            .iter()
            .zip(other.columns)
            .all(|(mine, theirs)| mine.eq_at(row, theirs, other_row))
    }
}

/// A source row as the partitions keep it: sorted by `(k, ts, row)`. The created timestamp
/// stays in its column (24 bytes a record instead of 32): it is only read for rows that tie on
/// the event time or under `filter_by_created_timestamp`.
#[derive(Clone, Copy, Debug, Default)]
struct SourceRec {
    k: u64,
    ts: i64,
    row: u32,
}

/// A source row's created timestamp as the tie-break and the filter see it: null is `i64::MIN`
/// (it loses ties), or `i64::MAX` under `filter_by_created_timestamp` (it never passes it).
#[inline]
fn created_at(created: Option<TimeColumn<'_>>, row: u32, filter: bool) -> i64 {
    match created {
        None => i64::MIN,
        Some(c) => c
            .get(row as usize)
            .unwrap_or(if filter { i64::MAX } else { i64::MIN }),
    }
}

/// An entity row as the partitions keep it.
#[derive(Clone, Copy, Debug, Default)]
struct EntityRec {
    k: u64,
    ts: i64,
    row: u32,
}

/// Marks a row that goes to no partition (null key or timestamp, or filtered out).
const SKIP: u16 = u16::MAX;

/// Rows of one side scattered by partition, chunk by chunk (each chunk is a contiguous row
/// range, so the chunks are built in parallel without sharing anything).
struct Partitioned<T> {
    /// Per chunk: the records in partition order, and `P + 1` offsets into them.
    chunks: Vec<(Vec<T>, Vec<usize>)>,
}

impl<T: Copy + Default + Send + Sync> Partitioned<T> {
    /// `part(row)` gives the row's partition (or `SKIP`) and its record. It is called twice
    /// per row (count, then scatter), which is cheaper than keeping the records twice.
    fn build(n: usize, partitions: usize, part: impl Fn(usize) -> (u16, T) + Sync) -> Self {
        let chunks = (0..n.div_ceil(SCATTER_CHUNK))
            .into_par_iter()
            .map(|c| {
                let rows = c * SCATTER_CHUNK..((c + 1) * SCATTER_CHUNK).min(n);
                let mut offsets = vec![0usize; partitions + 1];
                for row in rows.clone() {
                    let (p, _) = part(row);
                    if p != SKIP {
                        offsets[p as usize + 1] += 1;
                    }
                }
                for p in 0..partitions {
                    offsets[p + 1] += offsets[p];
                }
                let mut cursor = offsets.clone();
                let mut out = vec![T::default(); offsets[partitions]];
                for row in rows {
                    let (p, rec) = part(row);
                    if p != SKIP {
                        let slot = &mut cursor[p as usize];
                        out[*slot] = rec;
                        *slot += 1;
                    }
                }
                (out, offsets)
            })
            .collect();
        Self { chunks }
    }

    fn segments(&self, p: usize) -> impl Iterator<Item = &[T]> {
        self.chunks
            .iter()
            .map(move |(recs, offsets)| &recs[offsets[p]..offsets[p + 1]])
    }

    fn len(&self, p: usize) -> usize {
        self.chunks.iter().map(|(_, o)| o[p + 1] - o[p]).sum()
    }
}

/// Rows per chunk of the partitioning pass.
const SCATTER_CHUNK: usize = 1 << 20;

/// Source rows per partition to aim for: a partition's records (24 bytes each) and its run
/// table then stay in a core's L2 cache.
const PARTITION_ROWS: usize = 1 << 14;

const MAX_PARTITIONS: usize = 4096;

/// Build the source lookup for one partition: records sorted, and `k -> run` in a hash table.
fn sort_partition(recs: &mut [SourceRec]) {
    let key = |r: &SourceRec| (r.k, r.ts, r.row);
    if recs.len() >= LARGE_GROUP {
        recs.par_sort_unstable_by_key(key);
    } else {
        recs.sort_unstable_by_key(key);
    }
}

fn index_runs<K: Keys>(recs: &[SourceRec], runs: &mut HashTable<(u64, u32, u32)>) {
    runs.clear();
    let mut start = 0usize;
    while start < recs.len() {
        let k = recs[start].k;
        let mut end = start + 1;
        while end < recs.len() && recs[end].k == k {
            end += 1;
        }
        runs.insert_unique(K::mix(k), (k, start as u32, end as u32), |r| K::mix(r.0));
        start = end;
    }
}

/// The answer for one entity row, given the sorted records of its key's run.
///
/// Walks back from the latest event time at or before the entity's: without a created column
/// the first acceptable record is the answer (the run is sorted by row within an event time);
/// with one, every acceptable record of that event time is compared by `(created, row)`.
#[inline]
fn pick<K: Keys>(
    run: &[SourceRec],
    entity: &EntityRec,
    options: PitOptions,
    entity_keys: &K,
    source_keys: &K,
    created: Option<TimeColumn<'_>>,
) -> u64 {
    let lower = if options.ttl_ns > 0 {
        entity.ts.saturating_sub(options.ttl_ns)
    } else {
        i64::MIN
    };
    let filter = options.filter_by_created_timestamp;
    let mut best: Option<(i64, i64, u32)> = None; // (ts, created, row)
    let mut i = run.partition_point(|r| r.ts <= entity.ts);
    while i > 0 {
        i -= 1;
        let r = &run[i];
        if r.ts < lower || best.is_some_and(|(ts, _, _)| r.ts < ts) {
            break;
        }
        // A different key whose hash collided with this one: skip its rows.
        if !K::EXACT && !entity_keys.same(entity.row as usize, source_keys, r.row as usize) {
            continue;
        }
        let c = created_at(created, r.row, filter);
        if filter && c > entity.ts {
            continue;
        }
        if created.is_none() {
            return u64::from(r.row);
        }
        if best.is_none_or(|(_, bc, brow)| (c, r.row) > (bc, brow)) {
            best = Some((r.ts, c, r.row));
        }
    }
    best.map_or(NO_MATCH, |(_, _, row)| u64::from(row))
}

fn join<K: Keys>(
    entity_keys: &K,
    source_keys: &K,
    entity: &EntitySide<'_>,
    source: &SourceSide<'_>,
    options: PitOptions,
) -> Vec<u64> {
    let n_entity = entity.timestamps.values.len();
    let n_source = source.event_timestamps.values.len();
    let out: Vec<AtomicU64> = (0..n_entity).map(|_| AtomicU64::new(NO_MATCH)).collect();
    if n_entity == 0 || n_source == 0 {
        return out.into_iter().map(AtomicU64::into_inner).collect();
    }

    // A small entity frame against a large source: leave out the source rows of other keys
    // before partitioning them (one probe of a small, cache-resident set per source row).
    let wanted: Option<HashTable<u64>> =
        (n_entity.saturating_mul(8) <= n_source && n_entity <= 1 << 20).then(|| {
            let mut set = HashTable::with_capacity(n_entity);
            for row in 0..n_entity {
                if entity_keys.is_valid(row) && entity.timestamps.get(row).is_some() {
                    let k = entity_keys.k(row);
                    if let Entry::Vacant(v) = set.entry(K::mix(k), |&x| x == k, |&x| K::mix(x)) {
                        v.insert(k);
                    }
                }
            }
            set
        });
    // Sized for the whole source: the filter above may keep few rows or most of them, and an
    // empty partition costs next to nothing.
    let partitions = n_source
        .div_ceil(PARTITION_ROWS)
        .next_power_of_two()
        .clamp(1, MAX_PARTITIONS);
    let mask = (partitions - 1) as u64;
    let part_of = |k: u64| ((K::mix(k) >> 32) & mask) as u16;

    let event = source.event_timestamps;
    let created = source.created_timestamps;
    let sources = Partitioned::build(n_source, partitions, |row| {
        let Some(ts) = event.get(row) else {
            return (SKIP, SourceRec::default());
        };
        if !source_keys.is_valid(row) {
            return (SKIP, SourceRec::default());
        }
        let k = source_keys.k(row);
        if let Some(w) = &wanted {
            if w.find(K::mix(k), |&x| x == k).is_none() {
                return (SKIP, SourceRec::default());
            }
        }
        let rec = SourceRec {
            k,
            ts,
            row: row as u32,
        };
        (part_of(k), rec)
    });
    let entity_ts = entity.timestamps;
    let entities = Partitioned::build(n_entity, partitions, |row| match entity_ts.get(row) {
        Some(ts) if entity_keys.is_valid(row) => {
            let k = entity_keys.k(row);
            (
                part_of(k),
                EntityRec {
                    k,
                    ts,
                    row: row as u32,
                },
            )
        }
        _ => (SKIP, EntityRec::default()),
    });

    (0..partitions).into_par_iter().for_each_init(
        || (Vec::<SourceRec>::new(), HashTable::<(u64, u32, u32)>::new()),
        |(recs, runs), p| {
            if entities.len(p) == 0 {
                return;
            }
            recs.clear();
            for segment in sources.segments(p) {
                recs.extend_from_slice(segment);
            }
            if recs.is_empty() {
                return;
            }
            sort_partition(recs);
            index_runs::<K>(recs, runs);
            for segment in entities.segments(p) {
                for e in segment {
                    if let Some(&(_, start, end)) = runs.find(K::mix(e.k), |r| r.0 == e.k) {
                        let run = &recs[start as usize..end as usize];
                        let i = pick(run, e, options, entity_keys, source_keys, created);
                        out[e.row as usize].store(i, Ordering::Relaxed);
                    }
                }
            }
        },
    );
    // Same size and alignment: this collects in place, without a copy.
    out.into_iter().map(AtomicU64::into_inner).collect()
}

fn validate(
    entity: &EntitySide<'_>,
    source: &SourceSide<'_>,
    options: PitOptions,
) -> Result<(), CoreError> {
    if options.ttl_ns < 0 {
        return Err(CoreError::join(format!(
            "ttl must not be negative (got {} ns)",
            options.ttl_ns
        )));
    }
    if entity.keys.len() != source.keys.len() {
        return Err(CoreError::join(format!(
            "the entity side has {} join keys and the source side {}",
            entity.keys.len(),
            source.keys.len()
        )));
    }
    let n_entity = entity.timestamps.values.len();
    let n_source = source.event_timestamps.values.len();
    for (side, rows) in [(Side::Entity, n_entity), (Side::Source, n_source)] {
        if rows > MAX_ROWS {
            return Err(CoreError::join(format!(
                "the {side} side has {rows} rows; one call takes at most {MAX_ROWS} (split it)"
            )));
        }
    }
    entity.timestamps.check(Side::Entity, n_entity)?;
    source.event_timestamps.check(Side::Source, n_source)?;
    if let Some(created) = source.created_timestamps {
        created.check(Side::Source, n_source)?;
    }
    for (e, s) in entity.keys.iter().zip(source.keys) {
        e.check(Side::Entity, n_entity)?;
        s.check(Side::Source, n_source)?;
        if e.values.kind() != s.values.kind() {
            return Err(CoreError::join_key_kind(format!(
                "join key '{}' is {} on the entity side but '{}' is {} in the source",
                e.name,
                e.values.kind(),
                s.name,
                s.values.kind()
            )));
        }
    }
    Ok(())
}

/// For every entity row, the index of the chosen source row, or [`NO_MATCH`].
pub fn point_in_time_join(
    entity: &EntitySide<'_>,
    source: &SourceSide<'_>,
    options: PitOptions,
) -> Result<Vec<u64>, CoreError> {
    validate(entity, source, options)?;
    let out = match (entity.keys, source.keys) {
        ([], []) => join(&NoKey, &NoKey, entity, source, options),
        (
            [KeyColumn {
                values: KeyValues::Int64(ev),
                validity: evalid,
                ..
            }],
            [KeyColumn {
                values: KeyValues::Int64(sv),
                validity: svalid,
                ..
            }],
        ) => join(
            &IntKey {
                values: ev,
                validity: *evalid,
            },
            &IntKey {
                values: sv,
                validity: *svalid,
            },
            entity,
            source,
            options,
        ),
        (ek, sk) => join(
            &AnyKey { columns: ek },
            &AnyKey { columns: sk },
            entity,
            source,
            options,
        ),
    };
    Ok(out)
}

/// [`point_in_time_join`] for several views at once, in parallel.
pub fn point_in_time_join_many(views: &[ViewInput<'_>]) -> Vec<Result<Vec<u64>, CoreError>> {
    views
        .par_iter()
        .map(|v| point_in_time_join(&v.entity, &v.source, v.options))
        .collect()
}

/// Marks a row without a partition in [`key_partitions`] (a null key never matches).
pub const NO_PARTITION: u32 = u32::MAX;

/// For every row, one of `partitions` key-hash partitions (or [`NO_PARTITION`] for a null key),
/// for joins whose inputs are too large to hold at once: the entity frame and the source are
/// split by this id and each partition joined on its own.
///
/// Equal keys get equal ids whatever their layout (`string` and `large_string`, like the
/// kernel). Without key columns there are no rows to place. The id uses other bits of the key's hash than [`point_in_time_join`]'s own
/// partitions, so a partition's rows still spread over all of the kernel's.
pub fn key_partitions(
    side: Side,
    keys: &[KeyColumn<'_>],
    partitions: u32,
) -> Result<Vec<u32>, CoreError> {
    let n = keys.first().map_or(0, KeyColumn::len);
    for key in keys {
        key.check(side, n)?;
    }
    let partitions = u64::from(partitions.max(1));
    let place = |h: u64| {
        // Re-mix, then multiply-shift into 0..partitions (no division per row).
        let h = fmix64(h ^ 0x5851_f42d_4c95_7f2d) >> 32;
        ((h * partitions) >> 32) as u32
    };
    let mut out = vec![0u32; n];
    match keys {
        [] => {}
        [KeyColumn {
            values: KeyValues::Int64(values),
            validity,
            ..
        }] => out
            .par_chunks_mut(SCATTER_CHUNK)
            .enumerate()
            .for_each(|(c, chunk)| {
                let keys = IntKey {
                    values,
                    validity: *validity,
                };
                for (i, slot) in chunk.iter_mut().enumerate() {
                    let row = c * SCATTER_CHUNK + i;
                    *slot = if keys.is_valid(row) {
                        place(IntKey::mix(keys.k(row)))
                    } else {
                        NO_PARTITION
                    };
                }
            }),
        columns => {
            let keys = AnyKey { columns };
            out.par_chunks_mut(SCATTER_CHUNK)
                .enumerate()
                .for_each(|(c, chunk)| {
                    for (i, slot) in chunk.iter_mut().enumerate() {
                        let row = c * SCATTER_CHUNK + i;
                        *slot = if keys.is_valid(row) {
                            place(AnyKey::mix(keys.k(row)))
                        } else {
                            NO_PARTITION
                        };
                    }
                });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000_000;
    const M: i64 = 60_000_000_000;

    fn int_col<'a>(name: &'a str, v: &'a [i64]) -> KeyColumn<'a> {
        KeyColumn {
            name,
            values: KeyValues::Int64(v),
            validity: None,
        }
    }

    fn time_col<'a>(name: &'a str, v: &'a [i64]) -> TimeColumn<'a> {
        TimeColumn {
            name,
            values: v,
            validity: None,
        }
    }

    struct Strings {
        offsets: Vec<i32>,
        data: Vec<u8>,
    }

    impl Strings {
        fn new(values: &[&str]) -> Self {
            let mut offsets = vec![0i32];
            let mut data = Vec::new();
            for v in values {
                data.extend_from_slice(v.as_bytes());
                offsets.push(data.len() as i32);
            }
            Self { offsets, data }
        }

        fn col<'a>(&'a self, name: &'a str) -> KeyColumn<'a> {
            KeyColumn {
                name,
                values: KeyValues::Bytes(BytesColumn::Var32 {
                    offsets: &self.offsets,
                    data: &self.data,
                }),
                validity: None,
            }
        }
    }

    fn opts(ttl_ns: i64) -> PitOptions {
        PitOptions {
            ttl_ns,
            filter_by_created_timestamp: false,
        }
    }

    fn idx(v: &[u64]) -> Vec<Option<u64>> {
        v.iter()
            .map(|&i| if i == NO_MATCH { None } else { Some(i) })
            .collect()
    }

    /// Reference section 7.5.
    #[test]
    fn worked_example() {
        let src_keys = [1001, 1001, 1001, 1002, 1002];
        let src_ts = [10 * H, 11 * H, 11 * H, 9 * H, 12 * H];
        let created = [10 * H, 11 * H + 5 * M, 11 * H + M, 9 * H, 12 * H];
        let ent_keys = [1001, 1001, 1001, 1002, 1002, 1003, 1001];
        let ent_ts = [
            9 * H + 30 * M,
            10 * H + 30 * M,
            11 * H + 30 * M,
            11 * H + 30 * M,
            14 * H + 30 * M,
            12 * H,
            13 * H + 30 * M,
        ];
        let ek = [int_col("driver_id", &ent_keys)];
        let sk = [int_col("driver_id", &src_keys)];
        let entity = EntitySide {
            keys: &ek,
            timestamps: time_col("event_timestamp", &ent_ts),
        };
        let source = SourceSide {
            keys: &sk,
            event_timestamps: time_col("event_timestamp", &src_ts),
            created_timestamps: Some(time_col("created", &created)),
        };
        let out = point_in_time_join(&entity, &source, opts(2 * H)).unwrap();
        assert_eq!(
            idx(&out),
            vec![None, Some(0), Some(1), None, None, None, None]
        );
    }

    #[test]
    fn ttl_bounds_are_inclusive() {
        let sk = [int_col("k", &[1])];
        let ek_vals = [1, 1, 1, 1];
        let ek = [int_col("k", &ek_vals)];
        let ets = [100, 100 + H, 100 + H + 1, 99];
        let entity = EntitySide {
            keys: &ek,
            timestamps: time_col("ts", &ets),
        };
        let source = SourceSide {
            keys: &sk,
            event_timestamps: time_col("ts", &[100]),
            created_timestamps: None,
        };
        let out = point_in_time_join(&entity, &source, opts(H)).unwrap();
        assert_eq!(idx(&out), vec![Some(0), Some(0), None, None]);
        // ttl 0: unbounded look-back.
        let out = point_in_time_join(&entity, &source, opts(0)).unwrap();
        assert_eq!(idx(&out), vec![Some(0), Some(0), Some(0), None]);
    }

    #[test]
    fn created_tie_break_and_null_created_sorts_first() {
        let sk_vals = [7, 7, 7];
        let sk = [int_col("k", &sk_vals)];
        let ek = [int_col("k", &[7])];
        let created_vals = [5, 9, 0];
        let nulls = NullBuffer::from(vec![true, true, false]); // row 2's created is null
        let entity = EntitySide {
            keys: &ek,
            timestamps: time_col("ts", &[100]),
        };
        let source = SourceSide {
            keys: &sk,
            event_timestamps: time_col("ts", &[50, 50, 50]),
            created_timestamps: Some(TimeColumn {
                name: "created",
                values: &created_vals,
                validity: Some(&nulls),
            }),
        };
        assert_eq!(
            idx(&point_in_time_join(&entity, &source, opts(0)).unwrap()),
            vec![Some(1)]
        );
    }

    #[test]
    fn equal_event_and_created_pick_the_last_row() {
        let sk = [int_col("k", &[1, 1, 1])];
        let ek = [int_col("k", &[1])];
        let entity = EntitySide {
            keys: &ek,
            timestamps: time_col("ts", &[10]),
        };
        let source = SourceSide {
            keys: &sk,
            event_timestamps: time_col("ts", &[5, 5, 4]),
            created_timestamps: Some(time_col("c", &[1, 1, 1])),
        };
        assert_eq!(
            idx(&point_in_time_join(&entity, &source, opts(0)).unwrap()),
            vec![Some(1)]
        );
    }

    #[test]
    fn filter_by_created_timestamp_walks_back() {
        let sk = [int_col("k", &[1, 1, 1])];
        let ek_vals = [1, 1];
        let ek = [int_col("k", &ek_vals)];
        let ets = [20, 40];
        // Row 2 is the latest event but was created late; row 1 ties on event time with row 0
        // but was created later than the first entity timestamp.
        let entity = EntitySide {
            keys: &ek,
            timestamps: time_col("ts", &ets),
        };
        let source = SourceSide {
            keys: &sk,
            event_timestamps: time_col("ts", &[10, 10, 15]),
            created_timestamps: Some(time_col("c", &[10, 25, 30])),
        };
        let filtered = PitOptions {
            ttl_ns: 0,
            filter_by_created_timestamp: true,
        };
        assert_eq!(
            idx(&point_in_time_join(&entity, &source, filtered).unwrap()),
            vec![Some(0), Some(2)]
        );
        assert_eq!(
            idx(&point_in_time_join(&entity, &source, opts(0)).unwrap()),
            vec![Some(2), Some(2)]
        );
        // The walk back stops at the ttl bound.
        let filtered_ttl = PitOptions {
            ttl_ns: 10,
            filter_by_created_timestamp: true,
        };
        assert_eq!(
            idx(&point_in_time_join(&entity, &source, filtered_ttl).unwrap()),
            vec![Some(0), None]
        );
        let filtered_ttl = PitOptions {
            ttl_ns: 9,
            filter_by_created_timestamp: true,
        };
        let early = [1i64];
        let e2 = [int_col("k", &early)];
        let entity2 = EntitySide {
            keys: &e2,
            timestamps: time_col("ts", &[20]),
        };
        assert_eq!(
            idx(&point_in_time_join(&entity2, &source, filtered_ttl).unwrap()),
            vec![None]
        );
    }

    #[test]
    fn null_keys_and_timestamps_never_match() {
        let sk_vals = [1, 2];
        let s_nulls = NullBuffer::from(vec![false, true]); // source key 0 is null
        let sk = [KeyColumn {
            name: "k",
            values: KeyValues::Int64(&sk_vals),
            validity: Some(&s_nulls),
        }];
        let ek_vals = [1, 2, 2, 0];
        let e_nulls = NullBuffer::from(vec![true, true, true, false]); // entity key 3 is null
        let ek = [KeyColumn {
            name: "k",
            values: KeyValues::Int64(&ek_vals),
            validity: Some(&e_nulls),
        }];
        let ets = [10, 10, 10, 10];
        let ets_nulls = NullBuffer::from(vec![true, true, false, true]); // entity ts 2 is null
        let entity = EntitySide {
            keys: &ek,
            timestamps: TimeColumn {
                name: "ts",
                values: &ets,
                validity: Some(&ets_nulls),
            },
        };
        let source = SourceSide {
            keys: &sk,
            event_timestamps: time_col("ts", &[1, 1]),
            created_timestamps: None,
        };
        assert_eq!(
            idx(&point_in_time_join(&entity, &source, opts(0)).unwrap()),
            vec![None, Some(1), None, None]
        );
    }

    #[test]
    fn validity_with_offset() {
        // A sliced validity (bitmap offset 3): rows 0 and 2 valid, row 1 null.
        let nulls = NullBuffer::from(vec![false, false, false, true, false, true]).slice(3, 3);
        let ek_vals = [1, 1, 1];
        let ek = [KeyColumn {
            name: "k",
            values: KeyValues::Int64(&ek_vals),
            validity: Some(&nulls),
        }];
        let sk = [int_col("k", &[1])];
        let entity = EntitySide {
            keys: &ek,
            timestamps: time_col("ts", &[5, 5, 5]),
        };
        let source = SourceSide {
            keys: &sk,
            event_timestamps: time_col("ts", &[1]),
            created_timestamps: None,
        };
        assert_eq!(
            idx(&point_in_time_join(&entity, &source, opts(0)).unwrap()),
            vec![Some(0), None, Some(0)]
        );
        // A validity that does not cover the column is refused.
        let short = NullBuffer::from(vec![true, false]);
        let ek = [KeyColumn {
            validity: Some(&short),
            ..int_col("k", &ek_vals)
        }];
        let err = point_in_time_join(
            &EntitySide {
                keys: &ek,
                ..entity
            },
            &source,
            opts(0),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "entity column 'k' has inconsistent buffers"
        );
    }

    #[test]
    fn string_and_composite_keys() {
        let s_names = Strings::new(&["alice", "bob", "alice", "carol"]);
        let s_ids = [1, 1, 2, 1];
        let sk = [int_col("driver_id", &s_ids), s_names.col("customer_id")];
        let e_names = Strings::new(&["alice", "alice", "bob", "dave", "carol", "alice"]);
        let e_ids = [1, 2, 1, 1, 2, 1];
        let ek = [int_col("driver_id", &e_ids), e_names.col("customer_id")];
        let entity = EntitySide {
            keys: &ek,
            timestamps: time_col("ts", &[10, 10, 10, 10, 10, 0]),
        };
        let source = SourceSide {
            keys: &sk,
            event_timestamps: time_col("ts", &[1, 2, 3, 4]),
            created_timestamps: None,
        };
        assert_eq!(
            idx(&point_in_time_join(&entity, &source, opts(0)).unwrap()),
            vec![Some(0), Some(2), Some(1), None, None, None]
        );
        // A single string key, entity with i32 offsets vs source with i64 offsets.
        let large_offsets: Vec<i64> = s_names.offsets.iter().map(|&o| i64::from(o)).collect();
        let sk = [KeyColumn {
            name: "customer_id",
            values: KeyValues::Bytes(BytesColumn::Var64 {
                offsets: &large_offsets,
                data: &s_names.data,
            }),
            validity: None,
        }];
        let ek = [e_names.col("customer_id")];
        let entity = EntitySide {
            keys: &ek,
            timestamps: time_col("ts", &[10, 10, 10, 10, 10, 2]),
        };
        assert_eq!(
            idx(&point_in_time_join(
                &entity,
                &SourceSide {
                    keys: &sk,
                    ..source
                },
                opts(0)
            )
            .unwrap()),
            vec![Some(2), Some(2), Some(1), None, Some(3), Some(0)]
        );
    }

    #[test]
    fn entity_less_views_join_on_time() {
        let entity = EntitySide {
            keys: &[],
            timestamps: time_col("ts", &[0, 5, 10, 100]),
        };
        let source = SourceSide {
            keys: &[],
            event_timestamps: time_col("ts", &[9, 5, 1, 5]),
            created_timestamps: None,
        };
        assert_eq!(
            idx(&point_in_time_join(&entity, &source, opts(0)).unwrap()),
            vec![None, Some(3), Some(0), Some(0)]
        );
        assert_eq!(
            idx(&point_in_time_join(&entity, &source, opts(10)).unwrap()),
            vec![None, Some(3), Some(0), None]
        );
    }

    #[test]
    fn empty_inputs() {
        let entity = EntitySide {
            keys: &[],
            timestamps: time_col("ts", &[]),
        };
        let source = SourceSide {
            keys: &[],
            event_timestamps: time_col("ts", &[1]),
            created_timestamps: None,
        };
        assert!(point_in_time_join(&entity, &source, opts(0))
            .unwrap()
            .is_empty());
        let ek = [int_col("k", &[1, 2])];
        let sk = [int_col("k", &[])];
        let entity = EntitySide {
            keys: &ek,
            timestamps: time_col("ts", &[1, 2]),
        };
        let source = SourceSide {
            keys: &sk,
            event_timestamps: time_col("ts", &[]),
            created_timestamps: None,
        };
        assert_eq!(
            idx(&point_in_time_join(&entity, &source, opts(0)).unwrap()),
            vec![None, None]
        );
    }

    #[test]
    fn errors_name_the_column() {
        let ek = [int_col("driver_id", &[1, 2])];
        let s = Strings::new(&["a"]);
        let sk = [s.col("driver")];
        let entity = EntitySide {
            keys: &ek,
            timestamps: time_col("ts", &[1]),
        };
        let source = SourceSide {
            keys: &sk,
            event_timestamps: time_col("event_ts", &[1]),
            created_timestamps: None,
        };
        let err = point_in_time_join(&entity, &source, opts(0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "entity column 'driver_id' has 2 rows, expected 1"
        );
        let ek = [int_col("driver_id", &[1])];
        let entity = EntitySide {
            keys: &ek,
            timestamps: time_col("ts", &[1]),
        };
        let err = point_in_time_join(&entity, &source, opts(0)).unwrap_err();
        assert!(matches!(err, CoreError::JoinKeyKind { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "join key 'driver_id' is int64 on the entity side but 'driver' is string/binary in \
             the source"
        );
        let err = point_in_time_join(&entity, &source, opts(-1)).unwrap_err();
        assert!(matches!(err, CoreError::Join { .. }), "{err:?}");
        assert_eq!(err.to_string(), "ttl must not be negative (got -1 ns)");
        let source = SourceSide {
            keys: &[],
            ..source
        };
        let err = point_in_time_join(&entity, &source, opts(0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the entity side has 1 join keys and the source side 0"
        );
    }

    /// A small deterministic generator (xorshift64*), so the tests need no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> i64 {
            (self.next() % n) as i64
        }
    }

    /// The rule of docs/feast-compatibility.md §7.1 written as directly as possible.
    #[allow(clippy::too_many_arguments)]
    fn brute_force(
        ek: &[(i64, i64)],
        ets: &[i64],
        sk: &[(i64, i64)],
        sts: &[i64],
        created: Option<&[i64]>,
        ttl: i64,
        filter: bool,
        keyed: bool,
    ) -> Vec<Option<u64>> {
        ek.iter()
            .zip(ets)
            .map(|(key, &t)| {
                let mut best: Option<(i64, i64, usize)> = None;
                for (j, (skey, &st)) in sk.iter().zip(sts).enumerate() {
                    let c = created.map_or(i64::MIN, |c| c[j]);
                    let ok = (!keyed || skey == key)
                        && st <= t
                        && (ttl == 0 || st >= t - ttl)
                        && (!filter || c <= t);
                    if ok && best.is_none_or(|b| (st, c, j) > b) {
                        best = Some((st, c, j));
                    }
                }
                best.map(|b| b.2 as u64)
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_random_data() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for case in 0..300 {
            let n_src = rng.below(60) as usize;
            let n_ent = rng.below(40) as usize;
            let n_keys = 1 + rng.below(6) as u64;
            let span = 1 + rng.below(50) as u64;
            let ttl = [0, 1, 5, 20][rng.below(4) as usize];
            let filter = rng.below(2) == 1;
            let with_created = rng.below(3) > 0;
            let composite = rng.below(2) == 1;
            let keyed = rng.below(5) > 0;
            let sk: Vec<(i64, i64)> = (0..n_src)
                .map(|_| (rng.below(n_keys), if composite { rng.below(2) } else { 0 }))
                .collect();
            let sts: Vec<i64> = (0..n_src).map(|_| rng.below(span)).collect();
            let created: Vec<i64> = (0..n_src).map(|_| rng.below(span)).collect();
            let ek: Vec<(i64, i64)> = (0..n_ent)
                .map(|_| {
                    (
                        rng.below(n_keys + 1),
                        if composite { rng.below(2) } else { 0 },
                    )
                })
                .collect();
            let ets: Vec<i64> = (0..n_ent).map(|_| rng.below(span + 5)).collect();

            // Key 0 of the first column as strings, to run the generic path as well.
            let e0: Vec<i64> = ek.iter().map(|k| k.0).collect();
            let e1: Vec<i64> = ek.iter().map(|k| k.1).collect();
            let s0: Vec<i64> = sk.iter().map(|k| k.0).collect();
            let s1: Vec<i64> = sk.iter().map(|k| k.1).collect();
            let e0_str: Vec<String> = e0.iter().map(|v| format!("k{v}")).collect();
            let s0_str: Vec<String> = s0.iter().map(|v| format!("k{v}")).collect();
            let e0s = Strings::new(&e0_str.iter().map(String::as_str).collect::<Vec<_>>());
            let s0s = Strings::new(&s0_str.iter().map(String::as_str).collect::<Vec<_>>());

            let expected = brute_force(
                &ek,
                &ets,
                &sk,
                &sts,
                with_created.then_some(created.as_slice()),
                ttl,
                filter && with_created,
                keyed,
            );
            let options = PitOptions {
                ttl_ns: ttl,
                filter_by_created_timestamp: filter,
            };
            let key_sets: Vec<(Vec<KeyColumn<'_>>, Vec<KeyColumn<'_>>)> = if !keyed {
                vec![(vec![], vec![])]
            } else if composite {
                vec![
                    (
                        vec![int_col("a", &e0), int_col("b", &e1)],
                        vec![int_col("a", &s0), int_col("b", &s1)],
                    ),
                    (
                        vec![e0s.col("a"), int_col("b", &e1)],
                        vec![s0s.col("a"), int_col("b", &s1)],
                    ),
                ]
            } else {
                vec![
                    (vec![int_col("a", &e0)], vec![int_col("a", &s0)]),
                    (vec![e0s.col("a")], vec![s0s.col("a")]),
                ]
            };
            for (ekc, skc) in &key_sets {
                let entity = EntitySide {
                    keys: ekc,
                    timestamps: time_col("ts", &ets),
                };
                let source = SourceSide {
                    keys: skc,
                    event_timestamps: time_col("ts", &sts),
                    created_timestamps: with_created.then(|| time_col("c", &created)),
                };
                let got = point_in_time_join(&entity, &source, options).unwrap();
                assert_eq!(idx(&got), expected, "case {case}");
            }
        }
    }

    #[test]
    fn large_groups_and_many_views_in_parallel() {
        // One big group (sorted in parallel) and many small ones, out of time order.
        // Key 0 holds 70,000 rows, above LARGE_GROUP.
        let n = 140_000usize;
        let mut rng = Rng(42);
        let keys: Vec<i64> = (0..n)
            .map(|i| if i % 2 == 0 { 0 } else { rng.below(1000) + 1 })
            .collect();
        let ts: Vec<i64> = (0..n).map(|_| rng.below(1_000_000)).collect();
        let ek: Vec<i64> = (0..600).map(|i| i % 1001).collect();
        let ets: Vec<i64> = (0..600).map(|_| rng.below(1_100_000)).collect();
        let skc = [int_col("k", &keys)];
        let ekc = [int_col("k", &ek)];
        let view = ViewInput {
            entity: EntitySide {
                keys: &ekc,
                timestamps: time_col("ts", &ets),
            },
            source: SourceSide {
                keys: &skc,
                event_timestamps: time_col("ts", &ts),
                created_timestamps: None,
            },
            options: opts(50_000),
        };
        let sk_pairs: Vec<(i64, i64)> = keys.iter().map(|&k| (k, 0)).collect();
        let ek_pairs: Vec<(i64, i64)> = ek.iter().map(|&k| (k, 0)).collect();
        let expected = brute_force(&ek_pairs, &ets, &sk_pairs, &ts, None, 50_000, false, true);
        let results = point_in_time_join_many(&[view, view, view]);
        assert_eq!(results.len(), 3);
        for r in results {
            assert_eq!(idx(&r.unwrap()), expected);
        }
    }

    #[test]
    fn key_partitions_agree_across_layouts_and_sides() {
        let names = Strings::new(&["alice", "bob", "alice", "", "carol"]);
        let large: Vec<i64> = names.offsets.iter().map(|&o| i64::from(o)).collect();
        let large_col = KeyColumn {
            name: "name",
            values: KeyValues::Bytes(BytesColumn::Var64 {
                offsets: &large,
                data: &names.data,
            }),
            validity: None,
        };
        let small = key_partitions(Side::Entity, &[names.col("name")], 7).unwrap();
        let big = key_partitions(Side::Source, &[large_col], 7).unwrap();
        assert_eq!(small, big);
        assert_eq!(small[0], small[2]);
        assert!(small.iter().all(|&p| p < 7));
        // Composite keys: equal when every column is equal.
        let ids = [1, 2, 1, 1, 1];
        let composite =
            key_partitions(Side::Source, &[int_col("id", &ids), names.col("name")], 64).unwrap();
        assert_eq!(composite[0], composite[2]);
        assert!(composite.iter().all(|&p| p < 64));
        // One partition: every valid row is in it.
        let one = key_partitions(Side::Source, &[int_col("id", &ids)], 1).unwrap();
        assert_eq!(one, vec![0; 5]);
    }

    #[test]
    fn key_partitions_spread_int_keys_and_skip_nulls() {
        let values: Vec<i64> = (0..100_000).collect();
        let parts = key_partitions(Side::Source, &[int_col("k", &values)], 8).unwrap();
        let mut counts = [0usize; 8];
        for &p in &parts {
            counts[p as usize] += 1;
        }
        // 12,500 each if even; a hash this good stays within a few percent.
        assert!(
            counts.iter().all(|&c| (11_500..13_500).contains(&c)),
            "{counts:?}"
        );
        let again = key_partitions(Side::Entity, &[int_col("k", &values[..10])], 8).unwrap();
        assert_eq!(again, parts[..10]);

        let vals = [5, 6, 7];
        let nulls = NullBuffer::from(vec![true, false, true]); // row 1 is null
        let keys = [KeyColumn {
            name: "k",
            values: KeyValues::Int64(&vals),
            validity: Some(&nulls),
        }];
        let parts = key_partitions(Side::Source, &keys, 4).unwrap();
        assert_eq!(parts[1], NO_PARTITION);
        assert!(parts[0] < 4 && parts[2] < 4);
        assert!(key_partitions(Side::Source, &[], 4).unwrap().is_empty());
    }

    #[test]
    fn key_partitions_reject_uneven_columns() {
        let a = [1, 2, 3];
        let b = [1, 2];
        let err = key_partitions(Side::Entity, &[int_col("a", &a), int_col("b", &b)], 2);
        assert_eq!(
            err.unwrap_err().to_string(),
            "entity column 'b' has 2 rows, expected 3"
        );
    }
}
