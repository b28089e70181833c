//! A bounded list of findings per anomaly kind, as Jepsen's checkers keep `:count`,
//! `:first`, `:worst` and `:last`: it counts every item pushed but keeps only the
//! first few, the last few, a few spread evenly over the middle, and the worst one.

use crate::verdict::{AnomalyKind, Finding, KEEP_FIRST, KEEP_LAST, KEEP_SAMPLES};
use std::collections::{BTreeMap, VecDeque};

/// Items pushed in order (`seq` 0, 1, 2, …); at most
/// `KEEP_FIRST + KEEP_SAMPLES + KEEP_LAST + 1` are kept.
#[derive(Debug, Clone)]
pub(crate) struct Capped<T> {
    count: u64,
    first: Vec<(u64, T)>,
    last: VecDeque<(u64, T)>,
    /// Items with `seq % stride == 0` among those that left `last`.
    samples: Vec<(u64, T)>,
    stride: u64,
    /// Badness, seq and a copy of the worst item so far (the first of equals).
    worst: Option<(u128, u64, T)>,
}

impl<T> Default for Capped<T> {
    fn default() -> Self {
        Capped {
            count: 0,
            first: Vec::new(),
            last: VecDeque::new(),
            samples: Vec::new(),
            stride: 1,
            worst: None,
        }
    }
}

impl<T: Clone> Capped<T> {
    /// Counts `item` and keeps it if it is among the first, the last (so far), a
    /// sample, or the worst (by `badness`, when it has one).
    pub(crate) fn push(&mut self, item: T, badness: Option<u128>) {
        let seq = self.count;
        self.count += 1;
        if let Some(b) = badness {
            if self.worst.as_ref().is_none_or(|w| b > w.0) {
                self.worst = Some((b, seq, item.clone()));
            }
        }
        if self.first.len() < KEEP_FIRST {
            self.first.push((seq, item));
            return;
        }
        self.last.push_back((seq, item));
        if self.last.len() > KEEP_LAST {
            let Some((s, it)) = self.last.pop_front() else {
                return;
            };
            if s % self.stride == 0 {
                self.samples.push((s, it));
                if self.samples.len() > KEEP_SAMPLES {
                    self.stride *= 2;
                    let stride = self.stride;
                    self.samples.retain(|(s, _)| s % stride == 0);
                }
            }
        }
    }
}

impl<T> Capped<T> {
    /// How many items were pushed.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The kept items in the order they were pushed, each once.
    pub(crate) fn into_kept(self) -> Vec<T> {
        let mut all: Vec<(u64, T)> = self.first;
        all.extend(self.samples);
        all.extend(self.last);
        if let Some((_, seq, it)) = self.worst {
            if !all.iter().any(|(s, _)| *s == seq) {
                all.push((seq, it));
            }
        }
        all.sort_by_key(|(s, _)| *s);
        all.into_iter().map(|(_, it)| it).collect()
    }

    /// The kept items, by reference, in no particular order (the worst may be
    /// repeated).
    pub(crate) fn kept(&self) -> impl Iterator<Item = &T> {
        self.first
            .iter()
            .chain(&self.samples)
            .chain(&self.last)
            .map(|(_, it)| it)
            .chain(self.worst.as_ref().map(|(_, _, it)| it))
    }

    /// The same list with every kept item mapped by `f`; counts unchanged.
    pub(crate) fn map<U>(self, mut f: impl FnMut(T) -> U) -> Capped<U> {
        let mut g = |v: Vec<(u64, T)>| -> Vec<(u64, U)> {
            v.into_iter().map(|(s, it)| (s, f(it))).collect()
        };
        let first = g(self.first);
        let samples = g(self.samples);
        let last = g(self.last.into_iter().collect()).into();
        let worst = self.worst.map(|(b, s, it)| (b, s, f(it)));
        Capped {
            count: self.count,
            first,
            last,
            samples,
            stride: self.stride,
            worst,
        }
    }
}

/// Findings by kind, each kind capped.
pub(crate) type FindingMap = BTreeMap<AnomalyKind, Capped<Finding>>;

/// The lists and full counts a [`crate::verdict::CheckerResult`] holds, each list
/// sorted by its findings' first op.
pub(crate) fn into_result_maps(
    map: FindingMap,
) -> (BTreeMap<String, Vec<Finding>>, BTreeMap<String, usize>) {
    let mut anomalies = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for (kind, capped) in map {
        if capped.count() == 0 {
            continue;
        }
        counts.insert(
            kind.as_str().to_owned(),
            usize::try_from(capped.count()).unwrap_or(usize::MAX),
        );
        let mut list = capped.into_kept();
        list.sort_by_key(|f| f.ops.first().copied().unwrap_or(0));
        anomalies.insert(kind.as_str().to_owned(), list);
    }
    (anomalies, counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::KEEP_MAX;

    #[test]
    fn keeps_first_last_samples_and_worst() {
        let mut c = Capped::default();
        for i in 0..1_000_000u64 {
            // The worst is in the middle: 500_123.
            let badness = if i == 500_123 { 10 } else { 1 };
            c.push(i, Some(badness));
        }
        assert_eq!(c.count(), 1_000_000);
        let kept = c.into_kept();
        assert!(kept.len() <= KEEP_MAX, "{}", kept.len());
        assert_eq!(
            &kept[..KEEP_FIRST],
            &(0..KEEP_FIRST as u64).collect::<Vec<_>>()[..]
        );
        assert_eq!(
            &kept[kept.len() - KEEP_LAST..],
            &(1_000_000 - KEEP_LAST as u64..1_000_000).collect::<Vec<_>>()[..]
        );
        assert!(kept.contains(&500_123));
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "in order, once each");
        // Samples spread over the middle: some in each half.
        let middle: Vec<u64> = kept
            .iter()
            .copied()
            .filter(|&x| x >= KEEP_FIRST as u64 && x < 1_000_000 - KEEP_LAST as u64 && x != 500_123)
            .collect();
        assert!(middle.len() >= KEEP_SAMPLES / 2, "{middle:?}");
        assert!(middle.iter().any(|&x| x < 500_000) && middle.iter().any(|&x| x > 500_000));
    }

    #[test]
    fn small_lists_are_kept_whole() {
        for n in 0..40u64 {
            let mut c = Capped::default();
            for i in 0..n {
                c.push(i, None);
            }
            let kept = c.into_kept();
            if n as usize <= KEEP_FIRST + KEEP_LAST + 1 {
                assert_eq!(kept, (0..n).collect::<Vec<_>>());
            }
            assert!(kept.len() <= KEEP_MAX);
        }
    }

    #[test]
    fn map_keeps_counts_and_order() {
        let mut c = Capped::default();
        for i in 0..100u64 {
            c.push(i, Some(u128::from(i % 7)));
        }
        let before = c.clone().into_kept();
        let m = c.map(|x| x * 2);
        assert_eq!(m.count(), 100);
        assert_eq!(
            m.into_kept(),
            before.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
    }
}
