//! Bounded summaries of values over time: a fixed number of time buckets whose width
//! doubles as the run grows (so one pass needs no idea of the run's length), and a
//! log-scale histogram for latencies.

/// How many time buckets a series keeps; the width doubles when time runs past them.
pub(crate) const BUCKETS: usize = 240;

/// Something a bucket holds: merged pairwise when the buckets coarsen.
pub(crate) trait Merge: Default {
    /// Adds `other` into `self`.
    fn merge(&mut self, other: Self);
}

/// `BUCKETS` buckets of `width` nanoseconds each, from time 0.
#[derive(Debug)]
pub(crate) struct Buckets<T> {
    width: u64,
    cells: Vec<T>,
}

impl<T: Merge> Buckets<T> {
    /// Empty buckets of one nanosecond (or op) each; they widen as time goes on.
    pub(crate) fn new() -> Self {
        Buckets {
            width: 1,
            cells: (0..BUCKETS).map(|_| T::default()).collect(),
        }
    }

    /// The bucket that holds time `t`, coarsening first if `t` is past the last one.
    pub(crate) fn at(&mut self, t: u64) -> &mut T {
        while t / self.width >= BUCKETS as u64 {
            self.coarsen();
        }
        let i = (t / self.width) as usize;
        &mut self.cells[i]
    }

    fn coarsen(&mut self) {
        let old = std::mem::take(&mut self.cells);
        let mut merged: Vec<T> = Vec::with_capacity(BUCKETS);
        let mut it = old.into_iter();
        while let Some(mut a) = it.next() {
            if let Some(b) = it.next() {
                a.merge(b);
            }
            merged.push(a);
        }
        merged.resize_with(BUCKETS, T::default);
        self.cells = merged;
        self.width = self.width.saturating_mul(2);
    }

    /// Width of a bucket in nanoseconds.
    pub(crate) fn width(&self) -> u64 {
        self.width
    }

    /// The buckets, first to last.
    pub(crate) fn cells(&self) -> &[T] {
        &self.cells
    }
}

/// Bins per doubling of the histogram.
const PER_OCTAVE: f64 = 4.0;
/// Bins: from 1 µs to about 2^32 µs (over an hour).
pub(crate) const BINS: usize = 128;

/// A histogram of durations in nanoseconds on a log scale: four bins per doubling from
/// one microsecond, so any quantile is off by less than 19%.
#[derive(Debug, Clone)]
pub(crate) struct Hist {
    bins: Vec<u32>,
    count: u64,
    max: u64,
    sum: u128,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            bins: vec![0; BINS],
            count: 0,
            max: 0,
            sum: 0,
        }
    }
}

impl Hist {
    /// The bin of a duration.
    pub(crate) fn bin(ns: u64) -> usize {
        let us = ns as f64 / 1_000.0;
        if us <= 1.0 {
            return 0;
        }
        ((us.log2() * PER_OCTAVE).floor() as usize + 1).min(BINS - 1)
    }

    /// The upper edge of bin `i`, in nanoseconds.
    pub(crate) fn upper(i: usize) -> u64 {
        (1_000.0 * 2f64.powf(i as f64 / PER_OCTAVE)) as u64
    }

    /// Counts one duration.
    pub(crate) fn add(&mut self, ns: u64) {
        let b = Self::bin(ns);
        self.bins[b] = self.bins[b].saturating_add(1);
        self.count += 1;
        self.max = self.max.max(ns);
        self.sum += u128::from(ns);
    }

    /// How many durations were counted.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The largest duration counted.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The mean, if anything was counted.
    pub(crate) fn mean(&self) -> Option<u64> {
        (self.count > 0).then(|| (self.sum / u128::from(self.count)) as u64)
    }

    /// The `q` quantile (0..=1), as the upper edge of its bin (never above the max).
    pub(crate) fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, n) in self.bins.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= rank {
                return Some(Self::upper(i).min(self.max));
            }
        }
        Some(self.max)
    }

    /// The non-empty bins as `(upper edge in ns, count)`.
    pub(crate) fn nonempty(&self) -> Vec<(usize, u64, u32)> {
        self.bins
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (i, Self::upper(i), *n))
            .collect()
    }
}

impl Merge for Hist {
    fn merge(&mut self, other: Self) {
        for (a, b) in self.bins.iter_mut().zip(other.bins) {
            *a = a.saturating_add(b);
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug)]
    struct N(u64);
    impl Merge for N {
        fn merge(&mut self, other: Self) {
            self.0 += other.0;
        }
    }

    #[test]
    fn buckets_coarsen_and_keep_totals() {
        let mut b: Buckets<N> = Buckets::new();
        for t in 0..1_000_000u64 {
            b.at(t * 997).0 += 1;
        }
        assert_eq!(b.cells().len(), BUCKETS);
        assert_eq!(b.cells().iter().map(|n| n.0).sum::<u64>(), 1_000_000);
        assert!(b.width() * BUCKETS as u64 > 999_999 * 997);
    }

    #[test]
    fn quantiles_are_close() {
        let mut h = Hist::default();
        for ms in 1..=100u64 {
            h.add(ms * 1_000_000);
        }
        let p50 = h.quantile(0.5).unwrap_or(0) as f64;
        assert!((p50 / 50e6 - 1.0).abs() < 0.2, "p50 {p50}");
        assert_eq!(h.quantile(1.0), Some(100_000_000));
        assert_eq!(h.count(), 100);
    }
}
