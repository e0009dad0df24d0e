//! The online side: one entity's tiles of one view as stored bytes, updated with events and
//! read as of a time (docs/aggregations.md).
//!
//! A tile set holds, per tile, one partial per aggregation of the view: the same partials
//! (`partial.rs`) the offline kernel folds, added to in the same (event time, row) order within
//! a batch and merged from the oldest tile on read, so a read at `t` agrees with
//! `as_of::aggregate` at `t`. Stored format (little-endian):
//!
//! ```text
//! u8 1 (version) | i64 newest event time (µs) | u32 tile count |
//! per tile, ascending: i64 tile index, then each aggregation's partial (`State::encode`)
//! ```
//!
//! Tiles that no read at or after "now" can reach (older than the longest window, in tiles)
//! are dropped on every update, and events that would land in them are counted as dropped.
use super::distinct::{Distinct, EXACT_MAX, P};
use super::partial::{
    At, Count, Extreme, Last, MeanFloat, MeanInt, Moments, Partial, SumFloat, SumInt,
};
use super::{tile_of, window_start, Function};
use crate::error::CoreError;
use crate::packed::{begin_row, write_cell, Cell};

const VERSION: u8 = 1;

/// What an aggregation reads from its input column online.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Int,
    Float,
    /// Strings (`last` of a `String` column).
    Text,
    /// Bytes (`last` of a `Bytes` column).
    Binary,
    /// Hashes (`count_distinct`) or only validity (`count`).
    Other,
}

/// One aggregation of a view: its function, its input's kind and its window.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub function: Function,
    pub input: Input,
    pub window_ns: i64,
}

/// The partial of one aggregation in one tile.
#[derive(Clone, Debug)]
pub enum State {
    Count(Count),
    SumInt(SumInt),
    SumFloat(SumFloat),
    MeanInt(MeanInt),
    MeanFloat(MeanFloat),
    Var(Moments<false>),
    Std(Moments<true>),
    MinInt(Extreme<i64, false>),
    MinFloat(Extreme<f64, false>),
    MaxInt(Extreme<i64, true>),
    MaxFloat(Extreme<f64, true>),
    LastInt(Last<i64>),
    LastFloat(Last<f64>),
    /// `last` of a string column: the bytes are UTF-8 (checked when decoded).
    LastText(LastBytes),
    LastBinary(LastBytes),
    Distinct(Distinct),
}

/// One event's value for one aggregation (already checked non-null).
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Int(i64),
    Float(f64),
    Hash(u64),
    /// A string's or a byte string's bytes.
    Bytes(&'a [u8]),
    Present,
}

/// `last` of strings or bytes: [`Last`]'s rule (the greatest [`At`] wins, a tie to the later
/// one added) over an owned value, since `Partial` values are `Copy`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LastBytes {
    pub best: Option<(Vec<u8>, At)>,
}

impl LastBytes {
    pub fn add(&mut self, value: &[u8], at: At) {
        match &mut self.best {
            Some((kept, best)) if at >= *best => {
                kept.clear();
                kept.extend_from_slice(value);
                *best = at;
            }
            Some(_) => {}
            None => self.best = Some((value.to_vec(), at)),
        }
    }

    pub fn merge(&mut self, other: &Self) {
        if let Some((value, at)) = &other.best {
            self.add(value, *at);
        }
    }
}

impl Spec {
    pub fn check(&self) -> Result<(), CoreError> {
        use Function as F;
        let ok = match self.function {
            F::Count => true,
            F::CountDistinct => self.input != Input::Float,
            F::Last => self.input != Input::Other,
            F::Sum | F::Mean | F::Min | F::Max | F::Var | F::Std => {
                matches!(self.input, Input::Int | Input::Float)
            }
        };
        if !ok || self.window_ns <= 0 {
            return Err(CoreError::InvalidArgument(format!(
                "aggregation {:?} of {:?} input over {} ns is not defined online",
                self.function, self.input, self.window_ns
            )));
        }
        Ok(())
    }

    fn empty(&self) -> State {
        use Function as F;
        let int = self.input == Input::Int;
        match self.function {
            F::Count => State::Count(Count::default()),
            F::Sum if int => State::SumInt(SumInt::default()),
            F::Sum => State::SumFloat(SumFloat::default()),
            F::Mean if int => State::MeanInt(MeanInt::default()),
            F::Mean => State::MeanFloat(MeanFloat::default()),
            F::Var => State::Var(Moments::default()),
            F::Std => State::Std(Moments::default()),
            F::Min if int => State::MinInt(Extreme::default()),
            F::Min => State::MinFloat(Extreme::default()),
            F::Max if int => State::MaxInt(Extreme::default()),
            F::Max => State::MaxFloat(Extreme::default()),
            F::Last if int => State::LastInt(Last::default()),
            F::Last if self.input == Input::Text => State::LastText(LastBytes::default()),
            F::Last if self.input == Input::Binary => State::LastBinary(LastBytes::default()),
            F::Last => State::LastFloat(Last::default()),
            F::CountDistinct => State::Distinct(Distinct::default()),
        }
    }
}

fn float(value: Value) -> f64 {
    match value {
        Value::Int(v) => v as f64,
        Value::Float(v) => v,
        Value::Hash(_) | Value::Bytes(_) | Value::Present => 0.0,
    }
}

fn int(value: Value) -> i64 {
    match value {
        Value::Int(v) => v,
        _ => 0,
    }
}

impl State {
    fn add(&mut self, value: Value, at: At) {
        match self {
            Self::Count(p) => p.add((), at),
            Self::SumInt(p) => p.add(int(value), at),
            Self::SumFloat(p) => p.add(float(value), at),
            Self::MeanInt(p) => p.add(int(value), at),
            Self::MeanFloat(p) => p.add(float(value), at),
            Self::Var(p) => p.add(float(value), at),
            Self::Std(p) => p.add(float(value), at),
            Self::MinInt(p) => p.add(int(value), at),
            Self::MinFloat(p) => p.add(float(value), at),
            Self::MaxInt(p) => p.add(int(value), at),
            Self::MaxFloat(p) => p.add(float(value), at),
            Self::LastInt(p) => p.add(int(value), at),
            Self::LastFloat(p) => p.add(float(value), at),
            Self::LastText(p) | Self::LastBinary(p) => {
                if let Value::Bytes(b) = value {
                    p.add(b, at);
                }
            }
            Self::Distinct(p) => {
                if let Value::Hash(h) = value {
                    p.add(h, at);
                }
            }
        }
    }

    fn merge(&mut self, other: &Self) {
        match (self, other) {
            (Self::Count(a), Self::Count(b)) => a.merge(b),
            (Self::SumInt(a), Self::SumInt(b)) => a.merge(b),
            (Self::SumFloat(a), Self::SumFloat(b)) => a.merge(b),
            (Self::MeanInt(a), Self::MeanInt(b)) => a.merge(b),
            (Self::MeanFloat(a), Self::MeanFloat(b)) => a.merge(b),
            (Self::Var(a), Self::Var(b)) => a.merge(b),
            (Self::Std(a), Self::Std(b)) => a.merge(b),
            (Self::MinInt(a), Self::MinInt(b)) => a.merge(b),
            (Self::MinFloat(a), Self::MinFloat(b)) => a.merge(b),
            (Self::MaxInt(a), Self::MaxInt(b)) => a.merge(b),
            (Self::MaxFloat(a), Self::MaxFloat(b)) => a.merge(b),
            (Self::LastInt(a), Self::LastInt(b)) => a.merge(b),
            (Self::LastFloat(a), Self::LastFloat(b)) => a.merge(b),
            (Self::LastText(a), Self::LastText(b)) | (Self::LastBinary(a), Self::LastBinary(b)) => {
                a.merge(b);
            }
            (Self::Distinct(a), Self::Distinct(b)) => a.merge(b),
            _ => unreachable!("tiles of one view hold the same states"),
        }
    }

    /// The window's value as a packed-row cell. A sum beyond int64 reads as null online
    /// (offline it is an error).
    fn cell(&self) -> Cell<'_> {
        fn or_null<'a, T>(value: Option<T>, cell: impl Fn(T) -> Cell<'a>) -> Cell<'a> {
            value.map_or(Cell::Null, cell)
        }
        match self {
            Self::Count(p) => or_null(p.finish(), Cell::Int),
            Self::SumInt(p) => or_null(p.finish().and_then(|s| i64::try_from(s).ok()), Cell::Int),
            Self::SumFloat(p) => or_null(p.finish(), Cell::F64),
            Self::MeanInt(p) => or_null(p.finish(), Cell::F64),
            Self::MeanFloat(p) => or_null(p.finish(), Cell::F64),
            Self::Var(p) => or_null(p.finish(), Cell::F64),
            Self::Std(p) => or_null(p.finish(), Cell::F64),
            Self::MinInt(p) => or_null(p.finish(), |(v, _)| Cell::Int(v)),
            Self::MinFloat(p) => or_null(p.finish(), |(v, _)| Cell::F64(v)),
            Self::MaxInt(p) => or_null(p.finish(), |(v, _)| Cell::Int(v)),
            Self::MaxFloat(p) => or_null(p.finish(), |(v, _)| Cell::F64(v)),
            Self::LastInt(p) => or_null(p.finish(), |(v, _)| Cell::Int(v)),
            Self::LastFloat(p) => or_null(p.finish(), |(v, _)| Cell::F64(v)),
            // Decoding checked the bytes are UTF-8.
            Self::LastText(p) => or_null(p.best.as_ref(), |(v, _)| {
                std::str::from_utf8(v).map_or(Cell::Null, Cell::Str)
            }),
            Self::LastBinary(p) => or_null(p.best.as_ref(), |(v, _)| Cell::Bin(v)),
            Self::Distinct(p) => or_null(p.finish(), Cell::Int),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        fn at(out: &mut Vec<u8>, best: Option<(u64, At)>) {
            match best {
                None => out.push(0),
                Some((bits, at)) => {
                    out.push(1);
                    out.extend_from_slice(&bits.to_le_bytes());
                    out.extend_from_slice(&at.ts.to_le_bytes());
                    out.extend_from_slice(&at.seq.to_le_bytes());
                }
            }
        }
        let sum_int = |out: &mut Vec<u8>, p: &SumInt| {
            out.extend_from_slice(&p.n.to_le_bytes());
            out.extend_from_slice(&p.sum.to_le_bytes());
        };
        let sum_float = |out: &mut Vec<u8>, p: &SumFloat| {
            out.extend_from_slice(&p.n.to_le_bytes());
            out.extend_from_slice(&p.sum.to_le_bytes());
        };
        match self {
            Self::Count(p) => out.extend_from_slice(&p.n.to_le_bytes()),
            Self::SumInt(p) | Self::MeanInt(MeanInt(p)) => sum_int(out, p),
            Self::SumFloat(p) | Self::MeanFloat(MeanFloat(p)) => sum_float(out, p),
            Self::Var(Moments { n, mean, m2 }) | Self::Std(Moments { n, mean, m2 }) => {
                out.extend_from_slice(&n.to_le_bytes());
                out.extend_from_slice(&mean.to_le_bytes());
                out.extend_from_slice(&m2.to_le_bytes());
            }
            Self::MinInt(p) => at(out, p.best.map(|(v, a)| (v as u64, a))),
            Self::MaxInt(p) => at(out, p.best.map(|(v, a)| (v as u64, a))),
            Self::LastInt(p) => at(out, p.best.map(|(v, a)| (v as u64, a))),
            Self::MinFloat(p) => at(out, p.best.map(|(v, a)| (v.to_bits(), a))),
            Self::MaxFloat(p) => at(out, p.best.map(|(v, a)| (v.to_bits(), a))),
            Self::LastFloat(p) => at(out, p.best.map(|(v, a)| (v.to_bits(), a))),
            // `u8 0`, or `u8 1, u32 length, the bytes, i64 ts, u64 seq`.
            Self::LastText(p) | Self::LastBinary(p) => match &p.best {
                None => out.push(0),
                Some((value, at)) => {
                    out.push(1);
                    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
                    out.extend_from_slice(value);
                    out.extend_from_slice(&at.ts.to_le_bytes());
                    out.extend_from_slice(&at.seq.to_le_bytes());
                }
            },
            Self::Distinct(p) => p.encode(out),
        }
    }

    fn decode(spec: &Spec, bytes: &mut Bytes<'_>) -> Result<Self, CoreError> {
        let mut state = spec.empty();
        let best = |bytes: &mut Bytes<'_>| -> Result<Option<(u64, At)>, CoreError> {
            Ok(match bytes.u8()? {
                0 => None,
                _ => Some((
                    bytes.u64()?,
                    At {
                        ts: bytes.u64()? as i64,
                        seq: bytes.u64()?,
                    },
                )),
            })
        };
        match &mut state {
            State::Count(p) => p.n = bytes.u64()?,
            State::SumInt(p) | State::MeanInt(MeanInt(p)) => {
                p.n = bytes.u64()?;
                p.sum = bytes.i128()?;
            }
            State::SumFloat(p) | State::MeanFloat(MeanFloat(p)) => {
                p.n = bytes.u64()?;
                p.sum = f64::from_bits(bytes.u64()?);
            }
            State::Var(Moments { n, mean, m2 }) | State::Std(Moments { n, mean, m2 }) => {
                *n = bytes.u64()?;
                *mean = f64::from_bits(bytes.u64()?);
                *m2 = f64::from_bits(bytes.u64()?);
            }
            State::MinInt(p) => p.best = best(bytes)?.map(|(v, a)| (v as i64, a)),
            State::MaxInt(p) => p.best = best(bytes)?.map(|(v, a)| (v as i64, a)),
            State::LastInt(p) => p.best = best(bytes)?.map(|(v, a)| (v as i64, a)),
            State::MinFloat(p) => p.best = best(bytes)?.map(|(v, a)| (f64::from_bits(v), a)),
            State::MaxFloat(p) => p.best = best(bytes)?.map(|(v, a)| (f64::from_bits(v), a)),
            State::LastFloat(p) => p.best = best(bytes)?.map(|(v, a)| (f64::from_bits(v), a)),
            State::LastText(p) | State::LastBinary(p) => {
                if bytes.u8()? != 0 {
                    let n = u32::from_le_bytes(bytes.take(4)?.try_into().unwrap_or([0; 4]));
                    let value = bytes.take(n as usize)?;
                    if spec.input == Input::Text && std::str::from_utf8(value).is_err() {
                        return Err(bytes.bad("a last string is not UTF-8"));
                    }
                    let at = At {
                        ts: bytes.u64()? as i64,
                        seq: bytes.u64()?,
                    };
                    p.best = Some((value.to_vec(), at));
                }
            }
            State::Distinct(p) => *p = Distinct::decode(bytes)?,
        }
        Ok(state)
    }
}

impl Distinct {
    /// `u8 0, u16 n, n x u64` (exact) or `u8 1, 2^P register bytes`.
    fn encode(&self, out: &mut Vec<u8>) {
        if let Some(registers) = self.registers() {
            out.push(1);
            out.extend_from_slice(registers);
        } else {
            out.push(0);
            let hashes = self.hashes();
            out.extend_from_slice(&(hashes.len() as u16).to_le_bytes());
            for h in hashes {
                out.extend_from_slice(&h.to_le_bytes());
            }
        }
    }

    fn decode(bytes: &mut Bytes<'_>) -> Result<Self, CoreError> {
        let mut d = Distinct::default();
        if bytes.u8()? == 1 {
            let registers = bytes.take(1 << P)?;
            d.set_registers(registers);
        } else {
            let n = usize::from(u16::from_le_bytes(
                bytes.take(2)?.try_into().unwrap_or([0; 2]),
            ));
            if n > EXACT_MAX {
                return Err(bytes.bad("count_distinct set too large"));
            }
            for _ in 0..n {
                d.insert(bytes.u64()?);
            }
        }
        Ok(d)
    }
}

/// A reader over stored bytes whose errors say where the bytes stop making sense.
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn bad(&self, what: &str) -> CoreError {
        CoreError::decode("", self.pos, format!("stored aggregation tiles: {what}"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CoreError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(self.bad("truncated"));
        };
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, CoreError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, CoreError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or([0; 8]),
        ))
    }

    fn i128(&mut self) -> Result<i128, CoreError> {
        Ok(i128::from_le_bytes(
            self.take(16)?.try_into().unwrap_or([0; 16]),
        ))
    }
}

/// One entity's tiles of one view, ascending by tile index.
#[derive(Clone, Debug, Default)]
pub struct TileSet {
    pub newest_micros: Option<i64>,
    pub tiles: Vec<(i64, Vec<State>)>,
}

impl TileSet {
    pub fn decode(specs: &[Spec], data: &[u8]) -> Result<Self, CoreError> {
        let mut bytes = Bytes { data, pos: 0 };
        if bytes.u8()? != VERSION {
            return Err(bytes.bad("unknown version"));
        }
        let newest = bytes.u64()? as i64;
        let count = u32::from_le_bytes(bytes.take(4)?.try_into().unwrap_or([0; 4])) as usize;
        let mut tiles = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            let index = bytes.u64()? as i64;
            let states = specs
                .iter()
                .map(|s| State::decode(s, &mut bytes))
                .collect::<Result<Vec<_>, _>>()?;
            tiles.push((index, states));
        }
        if bytes.pos != data.len() {
            return Err(bytes.bad("trailing bytes"));
        }
        Ok(Self {
            newest_micros: (newest != i64::MIN).then_some(newest),
            tiles,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        out.extend_from_slice(&self.newest_micros.unwrap_or(i64::MIN).to_le_bytes());
        out.extend_from_slice(&(self.tiles.len() as u32).to_le_bytes());
        for (index, states) in &self.tiles {
            out.extend_from_slice(&index.to_le_bytes());
            for state in states {
                state.encode(&mut out);
            }
        }
        out
    }

    /// Adds one event (its values per aggregation, `None` = null) to its tile.
    pub fn add(&mut self, specs: &[Spec], tile: i64, at: At, values: &[Option<Value>]) {
        let position = match self.tiles.binary_search_by_key(&tile, |(k, _)| *k) {
            Ok(p) => p,
            Err(p) => {
                self.tiles
                    .insert(p, (tile, specs.iter().map(Spec::empty).collect()));
                p
            }
        };
        let states = &mut self.tiles[position].1;
        for (state, value) in states.iter_mut().zip(values) {
            if let Some(value) = value {
                state.add(*value, at);
            }
        }
        let micros = at.ts.div_euclid(1_000);
        self.newest_micros = Some(self.newest_micros.map_or(micros, |n| n.max(micros)));
    }

    /// Drops the tiles below `horizon` (no read at or after now reaches them).
    pub fn prune(&mut self, horizon: i64) {
        self.tiles.retain(|(k, _)| *k >= horizon);
    }

    /// The view's packed row as of `t`: one cell per aggregation, in spec order; nothing
    /// when no event was ever kept (the entity reads as not found).
    pub fn read(&self, specs: &[Spec], tile_ns: i64, t: i64, out: &mut Vec<u8>) -> bool {
        let Some(newest) = self.newest_micros else {
            return false;
        };
        begin_row(out, newest, specs.len());
        let last = tile_of(t, tile_ns);
        for (i, spec) in specs.iter().enumerate() {
            let first = window_start(t, spec.window_ns, tile_ns).div_euclid(tile_ns) + 1;
            let mut total = spec.empty();
            for (k, states) in &self.tiles {
                if *k >= first && *k <= last {
                    total.merge(&states[i]);
                }
            }
            write_cell(out, total.cell());
        }
        true
    }
}

/// The watermark of a tile set (docs/aggregations.md, "Late and out-of-order events"): its
/// newest stored event time minus `lateness_ns`; an event before it is late. None for a set
/// with no event yet (nothing is late).
pub fn watermark(set: &TileSet, lateness_ns: i64) -> Option<i64> {
    set.newest_micros
        .map(|micros| micros.saturating_mul(1_000).saturating_sub(lateness_ns))
}

/// The first tile a read at `now` or later can reach.
pub fn horizon(specs: &[Spec], tile_ns: i64, now: i64) -> i64 {
    let longest = specs.iter().map(|s| s.window_ns).max().unwrap_or(0);
    window_start(now, longest, tile_ns).div_euclid(tile_ns) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<Spec> {
        let spec = |function, input, window_ns| Spec {
            function,
            input,
            window_ns,
        };
        vec![
            spec(Function::Sum, Input::Int, 30),
            spec(Function::Count, Input::Other, 30),
            spec(Function::Max, Input::Float, 10),
            spec(Function::Std, Input::Float, 30),
            spec(Function::CountDistinct, Input::Other, 30),
            spec(Function::Last, Input::Int, 30),
            spec(Function::Mean, Input::Int, 30),
        ]
    }

    fn event(set: &mut TileSet, specs: &[Spec], ts: i64, v: i64, seq: u64) {
        let values = [
            Some(Value::Int(v)),
            Some(Value::Present),
            Some(Value::Float(v as f64)),
            Some(Value::Float(v as f64)),
            Some(Value::Hash(super::super::distinct::hash_int(v % 3))),
            Some(Value::Int(v)),
            Some(Value::Int(v)),
        ];
        set.add(specs, tile_of(ts, 10), At { ts, seq }, &values);
    }

    #[test]
    fn round_trips_and_reads_windows() {
        let specs = specs();
        let mut set = TileSet::default();
        for (seq, ts) in [35_i64, 5, 12, 20, 40, 31].into_iter().enumerate() {
            event(&mut set, &specs, ts, ts, seq as u64);
        }
        let bytes = set.encode();
        let back = TileSet::decode(&specs, &bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        let mut row = Vec::new();
        back.read(&specs, 10, 40, &mut row);
        let mut again = Vec::new();
        set.read(&specs, 10, 40, &mut again);
        assert_eq!(row, again);
        assert!(TileSet::decode(&specs, &bytes[..bytes.len() - 1]).is_err());
        assert!(TileSet::decode(&specs, &[9]).is_err());
    }

    #[test]
    fn pruning_keeps_what_reads_reach() {
        let specs = specs();
        let mut set = TileSet::default();
        for ts in [1, 11, 21, 31, 41] {
            event(&mut set, &specs, ts, 1, 0);
        }
        // A read at 50 with a 30 ns window starts after 20: tiles 3 (21..30) and on.
        let h = horizon(&specs, 10, 50);
        assert_eq!(h, 3);
        set.prune(h);
        assert_eq!(
            set.tiles.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [3, 4, 5]
        );
    }

    #[test]
    fn the_watermark_trails_the_newest_stored_event() {
        let specs = specs();
        let mut set = TileSet::default();
        assert_eq!(watermark(&set, 5_000), None);
        event(&mut set, &specs, 40_000, 1, 0);
        event(&mut set, &specs, 12_000, 1, 1);
        assert_eq!(watermark(&set, 5_000), Some(35_000));
        assert_eq!(watermark(&set, 0), Some(40_000));
        // Far thresholds saturate instead of wrapping.
        assert_eq!(watermark(&set, i64::MAX), Some(40_000 - i64::MAX));
    }

    #[test]
    fn last_of_strings_and_bytes_keeps_the_latest_event() {
        let specs = [
            Spec {
                function: Function::Last,
                input: Input::Text,
                window_ns: 30,
            },
            Spec {
                function: Function::Last,
                input: Input::Binary,
                window_ns: 10,
            },
        ];
        let mut set = TileSet::default();
        let mut add = |ts: i64, seq: u64, text: &str, bin: &[u8]| {
            let values = [Some(Value::Bytes(text.as_bytes())), Some(Value::Bytes(bin))];
            set.add(&specs, tile_of(ts, 10), At { ts, seq }, &values);
        };
        add(25, 0, "late", b"\x00\xff");
        add(5, 1, "older, arrived after", b"x");
        add(25, 2, "same time, later arrival", b"");
        add(12, 3, "é", b"\x01");
        let bytes = set.encode();
        let back = TileSet::decode(&specs, &bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        let mut row = Vec::new();
        assert!(back.read(&specs, 10, 30, &mut row));
        let mut want = Vec::new();
        begin_row(&mut want, 0, 2);
        write_cell(&mut want, Cell::Str("same time, later arrival"));
        write_cell(&mut want, Cell::Bin(b""));
        assert_eq!(row, want);
        // At 40 the 10 ns window (30, 40] is empty; the 30 ns one still sees tile 3.
        let mut row = Vec::new();
        back.read(&specs, 10, 40, &mut row);
        let mut want = Vec::new();
        begin_row(&mut want, 0, 2);
        write_cell(&mut want, Cell::Str("same time, later arrival"));
        write_cell(&mut want, Cell::Null);
        assert_eq!(row, want);
        // Stored bytes that are not UTF-8 where a string is kept are refused, not served.
        let mut bad = TileSet::default();
        let values = [Some(Value::Bytes(b"\xff")), Some(Value::Bytes(b""))];
        bad.add(&specs, 1, At { ts: 5, seq: 0 }, &values);
        let err = TileSet::decode(&specs, &bad.encode()).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }

    #[test]
    fn undefined_specs_are_refused() {
        let bad = Spec {
            function: Function::Sum,
            input: Input::Other,
            window_ns: 10,
        };
        assert!(bad.check().is_err());
        let zero = Spec {
            function: Function::Count,
            input: Input::Other,
            window_ns: 0,
        };
        assert!(zero.check().is_err());
        let text_sum = Spec {
            function: Function::Sum,
            input: Input::Text,
            window_ns: 10,
        };
        assert!(text_sum.check().is_err());
    }
}
