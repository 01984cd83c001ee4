//! A pool's rotation run ahead. While the set of entries that can serve stays the same, the
//! smooth weighted round-robin is periodic (Σweights picks bring its cursor back), so the
//! picks of one period are computed once and replayed: a pick is then an index into a list
//! instead of a pass over every entry. What the replay did is folded back into the
//! [`Rotation`] ([`Schedule::settle`]) before anything else touches it, so the order served
//! is exactly the one the full pick would serve.

use crate::balancer::Rotation;

/// Longest run computed at once (a pool whose weights sum to more replays it in parts).
pub const MAX_RUN: usize = 4096;

/// The picks of the rotation from a known cursor, for a fixed set of serving entries.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The cursor before the first pick of `order`.
    start: Rotation,
    /// Each entry's weight when it serves, 0 when it does not.
    weights: Vec<i64>,
    total: i64,
    order: Vec<u16>,
    /// Picks of `order` served so far.
    at: usize,
    /// The cursor is back at `start` after the whole of `order`.
    cyclic: bool,
    /// Until when (ms since the epoch) the set of serving entries holds by itself.
    pub valid_until_ms: u64,
    /// The pool composition it was made for.
    pub signature: u64,
    /// The credential records' epoch it was made under (a change there may change the set).
    pub epoch: u64,
}

impl Schedule {
    /// The run from `rotation` over the entries whose `weights` are non-zero; `None` when
    /// none serves or the pool is too large to index.
    pub fn new(rotation: &Rotation, weights: Vec<i64>) -> Option<Self> {
        let n = weights.len();
        if n > usize::from(u16::MAX) || rotation.weights().len() != n {
            return None;
        }
        let total: i64 = weights.iter().sum();
        let period = usize::try_from(total).ok().filter(|&p| p > 0)?;
        let mut schedule = Self {
            start: rotation.clone(),
            weights,
            total,
            order: Vec::with_capacity(period.min(MAX_RUN)),
            at: 0,
            cyclic: false,
            valid_until_ms: u64::MAX,
            signature: 0,
            epoch: 0,
        };
        schedule.run(period);
        Some(schedule)
    }

    /// Computes the picks of up to `period` steps from `start`.
    fn run(&mut self, period: usize) {
        let len = period.min(MAX_RUN);
        let mut cursor = self.start.clone();
        let weights = &self.weights;
        self.order.clear();
        for _ in 0..len {
            let picked = cursor.pick_with(
                weights.len(),
                |i| u32::try_from(weights[i]).unwrap_or(u32::MAX),
                |i| weights[i] > 0,
            );
            match picked.and_then(|i| u16::try_from(i).ok()) {
                Some(i) => self.order.push(i),
                None => break,
            }
        }
        self.cyclic = len == period && cursor == self.start;
        self.at = 0;
    }

    /// The next entry to serve (a non-cyclic run is settled and run again when used up).
    pub fn serve(&mut self) -> usize {
        if self.at == self.order.len() {
            if self.cyclic {
                self.at = 0;
            } else {
                self.start = self.settled();
                let period = usize::try_from(self.total).unwrap_or(MAX_RUN);
                self.run(period);
            }
        }
        let i = self.order.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        usize::from(i)
    }

    /// The rotation's cursor after the picks served: each serving entry gained its weight per
    /// pick and gave back the total once per pick it won.
    fn settled(&self) -> Rotation {
        let mut won = vec![0i64; self.weights.len()];
        for &i in &self.order[..self.at] {
            won[usize::from(i)] += 1;
        }
        let steps = i64::try_from(self.at).unwrap_or(i64::MAX);
        let current = self
            .start
            .weights()
            .iter()
            .zip(&self.weights)
            .zip(&won)
            .map(|((c, w), k)| c + steps * w - self.total * k)
            .collect();
        Rotation::from_weights(current, self.weights.len())
    }

    /// Folds the picks served into `rotation` (the schedule is dropped after).
    pub fn settle(self, rotation: &mut Rotation) {
        *rotation = self.settled();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_replayed_run_serves_and_settles_exactly_like_the_rotation(
            weights in prop::collection::vec(0i64..6, 1..12),
            warm in 0usize..30,
            picks in 0usize..200,
        ) {
            let n = weights.len();
            let w = |i: usize| u32::try_from(weights[i].max(1)).unwrap_or(1);
            // A cursor left by some earlier picks with everything serving.
            let mut rotation = Rotation::new(n);
            for _ in 0..warm {
                rotation.pick_with(n, w, |_| true);
            }
            let Some(mut schedule) = Schedule::new(&rotation, weights.clone()) else {
                prop_assert!(weights.iter().all(|w| *w == 0));
                return Ok(());
            };
            let mut full = rotation.clone();
            for _ in 0..picks {
                let expected = full.pick_with(n, w, |i| weights[i] > 0);
                prop_assert_eq!(Some(schedule.serve()), expected);
            }
            schedule.settle(&mut rotation);
            prop_assert_eq!(rotation, full);
        }
    }

    #[test]
    fn a_long_period_is_replayed_in_parts() {
        let weights = vec![3000, 2000, 1];
        let rotation = Rotation::new(3);
        let mut schedule = Schedule::new(&rotation, weights.clone()).expect("serving entries");
        let mut full = rotation.clone();
        for _ in 0..10_000 {
            let expected = full.pick_with(3, |i| weights[i] as u32, |_| true);
            assert_eq!(Some(schedule.serve()), expected);
        }
        let mut settled = rotation;
        schedule.settle(&mut settled);
        assert_eq!(settled, full);
    }
}
