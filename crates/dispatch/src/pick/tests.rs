//! The pick with limits and affinity: exact weighted shares for the non-sticky traffic, sticky
//! keys kept while their credential can serve, full minutes skipped, and the reason nothing
//! can serve.

use super::*;
use crate::lifecycle::{transport, Circuit, CoolReason, DEFAULT_TRIAL_LEASE_MS, MINUTE_MS};
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000_000;
const FAR: u64 = NOW + 3_600_000;

/// What blocks an entry for a whole run (`Free` serves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Free,
    Cooling,
    Quota,
    Rejected,
}

fn block() -> impl Strategy<Value = Block> {
    prop_oneof![
        4 => Just(Block::Free),
        1 => Just(Block::Cooling),
        1 => Just(Block::Quota),
        1 => Just(Block::Rejected),
    ]
}

fn pool(weights: &[u32]) -> Vec<Candidate> {
    weights
        .iter()
        .map(|&weight| Candidate {
            credential: Uuid::new_v4(),
            weight,
        })
        .collect()
}

/// A book and the credential states that block each entry as `blocks` says.
fn blocked(candidates: &[Candidate], blocks: &[Block]) -> (Book, Vec<(Uuid, CredentialState)>) {
    let mut book = Book::default();
    let mut states = Vec::new();
    for (c, b) in candidates.iter().zip(blocks) {
        match b {
            Block::Free => {}
            Block::Cooling => {
                book.entry(c.credential).circuit = Circuit::Open {
                    reason: CoolReason::RateLimited,
                    until_ms: FAR,
                    step: 0,
                }
            }
            Block::Quota => states.push((
                c.credential,
                CredentialState::QuotaExhausted {
                    until_ms: FAR + 1_000,
                    since_ms: NOW,
                },
            )),
            Block::Rejected => {
                states.push((c.credential, CredentialState::Rejected { since_ms: NOW }))
            }
        }
    }
    (book, states)
}

fn lookup(states: &[(Uuid, CredentialState)]) -> impl Fn(Uuid) -> CredentialState + '_ {
    move |c| {
        states
            .iter()
            .find(|(id, _)| *id == c)
            .map(|(_, s)| *s)
            .unwrap_or_default()
    }
}

fn ask<'a>(
    candidates: &'a [Candidate],
    limits: &'a [Limits],
    now_ms: u64,
    sticky: Option<Uuid>,
) -> Ask<'a> {
    Ask {
        candidates,
        limits,
        tried: &[],
        now_ms,
        sticky,
        trial_lease_ms: DEFAULT_TRIAL_LEASE_MS,
    }
}

proptest! {
    #[test]
    fn sticky_traffic_leaves_the_rotation_exact_for_the_rest(
        weights in prop::collection::vec(1u32..6, 2..7),
        blocks in prop::collection::vec(block(), 7),
        bound in prop::collection::vec(prop::option::of(0usize..7), 4),
        steps in prop::collection::vec(prop::option::of(0usize..4), 1..150),
    ) {
        let candidates = pool(&weights);
        let n = candidates.len();
        let (mut book, states) = blocked(&candidates, &blocks);
        let state = lookup(&states);
        let free = |i: usize| blocks[i] == Block::Free;
        let mut keys: Vec<Option<Uuid>> = bound.iter().map(|b| b.map(|i| candidates[i % n].credential)).collect();
        let mut rotation = Rotation::default();
        let mut rotated = Vec::new();
        for key in steps {
            let sticky = key.and_then(|k| keys[k]);
            let choice = pick(&mut rotation, &ask(&candidates, &[], NOW, sticky), &mut book, &state);
            let Choice::Serve(served) = choice else {
                prop_assert!((0..n).all(|i| !free(i)), "{choice:?}");
                let all_rejected = (0..n).all(|i| blocks[i] == Block::Rejected);
                prop_assert_eq!(choice == Choice::AllRejected, all_rejected, "{:?}", choice);
                let back = |i: usize| match blocks[i] {
                    Block::Cooling => Some(FAR),
                    Block::Quota => Some(FAR + 1_000),
                    Block::Free | Block::Rejected => None,
                };
                if let Some(first) = (0..n).filter_map(back).min() {
                    prop_assert_eq!(choice, Choice::AllCooling { retry_after_ms: first - NOW });
                }
                continue;
            };
            let credential = candidates[served.index].credential;
            prop_assert!(free(served.index));
            let sticky_serves = sticky.is_some_and(|s| (0..n).any(|i| candidates[i].credential == s && free(i)));
            prop_assert_eq!(served.sticky_hit, sticky_serves);
            if served.sticky_hit {
                prop_assert_eq!(Some(credential), sticky);
            } else {
                rotated.push(served.index);
            }
            if let Some(k) = key {
                keys[k] = Some(credential);
            }
        }
        // The picks the rotation made are exactly those of a rotation that never saw the
        // sticky traffic, so every window of the live weights' sum serves each its weight.
        let mut alone = Rotation::default();
        let expected: Vec<usize> = (0..rotated.len())
            .filter_map(|_| alone.pick_with(n, |i| weights[i], free))
            .collect();
        prop_assert_eq!(&rotated, &expected);
        let sum: usize = (0..n).filter(|i| free(*i)).map(|i| weights[i] as usize).sum();
        for window in rotated.chunks_exact(sum.max(1)) {
            for i in (0..n).filter(|i| free(*i)) {
                prop_assert_eq!(window.iter().filter(|p| **p == i).count(), weights[i] as usize);
            }
        }
    }

    #[test]
    fn with_limits_the_rotation_is_exact_over_whoever_can_serve_at_each_pick(
        weights in prop::collection::vec(1u32..6, 2..7),
        rpms in prop::collection::vec(prop::option::of(1u32..8), 7),
        blocks in prop::collection::vec(block(), 7),
        steps in prop::collection::vec((prop::option::of(0usize..3), 0u64..4_000), 1..200),
    ) {
        // Sticky hits use up minutes too, so who can serve changes; the rotation's own picks
        // are still exactly smooth weighted round-robin over whoever can serve at that moment.
        let candidates = pool(&weights);
        let n = candidates.len();
        let limits: Vec<Limits> = rpms.iter().take(n).map(|&rpm| Limits { rpm, tpm: None }).collect();
        let (mut book, states) = blocked(&candidates, &blocks);
        let state = lookup(&states);
        let mut keys: Vec<Option<Uuid>> = vec![None; 3];
        let mut rotation = Rotation::default();
        let mut alone = Rotation::default();
        let mut now = NOW;
        for (key, dt) in steps {
            now += dt;
            let sticky = key.and_then(|k| keys[k]);
            let a = ask(&candidates, &limits, now, sticky);
            let can: Vec<bool> = (0..n).map(|i| serves(&a, &book, &state, i)).collect();
            match pick(&mut rotation, &a, &mut book, &state) {
                Choice::Serve(s) => {
                    prop_assert!(can[s.index], "served entry {} that cannot serve", s.index);
                    if !s.sticky_hit {
                        prop_assert_eq!(alone.pick_with(n, |i| weights[i], |i| can[i]), Some(s.index));
                    }
                    if let Some(k) = key {
                        keys[k] = Some(candidates[s.index].credential);
                    }
                }
                other => {
                    prop_assert!(can.iter().all(|c| !c), "{other:?} while some can serve");
                    let capacity_only = (0..n).all(|i| blocks[i] == Block::Free || blocks[i] == Block::Rejected);
                    if capacity_only && (0..n).any(|i| blocks[i] == Block::Free) {
                        prop_assert_eq!(other, Choice::AllAtCapacity { retry_after_ms: (now / MINUTE_MS + 1) * MINUTE_MS - now });
                    }
                }
            }
        }
        for (i, limit) in limits.iter().enumerate() {
            let used = book.get(candidates[i].credential).map(|e| e.window.at(now).requests).unwrap_or(0);
            prop_assert!(limit.rpm.is_none_or(|r| used <= r), "entry {} used {} of {:?}", i, used, limit.rpm);
        }
    }

    #[test]
    fn an_all_rejected_pool_says_so_whatever_else_holds(
        weights in prop::collection::vec(1u32..6, 1..7),
        cooling in prop::collection::vec(any::<bool>(), 7),
        full in prop::collection::vec(any::<bool>(), 7),
        sticky in prop::option::of(0usize..7),
    ) {
        let candidates = pool(&weights);
        let limits = vec![Limits { rpm: Some(1), tpm: None }; candidates.len()];
        let mut book = Book::default();
        for (i, c) in candidates.iter().enumerate() {
            if cooling[i] {
                book.entry(c.credential).record(&transport(), 60, NOW);
            }
            if full[i] {
                book.entry(c.credential).window.count_request(NOW);
            }
        }
        let sticky = sticky.map(|i| candidates[i % candidates.len()].credential);
        let choice = pick(&mut Rotation::default(), &ask(&candidates, &limits, NOW, sticky), &mut book, |_| CredentialState::Rejected { since_ms: NOW });
        prop_assert_eq!(choice, Choice::AllRejected);
    }

    #[test]
    fn a_sticky_key_keeps_its_credential_while_it_can_serve(
        weights in prop::collection::vec(1u32..4, 2..6),
        steps in prop::collection::vec(prop::collection::vec(block(), 6), 1..60),
        start in 0usize..6,
    ) {
        let candidates = pool(&weights);
        let n = candidates.len();
        let mut key = Some(candidates[start % n].credential);
        let mut rotation = Rotation::default();
        for blocks in steps {
            let (mut book, states) = blocked(&candidates, &blocks);
            let sticky_free = (0..n).any(|i| Some(candidates[i].credential) == key && blocks[i] == Block::Free);
            match pick(&mut rotation, &ask(&candidates, &[], NOW, key), &mut book, lookup(&states)) {
                Choice::Serve(s) => {
                    let c = candidates[s.index].credential;
                    prop_assert_eq!(s.sticky_hit, sticky_free);
                    prop_assert_eq!(Some(c) == key, sticky_free, "moved only when the sticky one cannot serve");
                    key = Some(c);
                }
                other => prop_assert!(!sticky_free, "{other:?}"),
            }
        }
    }

    #[test]
    fn full_minutes_are_skipped_until_the_next(
        rpms in prop::collection::vec(1u32..5, 1..6),
        requests in 1usize..40,
        sticky in prop::option::of(0usize..6),
    ) {
        let candidates = pool(&vec![1; rpms.len()]);
        let limits: Vec<Limits> = rpms.iter().map(|&r| Limits { rpm: Some(r), tpm: None }).collect();
        let sticky = sticky.map(|i| candidates[i % candidates.len()].credential);
        let mut book = Book::default();
        let mut rotation = Rotation::default();
        let mut served = vec![0u32; rpms.len()];
        let capacity: u32 = rpms.iter().sum();
        let now = NOW + 5_000;
        for r in 0..requests {
            match pick(&mut rotation, &ask(&candidates, &limits, now, sticky), &mut book, |_| CredentialState::Available) {
                Choice::Serve(s) => served[s.index] += 1,
                other => {
                    prop_assert!(r as u32 >= capacity, "{other:?} after {r}");
                    prop_assert_eq!(other, Choice::AllAtCapacity { retry_after_ms: (NOW / MINUTE_MS + 1) * MINUTE_MS - now });
                }
            }
        }
        for (i, n) in served.iter().enumerate() {
            prop_assert!(*n <= rpms[i], "entry {} served {} over its rpm {}", i, n, rpms[i]);
        }
        prop_assert_eq!(served.iter().sum::<u32>(), capacity.min(requests as u32));
        // The next minute has room again.
        let next = (now / MINUTE_MS + 1) * MINUTE_MS;
        let again = pick(&mut rotation, &ask(&candidates, &limits, next, sticky), &mut book, |_| CredentialState::Available);
        prop_assert!(matches!(again, Choice::Serve(_)), "{again:?}");
    }
}

#[test]
fn nothing_to_serve_says_why() {
    let candidates = pool(&[1, 2, 3]);
    let ids: Vec<Uuid> = candidates.iter().map(|c| c.credential).collect();
    let mut rotation = Rotation::default();
    let rejected = |_| CredentialState::Rejected { since_ms: NOW };
    let mut book = Book::default();
    let a = ask(&candidates, &[], NOW, None);
    assert_eq!(
        pick(&mut rotation, &a, &mut book, rejected),
        Choice::AllRejected
    );
    // One that returns by itself turns it into a 429 with the earliest return.
    let one_quota = |c| {
        if c == ids[1] {
            CredentialState::QuotaExhausted {
                until_ms: NOW + 7_000,
                since_ms: NOW,
            }
        } else {
            CredentialState::Rejected { since_ms: NOW }
        }
    };
    assert_eq!(
        pick(&mut rotation, &a, &mut book, one_quota),
        Choice::AllCooling {
            retry_after_ms: 7_000
        }
    );
    // Everything tried: exhausted, whatever the states.
    let all_tried = Ask { tried: &ids, ..a };
    assert_eq!(
        pick(&mut rotation, &all_tried, &mut book, rejected),
        Choice::Exhausted
    );
    // Cooling and at capacity together: cooling, with the earlier return.
    let limits = [Limits {
        rpm: Some(1),
        tpm: None,
    }; 3];
    book.entry(ids[0]).record(&transport(), 60, NOW);
    book.entry(ids[1]).window.count_request(NOW);
    book.entry(ids[2]).window.count_request(NOW);
    let minute_end = (NOW / MINUTE_MS + 1) * MINUTE_MS;
    let limited = ask(&candidates, &limits, NOW, None);
    let retry = (NOW + 10_000).min(minute_end) - NOW;
    assert_eq!(
        pick(&mut rotation, &limited, &mut book, |_| {
            CredentialState::Available
        }),
        Choice::AllCooling {
            retry_after_ms: retry
        }
    );
    let two = Ask {
        tried: &ids[..1],
        ..limited
    };
    assert_eq!(
        pick(&mut rotation, &two, &mut book, |_| {
            CredentialState::Available
        }),
        Choice::AllAtCapacity {
            retry_after_ms: minute_end - NOW
        }
    );
}

#[test]
fn a_half_open_entry_takes_one_trial_and_others_skip_it() {
    let candidates = pool(&[1, 1]);
    let a = candidates[0].credential;
    let mut book = Book::default();
    book.entry(a).record(&transport(), 60, NOW);
    let mut rotation = Rotation::default();
    let at = NOW + 10_000;
    let picks: Vec<Served> = (0..6)
        .filter_map(|_| {
            match pick(
                &mut rotation,
                &ask(&candidates, &[], at, None),
                &mut book,
                |_| CredentialState::Available,
            ) {
                Choice::Serve(s) => Some(s),
                _ => None,
            }
        })
        .collect();
    let trials: Vec<&Served> = picks.iter().filter(|s| s.index == 0).collect();
    assert_eq!(trials.len(), 1, "{picks:?}");
    assert!(trials[0].trial);
    assert!(picks.iter().filter(|s| s.index == 1).all(|s| !s.trial));
    // Its trial failing doubles the cooldown; a sticky key on it moves meanwhile.
    book.entry(a).record(&transport(), 60, at + 100);
    let choice = pick(
        &mut rotation,
        &ask(&candidates, &[], at + 200, Some(a)),
        &mut book,
        |_| CredentialState::Available,
    );
    assert_eq!(
        choice,
        Choice::Serve(Served {
            index: 1,
            trial: false,
            sticky_hit: false
        })
    );
    assert_eq!(
        book.get(a).map(|e| e.circuit.back_at(at + 200)),
        Some(Some(at + 100 + 20_000))
    );
}
