//! Picks that wait for the same pool go to Redis together. While one pick of a pool is in
//! flight, plain picks of that pool (a first attempt, no affinity, no client to admit, no
//! limits) queue behind it; when it returns, the first in the queue leads the next call for
//! all of them, and the script makes their picks one after the other, exactly as separate
//! calls would. A lone pick goes at once, so batching only happens when picks already wait:
//! under load it divides Redis's work per pick (one script call, one network turn for many).

use crate::pick::Choice;
use crate::state::PoolKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Most picks in one call (the rest wait for the next).
pub const MAX_BATCH: usize = 32;

/// What a queued pick is told.
pub enum Turn {
    /// Picked for it (`None`: Redis did not answer; it falls back).
    Done(Option<Choice>),
    /// It leads the next call, for itself and the baton's followers.
    Lead(Baton),
}

/// A pool's composition: picks batch only with picks of the same one.
type Lane = (PoolKey, u64);

/// The pools with a pick in flight, each with the picks queued behind it.
#[derive(Default)]
pub struct Lanes {
    lanes: Mutex<HashMap<Lane, Vec<oneshot::Sender<Turn>>>>,
}

/// How a pick joins its pool's lane.
pub enum Joined {
    /// Nothing was in flight: it leads, alone.
    Lead(Baton),
    /// It waits for its turn.
    Wait(oneshot::Receiver<Turn>),
}

/// Leads when the lane is free, queues otherwise (a poisoned lock: leads, unbatched).
pub fn join(lanes: &Arc<Lanes>, lane: Lane) -> Joined {
    let lead = || Joined::Lead(Baton::new(Arc::clone(lanes), lane, Vec::new()));
    let Ok(mut map) = lanes.lanes.lock() else {
        return Joined::Lead(Baton {
            lanes: None,
            lane,
            followers: Vec::new(),
        });
    };
    match map.get_mut(&lane) {
        Some(queue) => {
            let (tx, rx) = oneshot::channel();
            queue.push(tx);
            Joined::Wait(rx)
        }
        None => {
            map.insert(lane, Vec::new());
            drop(map);
            lead()
        }
    }
}

impl Lanes {
    /// The lane's call returned: the first queued pick that still waits leads the next one
    /// with the others queued (up to [`MAX_BATCH`]); with nobody waiting the lane is free.
    fn hand_over(self: &Arc<Self>, lane: Lane) {
        let Ok(mut lanes) = self.lanes.lock() else {
            return;
        };
        loop {
            let Some(queue) = lanes.get_mut(&lane) else {
                return;
            };
            if queue.is_empty() {
                lanes.remove(&lane);
                return;
            }
            let take = queue.len().min(MAX_BATCH);
            let mut next: Vec<_> = queue.drain(..take).collect();
            let first = next.remove(0);
            let baton = Baton::new(Arc::clone(self), lane, next);
            match first.send(Turn::Lead(baton)) {
                Ok(()) => return,
                // Its request is gone: the others go back to the front of the queue (the
                // baton, emptied, hands nothing over: this loop does).
                Err(Turn::Lead(mut baton)) => {
                    baton.lanes = None;
                    queue.splice(0..0, std::mem::take(&mut baton.followers));
                }
                Err(Turn::Done(_)) => {}
            }
        }
    }
}

/// The right to make a lane's next call, for its holder and the followers. Whatever happens
/// to it (used, or dropped with its request while the call was out or before it arrived), the
/// followers get an answer and the lane moves on.
pub struct Baton {
    /// `None`: nothing to hand over on drop.
    lanes: Option<Arc<Lanes>>,
    lane: Lane,
    followers: Vec<oneshot::Sender<Turn>>,
}

impl Baton {
    fn new(lanes: Arc<Lanes>, lane: Lane, followers: Vec<oneshot::Sender<Turn>>) -> Self {
        Self {
            lanes: Some(lanes),
            lane,
            followers,
        }
    }

    /// Picks the call makes: the holder's and its followers'.
    pub fn picks(&self) -> usize {
        1 + self.followers.len()
    }

    /// Hands each follower its choice (in order, after the holder's) and returns the holder's.
    pub fn finish(mut self, mut choices: impl Iterator<Item = Option<Choice>>) -> Option<Choice> {
        let own = choices.next().flatten();
        let rest = choices.chain(std::iter::repeat(None));
        for (follower, choice) in self.followers.drain(..).zip(rest) {
            // A follower whose request is gone simply loses its pick.
            let _ = follower.send(Turn::Done(choice));
        }
        own
    }
}

impl Drop for Baton {
    fn drop(&mut self) {
        for follower in self.followers.drain(..) {
            let _ = follower.send(Turn::Done(None));
        }
        if let Some(lanes) = self.lanes.take() {
            lanes.hand_over(self.lane);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn lane() -> Lane {
        (
            PoolKey {
                workspace: Uuid::new_v4(),
                model: Uuid::new_v4(),
            },
            7,
        )
    }

    fn lead(joined: Joined) -> Baton {
        match joined {
            Joined::Lead(baton) => baton,
            Joined::Wait(_) => panic!("the pick should lead"),
        }
    }

    fn wait(joined: Joined) -> oneshot::Receiver<Turn> {
        match joined {
            Joined::Wait(turn) => turn,
            Joined::Lead(_) => panic!("the pick should wait"),
        }
    }

    async fn led(turn: oneshot::Receiver<Turn>) -> Baton {
        match turn.await {
            Ok(Turn::Lead(baton)) => baton,
            _ => panic!("the pick should be handed the lane"),
        }
    }

    #[tokio::test]
    async fn queued_picks_are_led_by_the_first_that_still_waits_and_the_lane_frees_after() {
        let lanes = Arc::new(Lanes::default());
        let lane = lane();
        let first = lead(join(&lanes, lane));
        let gone = wait(join(&lanes, lane));
        let second = wait(join(&lanes, lane));
        let third = wait(join(&lanes, lane));
        drop(gone);
        // The first call returns: the first pick still waiting leads the others.
        assert_eq!(
            first.finish([Some(Choice::Exhausted)].into_iter()),
            Some(Choice::Exhausted)
        );
        let baton = led(second).await;
        assert_eq!(baton.picks(), 2);
        let own = baton.finish([Some(Choice::AllRejected), Some(Choice::Exhausted)].into_iter());
        assert_eq!(own, Some(Choice::AllRejected));
        assert!(matches!(
            third.await,
            Ok(Turn::Done(Some(Choice::Exhausted)))
        ));
        // Nobody waits now: the next pick leads at once.
        lead(join(&lanes, lane));
    }

    #[tokio::test]
    async fn a_leader_dropped_mid_call_lets_its_followers_fall_back_and_frees_the_lane() {
        let lanes = Arc::new(Lanes::default());
        let lane = lane();
        let first = lead(join(&lanes, lane));
        let follower = wait(join(&lanes, lane));
        let late = wait(join(&lanes, lane));
        drop(first);
        let baton = led(follower).await;
        assert_eq!(baton.picks(), 2, "the late pick follows");
        let later = wait(join(&lanes, lane));
        drop(baton);
        // Its follower falls back; the pick arriving meanwhile is handed the lane.
        assert!(matches!(late.await, Ok(Turn::Done(None))));
        led(later).await;
    }

    #[tokio::test]
    async fn a_lane_handed_to_a_pick_gone_before_it_looked_moves_on() {
        let lanes = Arc::new(Lanes::default());
        let lane = lane();
        let first = lead(join(&lanes, lane));
        let gone = wait(join(&lanes, lane));
        let next = wait(join(&lanes, lane));
        // The lane is handed to `gone` (the first waiting), which then disappears unread.
        first.finish(std::iter::empty());
        drop(gone);
        // `next` followed `gone`: it falls back, and the lane is free again.
        assert!(matches!(next.await, Ok(Turn::Done(None))));
        lead(join(&lanes, lane));
    }
}
