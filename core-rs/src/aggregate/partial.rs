//! Each function's partial state: what a tile (or a whole window) keeps of its events.
//!
//! A partial starts empty (`Default`), takes events one at a time (`add`), merges with another
//! partial (`merge`, associative; the result does not depend on which events went into which
//! partial, except for float rounding), and yields the window's value (`finish`, `None` for an
//! empty window where the function has no value). An empty partial is the identity of `merge`.
use std::cmp::Ordering;

use super::distinct::Distinct;

/// Where an event stands in the order `last` and ties use: its event time, then `seq` (the
/// source row offline, the arrival order online).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct At {
    pub ts: i64,
    pub seq: u64,
}

pub trait Partial: Default + Clone + Send {
    /// One event's value.
    type In: Copy + Send + Sync;
    /// The window's value.
    type Out: Copy + Send;
    fn add(&mut self, value: Self::In, at: At);
    fn merge(&mut self, other: &Self);
    fn finish(&self) -> Option<Self::Out>;
}

/// `count`: the non-null values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Count {
    pub n: u64,
}

impl Partial for Count {
    type In = ();
    type Out = i64;
    fn add(&mut self, (): (), _: At) {
        self.n += 1;
    }
    fn merge(&mut self, other: &Self) {
        self.n += other.n;
    }
    fn finish(&self) -> Option<i64> {
        Some(self.n as i64)
    }
}

/// `sum` of integers, exact: the caller turns a sum outside int64 into an error.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SumInt {
    pub n: u64,
    pub sum: i128,
}

impl Partial for SumInt {
    type In = i64;
    type Out = i128;
    fn add(&mut self, value: i64, _: At) {
        self.n += 1;
        self.sum += i128::from(value);
    }
    fn merge(&mut self, other: &Self) {
        self.n += other.n;
        self.sum += other.sum;
    }
    fn finish(&self) -> Option<i128> {
        (self.n > 0).then_some(self.sum)
    }
}

/// `sum` of floats.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SumFloat {
    pub n: u64,
    pub sum: f64,
}

impl Partial for SumFloat {
    type In = f64;
    type Out = f64;
    fn add(&mut self, value: f64, _: At) {
        self.n += 1;
        self.sum += value;
    }
    fn merge(&mut self, other: &Self) {
        if other.n > 0 {
            self.n += other.n;
            self.sum += other.sum;
        }
    }
    fn finish(&self) -> Option<f64> {
        (self.n > 0).then_some(self.sum)
    }
}

/// `mean` of integers: the exact sum over the count.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MeanInt(pub SumInt);

impl Partial for MeanInt {
    type In = i64;
    type Out = f64;
    fn add(&mut self, value: i64, at: At) {
        self.0.add(value, at);
    }
    fn merge(&mut self, other: &Self) {
        self.0.merge(&other.0);
    }
    fn finish(&self) -> Option<f64> {
        (self.0.n > 0).then(|| self.0.sum as f64 / self.0.n as f64)
    }
}

/// `mean` of floats: the sum over the count.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MeanFloat(pub SumFloat);

impl Partial for MeanFloat {
    type In = f64;
    type Out = f64;
    fn add(&mut self, value: f64, at: At) {
        self.0.add(value, at);
    }
    fn merge(&mut self, other: &Self) {
        self.0.merge(&other.0);
    }
    fn finish(&self) -> Option<f64> {
        (self.0.n > 0).then(|| self.0.sum / self.0.n as f64)
    }
}

/// `var` (`STD = false`) or `stddev` (`STD = true`), sample (divisor n - 1): the count, mean
/// and sum of squared deviations, added by Welford's update and merged by Chan et al.'s
/// formula, which stay accurate where the sum-of-squares form cancels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments<const STD: bool> {
    pub n: u64,
    pub mean: f64,
    pub m2: f64,
}

impl<const STD: bool> Partial for Moments<STD> {
    type In = f64;
    type Out = f64;
    fn add(&mut self, value: f64, _: At) {
        self.n += 1;
        let delta = value - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (value - self.mean);
    }
    fn merge(&mut self, other: &Self) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let (a, b) = (self.n as f64, other.n as f64);
        let n = a + b;
        let delta = other.mean - self.mean;
        self.mean += delta * b / n;
        self.m2 += other.m2 + delta * delta * a * b / n;
        self.n += other.n;
    }
    fn finish(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let variance = (self.m2 / (self.n - 1) as f64).max(0.0);
        Some(if STD { variance.sqrt() } else { variance })
    }
}

/// A value `min`/`max` can order: floats by IEEE total order (NaN above every number, as
/// `DuckDB` and Spark order it; -0.0 below 0.0).
pub trait Ordered: Copy + Send + Sync {
    fn order(&self, other: &Self) -> Ordering;
}

impl Ordered for i64 {
    fn order(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
}

impl Ordered for f64 {
    fn order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

/// `min` (`MAX = false`) or `max` (`MAX = true`); among equal values the earliest event, so
/// the result does not depend on how events were split into partials.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Extreme<T, const MAX: bool> {
    pub best: Option<(T, At)>,
}

impl<T: Ordered, const MAX: bool> Extreme<T, MAX> {
    fn better(candidate: &(T, At), current: &(T, At)) -> bool {
        let by_value = candidate.0.order(&current.0);
        let by_value = if MAX { by_value } else { by_value.reverse() };
        by_value == Ordering::Greater || (by_value == Ordering::Equal && candidate.1 < current.1)
    }
}

impl<T: Ordered + Default, const MAX: bool> Partial for Extreme<T, MAX> {
    type In = T;
    type Out = (T, At);
    fn add(&mut self, value: T, at: At) {
        let candidate = (value, at);
        if self.best.is_none_or(|best| Self::better(&candidate, &best)) {
            self.best = Some(candidate);
        }
    }
    fn merge(&mut self, other: &Self) {
        if let Some(candidate) = other.best {
            if self.best.is_none_or(|best| Self::better(&candidate, &best)) {
                self.best = Some(candidate);
            }
        }
    }
    fn finish(&self) -> Option<(T, At)> {
        self.best
    }
}

/// `last`: the value of the greatest [`At`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Last<T> {
    pub best: Option<(T, At)>,
}

impl<T: Copy + Send + Sync + Default> Partial for Last<T> {
    type In = T;
    type Out = (T, At);
    fn add(&mut self, value: T, at: At) {
        if self.best.is_none_or(|(_, best)| at >= best) {
            self.best = Some((value, at));
        }
    }
    fn merge(&mut self, other: &Self) {
        if let Some((value, at)) = other.best {
            self.add(value, at);
        }
    }
    fn finish(&self) -> Option<(T, At)> {
        self.best
    }
}

impl Partial for Distinct {
    type In = u64;
    type Out = i64;
    fn add(&mut self, hash: u64, _: At) {
        self.insert(hash);
    }
    fn merge(&mut self, other: &Self) {
        self.union(other);
    }
    fn finish(&self) -> Option<i64> {
        Some(self.estimate() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ts: i64, seq: u64) -> At {
        At { ts, seq }
    }

    /// Folds `values` one by one, and again split into two partials merged, and checks both.
    fn both_ways<P: Partial>(values: &[P::In]) -> (Option<P::Out>, Option<P::Out>) {
        let mut whole = P::default();
        for (i, &v) in values.iter().enumerate() {
            whole.add(v, at(i as i64, i as u64));
        }
        let (mut a, mut b) = (P::default(), P::default());
        let half = values.len() / 2;
        for (i, &v) in values.iter().enumerate() {
            let p = if i < half { &mut a } else { &mut b };
            p.add(v, at(i as i64, i as u64));
        }
        a.merge(&b);
        (whole.finish(), a.finish())
    }

    #[test]
    fn count_and_sums() {
        assert_eq!(both_ways::<Count>(&[(), (), ()]), (Some(3), Some(3)));
        assert_eq!(both_ways::<Count>(&[]), (Some(0), Some(0)));
        assert_eq!(
            both_ways::<SumInt>(&[i64::MAX, i64::MAX]).0,
            Some(2 * i128::from(i64::MAX))
        );
        assert_eq!(both_ways::<SumInt>(&[]), (None, None));
        assert_eq!(
            both_ways::<SumFloat>(&[0.5, 0.25]),
            (Some(0.75), Some(0.75))
        );
        assert_eq!(both_ways::<MeanInt>(&[1, 2]), (Some(1.5), Some(1.5)));
        assert_eq!(both_ways::<MeanFloat>(&[]), (None, None));
    }

    #[test]
    fn variance_is_the_sample_variance_and_merges() {
        let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let (whole, merged) = both_ways::<Moments<false>>(&values);
        assert!((whole.unwrap() - 32.0 / 7.0).abs() < 1e-12);
        assert!((merged.unwrap() - 32.0 / 7.0).abs() < 1e-12);
        let (std, _) = both_ways::<Moments<true>>(&values);
        assert!((std.unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(both_ways::<Moments<false>>(&[3.0]), (None, None));
        // Large offsets: the sum-of-squares form would lose every digit here.
        let shifted: Vec<f64> = values.iter().map(|v| v + 1e9).collect();
        let (whole, _) = both_ways::<Moments<false>>(&shifted);
        assert!((whole.unwrap() - 32.0 / 7.0).abs() < 1e-6);
    }

    #[test]
    fn extremes_keep_the_earliest_of_equal_values() {
        let (min, merged) = both_ways::<Extreme<i64, false>>(&[3, 1, 2, 1]);
        assert_eq!(min, Some((1, at(1, 1))));
        assert_eq!(merged, min);
        let (max, merged) = both_ways::<Extreme<f64, true>>(&[1.0, f64::NAN, 2.0]);
        assert!(max.unwrap().0.is_nan());
        assert_eq!(merged.unwrap().1, at(1, 1));
        assert_eq!(both_ways::<Extreme<i64, true>>(&[]), (None, None));
    }

    #[test]
    fn last_takes_the_greatest_event_time_then_sequence() {
        let mut last = Last::<i64>::default();
        last.add(1, at(5, 0));
        last.add(2, at(3, 1)); // late arrival, older event: not last
        last.add(3, at(5, 2)); // same time, later sequence: last
        assert_eq!(last.finish(), Some((3, at(5, 2))));
        let mut other = Last::<i64>::default();
        other.add(9, at(4, 9));
        other.merge(&last);
        assert_eq!(other.finish(), Some((3, at(5, 2))));
    }
}
