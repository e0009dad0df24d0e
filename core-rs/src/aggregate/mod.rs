//! Windowed aggregation: the one definition shared by the offline and online paths
//! (docs/aggregations.md).
//!
//! - [`Function`]: the aggregate functions and their Feast names and aliases;
//! - [`tile_of`] and [`window_start`]: which tile an event falls in and which events a read at
//!   time `t` covers;
//! - `partial`: each function's partial state (add an event, merge two partials, finish);
//! - `distinct`: the count-distinct sketch;
//! - `as_of`: the offline kernel, every entity row's aggregate as of its timestamp from raw
//!   events;
//! - `tiles`: the online side, an entity's stored tiles updated with events and read at a time.
//!
//! Plain Rust, no pyo3: `py_aggregate.rs` binds it.

pub mod as_of;
pub mod distinct;
pub mod partial;
pub mod tiles;

/// Nanoseconds in one second: the tile of views without tiling.
pub const SECOND_NS: i64 = 1_000_000_000;

/// An aggregate function, parsed from its Feast name or alias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Sum,
    Count,
    Mean,
    Min,
    Max,
    Last,
    Var,
    Std,
    CountDistinct,
}

impl Function {
    /// Every accepted name, canonical names first, as `apply` lists them in errors.
    pub const NAMES: [&'static str; 12] = [
        "sum",
        "count",
        "mean",
        "min",
        "max",
        "last",
        "var",
        "stddev",
        "count_distinct",
        "avg",
        "variance",
        "std",
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "sum" => Self::Sum,
            "count" => Self::Count,
            "mean" | "avg" => Self::Mean,
            "min" => Self::Min,
            "max" => Self::Max,
            "last" => Self::Last,
            "var" | "variance" => Self::Var,
            "std" | "stddev" => Self::Std,
            "count_distinct" => Self::CountDistinct,
            _ => return None,
        })
    }
}

/// The tile of an event at `ts`: tile `k` holds `(k - 1) * tile_ns < ts <= k * tile_ns`
/// (closed on the right, like the windows).
#[inline]
pub fn tile_of(ts: i64, tile_ns: i64) -> i64 {
    ts.div_euclid(tile_ns) + i64::from(ts.rem_euclid(tile_ns) != 0)
}

/// The exclusive lower bound `s(t)` of the window `window_ns` read at `t`: the tile boundary
/// at or before `t - window_ns`. A read covers `s(t) < event_ts <= t`: exactly
/// `(t - window, t]` when `t - window` is on a boundary, else up to one tile more at the old
/// end (the sawtooth).
#[inline]
pub fn window_start(t: i64, window_ns: i64, tile_ns: i64) -> i64 {
    let from = i128::from(t) - i128::from(window_ns);
    let tile = i128::from(tile_ns);
    let start = from.div_euclid(tile) * tile;
    i64::try_from(start).unwrap_or(i64::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_closed_on_the_right() {
        assert_eq!(tile_of(0, 10), 0);
        assert_eq!(tile_of(1, 10), 1);
        assert_eq!(tile_of(10, 10), 1);
        assert_eq!(tile_of(11, 10), 2);
        assert_eq!(tile_of(-1, 10), 0);
        assert_eq!(tile_of(-10, 10), -1);
        assert_eq!(tile_of(-11, 10), -1);
    }

    #[test]
    fn window_start_is_the_boundary_at_or_before_t_minus_window() {
        // On a boundary: exactly (t - w, t].
        assert_eq!(window_start(100, 30, 10), 70);
        // Inside a tile: reaches back to the boundary before (the sawtooth).
        assert_eq!(window_start(105, 30, 10), 70);
        assert_eq!(window_start(109, 30, 10), 70);
        assert_eq!(window_start(5, 30, 10), -30);
        // Never overflows.
        assert_eq!(window_start(i64::MIN, 30, 10), i64::MIN);
    }

    #[test]
    fn names_and_aliases_parse() {
        for name in Function::NAMES {
            assert!(Function::parse(name).is_some(), "{name}");
        }
        assert_eq!(Function::parse("avg"), Some(Function::Mean));
        assert_eq!(Function::parse("std"), Some(Function::Std));
        assert_eq!(Function::parse("median"), None);
    }
}
