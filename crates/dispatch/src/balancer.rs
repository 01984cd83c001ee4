//! Smooth weighted round-robin (nginx's algorithm) over a pool's entries, skipping entries
//! whose credential is cooling down or was already tried by this request. No I/O: the state
//! backends hold a [`Rotation`] per pool and call [`Rotation::pick`].
//!
//! With nothing skipped, every window of Σweights consecutive picks serves each entry exactly
//! `weight` times, interleaved (2:1 gives A B A A B A …). A skipped entry simply does not take
//! part in a pick, so the others keep their relative shares.

/// The rotation cursor of one pool: each entry's current weight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotation {
    current: Vec<i64>,
}

impl Rotation {
    /// A fresh rotation for `n` entries.
    pub fn new(n: usize) -> Self {
        Self {
            current: vec![0; n],
        }
    }

    /// The raw cursor (for backends that persist it).
    pub fn weights(&self) -> &[i64] {
        &self.current
    }

    /// A rotation restored from a persisted cursor; reset when its length does not match.
    pub fn from_weights(current: Vec<i64>, n: usize) -> Self {
        if current.len() == n {
            Self { current }
        } else {
            Self::new(n)
        }
    }

    /// Picks the next entry among those `available` says may serve; `None` when none may.
    /// `weights[i]` is entry i's weight (≥ 1).
    pub fn pick(&mut self, weights: &[u32], available: impl Fn(usize) -> bool) -> Option<usize> {
        self.pick_with(weights.len(), |i| weights[i], available)
    }

    /// [`Rotation::pick`] over `n` entries whose weights come from `weight` (no allocation).
    pub fn pick_with(
        &mut self,
        n: usize,
        weight: impl Fn(usize) -> u32,
        available: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        if self.current.len() != n {
            self.current = vec![0; n];
        }
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for (i, current) in self.current.iter_mut().enumerate() {
            if !available(i) {
                continue;
            }
            let w = i64::from(weight(i).max(1));
            *current += w;
            total += w;
            match best {
                Some((_, top)) if top >= *current => {}
                _ => best = Some((i, *current)),
            }
        }
        let (b, _) = best?;
        self.current[b] -= total;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(weights: &[u32], n: usize, available: impl Fn(usize, usize) -> bool) -> Vec<usize> {
        let mut r = Rotation::new(weights.len());
        (0..n)
            .filter_map(|step| r.pick(weights, |i| available(step, i)))
            .collect()
    }

    #[test]
    fn equal_weights_alternate() {
        assert_eq!(run(&[1, 1], 6, |_, _| true), [0, 1, 0, 1, 0, 1]);
        assert_eq!(run(&[2, 2], 8, |_, _| true), [0, 1, 0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn two_to_one_interleaves() {
        let picks = run(&[2, 1], 6, |_, _| true);
        assert_eq!(picks, [0, 1, 0, 0, 1, 0]);
    }

    proptest! {
        #[test]
        fn every_window_serves_each_entry_exactly_its_weight(weights in prop::collection::vec(1u32..8, 1..8), windows in 1usize..4, offset in 0usize..20) {
            let sum: usize = weights.iter().map(|w| *w as usize).sum();
            let picks = run(&weights, offset + sum * windows, |_, _| true);
            for window in picks[offset..].chunks(sum) {
                for (i, w) in weights.iter().enumerate() {
                    prop_assert_eq!(window.iter().filter(|p| **p == i).count(), *w as usize);
                }
            }
        }

        #[test]
        fn picks_interleave_rather_than_clump(weights in prop::collection::vec(1u32..6, 2..6)) {
            // No entry runs more than ceil(w / (S - w)) + 1 picks in a row while others wait
            // (a clumping A A B B order would break this for equal weights).

            let sum: u32 = weights.iter().sum();
            let picks = run(&weights, sum as usize * 3, |_, _| true);
            for (i, &w) in weights.iter().enumerate() {
                let others = sum - w;
                let max_run = w.div_ceil(others) as usize + 1;

                let mut run_len = 0;
                for p in &picks {
                    if *p == i { run_len += 1; prop_assert!(run_len <= max_run, "entry {} ran {} times", i, run_len); } else { run_len = 0; }
                }
            }
        }

        #[test]
        fn skipped_entries_are_never_picked_and_others_keep_their_shares(weights in prop::collection::vec(1u32..6, 2..8), cooled in prop::collection::vec(any::<bool>(), 8)) {
            let cooled = |i: usize| cooled[i];
            let live: Vec<usize> = (0..weights.len()).filter(|i| !cooled(*i)).collect();
            let picks = run(&weights, 50, |_, i| !cooled(i));
            if live.is_empty() {
                prop_assert!(picks.is_empty());
            } else {
                prop_assert!(picks.iter().all(|p| !cooled(*p)));
                // After warm-up, a window of the live weights' sum serves each live entry its weight.
                let sum: usize = live.iter().map(|i| weights[*i] as usize).sum();
                let mut r = Rotation::new(weights.len());
                let seq: Vec<usize> = (0..sum * 2).filter_map(|_| r.pick(&weights, |i| !cooled(i))).collect();
                for window in seq.chunks(sum) {
                    for i in &live {
                        prop_assert_eq!(window.iter().filter(|p| **p == *i).count(), weights[*i] as usize);
                    }
                }
            }
        }
    }
}
