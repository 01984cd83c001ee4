//! The pick of §14: which entry of a pool serves next, given each (model, credential)'s
//! circuit and minute window, each credential's state and the request's affinity key. Builds
//! on the smooth weighted round-robin of [`Rotation`]; no I/O (the state backends hold a
//! [`Book`] per pool and call [`pick`]).
//!
//! - An entry is skipped when its credential was tried already, is rejected or
//!   quota-exhausted, when its (model, credential) cools down (a half-open one takes exactly
//!   one trial), or when its `rpm`/`tpm` minute is full.
//! - A sticky credential (the affinity key's) that can serve is served without touching the
//!   rotation, so the weighted shares of the other traffic stay exact; one that cannot is
//!   skipped and the rotation picks (the caller moves the key to whoever served).
//! - When nothing can serve, the answer says why: something returns by itself (cooling, at
//!   capacity, quota) and when, or everything is rejected, or everything was tried.

pub mod schedule;
#[cfg(test)]
mod tests;

use crate::balancer::Rotation;
use crate::lifecycle::{Circuit, CredentialState, EntryRecord, Limits};
use crate::state::Candidate;
use schedule::Schedule;
use uuid::Uuid;

/// A candidate without a record (available, never touched).
const NO_RECORD: u32 = u32::MAX;

/// The lifecycle state of one pool's (model, credential) pairs: few at a time, so a list,
/// with each candidate's place in it remembered between picks (a pick looks each one up
/// without a scan).
#[derive(Debug, Clone, Default)]
pub struct Book {
    entries: Vec<(Uuid, EntryRecord)>,
    /// For each candidate of the last pick, its credential and the index of its record
    /// ([`NO_RECORD`]: none); valid while `aligned_len` is the number of records.
    slots: Vec<(Uuid, u32)>,
    aligned_len: usize,
}

impl PartialEq for Book {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for Book {}

impl Book {
    /// Points each of `candidates` at its record: a scan only when the candidates or the set
    /// of records changed since the last pick, otherwise one comparison per candidate.
    fn align(&mut self, candidates: &[Candidate]) {
        let valid = self.aligned_len == self.entries.len()
            && self.slots.len() == candidates.len()
            && self
                .slots
                .iter()
                .zip(candidates)
                .all(|((c, _), cand)| *c == cand.credential);
        if valid {
            return;
        }
        let entries = &self.entries;
        self.slots.clear();
        self.slots.extend(candidates.iter().map(|cand| {
            let at = entries.iter().position(|(c, _)| *c == cand.credential);
            let at = at.and_then(|p| u32::try_from(p).ok()).unwrap_or(NO_RECORD);
            (cand.credential, at)
        }));
        self.aligned_len = entries.len();
    }

    /// The record of `credential`, candidate `i` of the pick: found by its slot when the book
    /// is aligned to the pick's candidates, by a scan otherwise.
    fn slot(&self, i: usize, credential: Uuid) -> Option<&EntryRecord> {
        match self.slots.get(i) {
            Some(&(c, at)) if c == credential && self.aligned_len == self.entries.len() => {
                let at = usize::try_from(at).ok()?;
                self.entries.get(at).map(|(_, e)| e)
            }
            _ => self.get(credential),
        }
    }

    /// The record of candidate `i` of the aligned pick, created available when missing (a
    /// new record realigns the next pick: another candidate may share the credential).
    fn slot_entry(&mut self, i: usize, credential: Uuid) -> &mut EntryRecord {
        let aligned = self.aligned_len == self.entries.len();
        let at = match self.slots.get(i) {
            Some(&(c, at)) if c == credential && aligned => usize::try_from(at).ok(),
            _ => None,
        };
        match at.filter(|&at| at < self.entries.len()) {
            Some(at) => &mut self.entries[at].1,
            None => self.entry(credential),
        }
    }

    /// The record of `credential` (none: never touched, i.e. available).
    pub fn get(&self, credential: Uuid) -> Option<&EntryRecord> {
        self.entries
            .iter()
            .find(|(c, _)| *c == credential)
            .map(|(_, e)| e)
    }

    /// The record of `credential`, created available when missing (to record an answer).
    pub fn entry(&mut self, credential: Uuid) -> &mut EntryRecord {
        let at = match self.entries.iter().position(|(c, _)| *c == credential) {
            Some(at) => at,
            None => {
                self.entries.push((credential, EntryRecord::default()));
                self.entries.len() - 1
            }
        };
        &mut self.entries[at].1
    }

    /// Every record (to store or show them).
    pub fn iter(&self) -> impl Iterator<Item = (Uuid, &EntryRecord)> {
        self.entries.iter().map(|(c, e)| (*c, e))
    }

    /// `DELETE …/cooldowns` for the pool: every record reset (see [`EntryRecord::reset`]).
    pub fn reset(&mut self) {
        for (_, e) in &mut self.entries {
            e.reset();
        }
    }
}

/// The question "which entry serves this request?", asked once per attempt.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The pool's entries.
    pub candidates: &'a [Candidate],
    /// Each entry's limits, by index (missing: none).
    pub limits: &'a [Limits],
    /// Credentials this request tried already.
    pub tried: &'a [Uuid],
    /// Now, ms since the epoch.
    pub now_ms: u64,
    /// The credential the request's affinity key is bound to, if any.
    pub sticky: Option<Uuid>,
    /// How long a half-open trial handed out keeps others away without an outcome.
    pub trial_lease_ms: u64,
}

impl Ask<'_> {
    fn limits(&self, i: usize) -> Limits {
        self.limits.get(i).copied().unwrap_or_default()
    }

    fn credential(&self, i: usize) -> Uuid {
        self.candidates[i].credential
    }

    fn untried(&self, i: usize) -> bool {
        !self.tried.contains(&self.credential(i))
    }
}

/// The entry a pick chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Served {
    /// Index into the candidates.
    pub index: usize,
    /// The request is the entry's half-open trial: its outcome decides the entry's fate.
    pub trial: bool,
    /// Served by the affinity key's credential (`x-rotor-affinity-hit`); rebind the key either way.
    pub sticky_hit: bool,
}

/// The answer to "which entry serves this request?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Choice {
    /// Serve with this entry.
    Serve(Served),
    /// Something returns by itself (cooling, quota): 429 `all_credentials_cooling_down`.
    AllCooling {
        /// Milliseconds until the first entry can serve again.
        retry_after_ms: u64,
    },
    /// Only full minutes stand in the way: 429 `all_credentials_at_capacity`.
    AllAtCapacity {
        /// Milliseconds until the first entry has room again.
        retry_after_ms: u64,
    },
    /// Every untried entry's credential is rejected: 502 `all_credentials_rejected`.
    AllRejected,
    /// Every credential was tried already.
    Exhausted,
    /// The client's own minute is full ([`crate::state::ClientAdmit`]): nothing was picked;
    /// it has room again at `until_ms`.
    ClientFull {
        /// The next minute's start, ms since the epoch.
        until_ms: u64,
    },
}

/// Whether entry `i` can serve the request now.
fn serves(
    ask: &Ask<'_>,
    book: &Book,
    credential: &impl Fn(Uuid) -> CredentialState,
    i: usize,
) -> bool {
    let c = ask.credential(i);
    ask.untried(i)
        && credential(c).admits(ask.now_ms)
        && book
            .slot(i, c)
            .is_none_or(|e| e.can_serve(ask.limits(i), ask.now_ms))
}

/// Picks who serves `ask`: sticky first, else the rotation; admits the request into `book`.
pub fn pick(
    rotation: &mut Rotation,
    ask: &Ask<'_>,
    book: &mut Book,
    credential: impl Fn(Uuid) -> CredentialState,
) -> Choice {
    let n = ask.candidates.len();
    book.align(ask.candidates);
    let view: &Book = book;
    let sticky = ask.sticky.and_then(|s| {
        (0..n).find(|&i| ask.credential(i) == s && serves(ask, view, &credential, i))
    });
    let (index, sticky_hit) = match sticky {
        Some(i) => (i, true),
        None => {
            let chosen = rotation.pick_with(
                n,
                |i| ask.candidates[i].weight,
                |i| serves(ask, view, &credential, i),
            );
            match chosen {
                Some(i) => (i, false),
                None => return why_not(ask, view, &credential),
            }
        }
    };
    // Only entries with limits count their requests: the others need no window.
    let record = book.slot_entry(index, ask.credential(index));
    let trial = if ask.limits(index).any() {
        record.admit(ask.now_ms, ask.trial_lease_ms)
    } else {
        record.take_trial(ask.now_ms, ask.trial_lease_ms)
    };
    Choice::Serve(Served {
        index,
        trial,
        sticky_hit,
    })
}

/// The rotation run ahead from `rotation` for requests like `ask` (a first attempt, no
/// affinity, no limits): `None` when the pool has an entry whose serving depends on more than
/// time (a half-open trial, limits) or nothing serves. Valid until the first cooldown or quota
/// runs out; whoever changes a record or the composition drops it.
pub fn plan(
    rotation: &Rotation,
    ask: &Ask<'_>,
    book: &mut Book,
    credential: impl Fn(Uuid) -> CredentialState,
) -> Option<Schedule> {
    let limited = ask.limits.iter().any(|l| l.any());
    if !ask.tried.is_empty() || ask.sticky.is_some() || limited {
        return None;
    }
    book.align(ask.candidates);
    let now = ask.now_ms;
    let mut valid_until_ms = u64::MAX;
    let mut weights = Vec::with_capacity(ask.candidates.len());
    for (i, cand) in ask.candidates.iter().enumerate() {
        let mut serves = true;
        match credential(cand.credential).at(now) {
            CredentialState::Available => {}
            CredentialState::QuotaExhausted { until_ms, .. } => {
                serves = false;
                valid_until_ms = valid_until_ms.min(until_ms);
            }
            CredentialState::Rejected { .. } => serves = false,
        }
        match book.slot(i, cand.credential).map(|e| e.circuit.at(now)) {
            None | Some(Circuit::Closed) => {}
            Some(Circuit::Open { until_ms, .. }) => {
                serves = false;
                valid_until_ms = valid_until_ms.min(until_ms);
            }
            Some(Circuit::HalfOpen { .. }) => return None,
        }
        weights.push(if serves {
            i64::from(cand.weight.max(1))
        } else {
            0
        });
    }
    let mut schedule = Schedule::new(rotation, weights)?;
    schedule.valid_until_ms = valid_until_ms;
    Some(schedule)
}

/// Why no untried entry can serve, and when the first returns by itself.
fn why_not(ask: &Ask<'_>, book: &Book, credential: &impl Fn(Uuid) -> CredentialState) -> Choice {
    let now = ask.now_ms;
    let mut untried = false;
    let mut soonest: Option<u64> = None;
    let mut capacity_only = true;
    for i in (0..ask.candidates.len()).filter(|&i| ask.untried(i)) {
        untried = true;
        let c = ask.credential(i);
        let quota = match credential(c).at(now) {
            CredentialState::Rejected { .. } => continue,
            CredentialState::QuotaExhausted { until_ms, .. } => Some(until_ms),
            CredentialState::Available => None,
        };
        let limits = ask.limits(i);
        let entry = book.get(c);
        let circuit = entry.and_then(|e| e.circuit.back_at(now));
        let capacity = entry.and_then(|e| e.window.full_until(limits, now));
        if quota.is_some() || circuit.is_some() {
            capacity_only = false;
        }
        let back = [quota, circuit, capacity].into_iter().flatten().max();
        // Unreachable in practice (an entry with nothing in its way can serve); count it as
        // back at once rather than lose it.
        let back = back.unwrap_or(now);
        soonest = Some(soonest.map_or(back, |s| s.min(back)));
    }
    if !untried {
        return Choice::Exhausted;
    }
    match soonest {
        None => Choice::AllRejected,
        Some(at) => {
            let retry_after_ms = at.saturating_sub(now).max(1);
            if capacity_only {
                Choice::AllAtCapacity { retry_after_ms }
            } else {
                Choice::AllCooling { retry_after_ms }
            }
        }
    }
}
