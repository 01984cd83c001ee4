//! Picks that wait for the same pool go to Redis together. While one pick of a pool is in
//! flight, plain picks of that pool (a first attempt, no affinity, no client to admit, no
//! limits) queue behind it; when it returns, the first in the queue leads the next call for
//! all of them, and the script makes their picks one after the other, exactly as separate
//! calls would. A lone pick goes at once, so batching only happens when picks already wait:
//! under load it divides Redis's work per pick (one script call, one network turn for many).

use crate::pick::Choice;
use crate::state::PoolKey;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Most picks in one call (the rest wait for the next).
pub const MAX_BATCH: usize = 32;

/// What a queued pick is told.
pub enum Turn {
    /// Picked for it (`None`: Redis did not answer; it falls back).
    Done(Option<Choice>),
    /// It leads the next call, for itself and these.
    Lead(Vec<oneshot::Sender<Turn>>),
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
    Lead,
    /// It waits for its turn.
    Wait(oneshot::Receiver<Turn>),
}

impl Lanes {
    /// Leads when the lane is free, queues otherwise (a poisoned lock: leads, unbatched).
    pub fn join(&self, lane: Lane) -> Joined {
        let Ok(mut lanes) = self.lanes.lock() else {
            return Joined::Lead;
        };
        match lanes.get_mut(&lane) {
            Some(queue) => {
                let (tx, rx) = oneshot::channel();
                queue.push(tx);
                Joined::Wait(rx)
            }
            None => {
                lanes.insert(lane, Vec::new());
                Joined::Lead
            }
        }
    }

    /// The lane's call returned: the first queued pick that still waits leads the next one
    /// with the others queued (up to [`MAX_BATCH`]); with nobody waiting the lane is free.
    fn hand_over(&self, lane: Lane) {
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
            match first.send(Turn::Lead(next)) {
                Ok(()) => return,
                // Its request is gone: the others go back to the front of the queue.
                Err(Turn::Lead(rest)) => {
                    queue.splice(0..0, rest);
                }
                Err(Turn::Done(_)) => {}
            }
        }
    }
}

/// The pick leading a call: whatever happens to it (answered, or its request dropped while
/// the call was out), its followers get an answer and the lane moves on.
pub struct Leader<'a> {
    lanes: &'a Lanes,
    lane: Lane,
    followers: Vec<oneshot::Sender<Turn>>,
}

impl<'a> Leader<'a> {
    /// Leads `lane` for itself and `followers`.
    pub fn new(lanes: &'a Lanes, lane: Lane, followers: Vec<oneshot::Sender<Turn>>) -> Self {
        Self {
            lanes,
            lane,
            followers,
        }
    }

    /// Picks the call makes: the leader's and its followers'.
    pub fn picks(&self) -> usize {
        1 + self.followers.len()
    }

    /// Hands each follower its choice (in order, after the leader's) and returns the leader's.
    pub fn finish(mut self, mut choices: impl Iterator<Item = Option<Choice>>) -> Option<Choice> {
        let own = choices.next().flatten();
        for (follower, choice) in self
            .followers
            .drain(..)
            .zip(choices.chain(std::iter::repeat(None)))
        {
            // A follower whose request is gone simply loses its pick.
            let _ = follower.send(Turn::Done(choice));
        }
        own
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        for follower in self.followers.drain(..) {
            let _ = follower.send(Turn::Done(None));
        }
        self.lanes.hand_over(self.lane);
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

    #[tokio::test]
    async fn queued_picks_are_led_by_the_first_that_still_waits_and_the_lane_frees_after() {
        let lanes = Lanes::default();
        let lane = lane();
        assert!(matches!(lanes.join(lane), Joined::Lead));
        let Joined::Wait(gone) = lanes.join(lane) else {
            panic!("a second pick waits")
        };
        let Joined::Wait(second) = lanes.join(lane) else {
            panic!("a third pick waits")
        };
        let Joined::Wait(third) = lanes.join(lane) else {
            panic!("a fourth pick waits")
        };
        drop(gone);
        // The first call returns: the first pick still waiting leads the others.
        Leader::new(&lanes, lane, Vec::new()).finish([Some(Choice::Exhausted)].into_iter());
        let Ok(Turn::Lead(followers)) = second.await else {
            panic!("the second pick leads")
        };
        assert_eq!(followers.len(), 1);
        let leader = Leader::new(&lanes, lane, followers);
        assert_eq!(leader.picks(), 2);
        let own = leader.finish([Some(Choice::AllRejected), Some(Choice::Exhausted)].into_iter());
        assert_eq!(own, Some(Choice::AllRejected));
        assert!(matches!(
            third.await,
            Ok(Turn::Done(Some(Choice::Exhausted)))
        ));
        // Nobody waits now: the next pick leads at once.
        assert!(matches!(lanes.join(lane), Joined::Lead));
    }

    #[tokio::test]
    async fn a_leader_dropped_mid_call_lets_its_followers_fall_back_and_frees_the_lane() {
        let lanes = Lanes::default();
        let lane = lane();
        assert!(matches!(lanes.join(lane), Joined::Lead));
        let Joined::Wait(follower) = lanes.join(lane) else {
            panic!("a second pick waits")
        };
        Leader::new(&lanes, lane, Vec::new()).finish(std::iter::empty());
        let Ok(Turn::Lead(followers)) = follower.await else {
            panic!("it leads")
        };
        assert!(followers.is_empty());
        let Joined::Wait(late) = lanes.join(lane) else {
            panic!("a pick arriving meanwhile waits")
        };
        drop(Leader::new(&lanes, lane, followers));
        // The late pick is handed the lane rather than left waiting.
        assert!(matches!(late.await, Ok(Turn::Lead(_))));
    }
}
