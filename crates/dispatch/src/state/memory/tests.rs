//! The in-process backend end to end over the pure lifecycle: states recorded per
//! (model, credential) and per credential, the pick honouring them, affinity, reset, recovery.

use super::*;
use crate::lifecycle::{Classified, EntryLabel, EntryStatus, Limits};
use crate::state::{Candidate, Sticky};

const NOW: u64 = 1_800_000_000_000;

fn pool() -> PoolKey {
    PoolKey {
        workspace: Uuid::new_v4(),
        model: Uuid::new_v4(),
    }
}

fn candidates(n: usize) -> Vec<Candidate> {
    (0..n)
        .map(|_| Candidate {
            credential: Uuid::new_v4(),
            weight: 1,
        })
        .collect()
}

fn ask<'a>(
    key: PoolKey,
    c: &'a [Candidate],
    limits: &'a [Limits],
    tried: &'a [Uuid],
    now_ms: u64,
    sticky: Option<Sticky>,
) -> PickRequest<'a> {
    PickRequest {
        pool: key,
        signature: 1,
        candidates: c,
        limits,
        tried,
        now_ms,
        sticky,
        trial_lease_ms: 300_000,
        client: None,
    }
}

fn answer(status: u16, trigger: Trigger) -> Classified {
    Classified {
        trigger,
        reset: None,
        status: Some(status),
        code: None,
    }
}

async fn record(s: &MemoryState, key: PoolKey, c: Uuid, a: &Classified, now_ms: u64) -> Recorded {
    let report = Report {
        answer: a,
        cooldown_seconds: 60,
        quota_cooldown_seconds: 600,
        now_ms,
    };
    s.record(key, c, report).await
}

fn served(choice: Choice) -> Option<usize> {
    match choice {
        Choice::Serve(s) => Some(s.index),
        _ => None,
    }
}

#[tokio::test]
async fn a_rejected_credential_leaves_every_pool_of_its_workspace_until_recovered() {
    let s = MemoryState::default();
    let (m1, c) = (pool(), candidates(2));
    let m2 = PoolKey {
        workspace: m1.workspace,
        model: Uuid::new_v4(),
    };
    let other_ws = PoolKey {
        workspace: Uuid::new_v4(),
        model: m1.model,
    };
    let bad = c[0].credential;
    let r = record(&s, m1, bad, &answer(401, Trigger::Rejected), NOW).await;
    assert_eq!(r.change, Some(Change::Rejected));
    // Said once: a second rejection changes nothing.
    let again = record(&s, m1, bad, &answer(401, Trigger::Rejected), NOW + 1).await;
    assert_eq!(again.change, None);
    for key in [m1, m2] {
        for _ in 0..4 {
            assert_eq!(
                served(s.pick(ask(key, &c, &[], &[], NOW + 10, None)).await),
                Some(1)
            );
        }
    }
    // Another workspace's pool with the same ids is untouched.
    let picks: Vec<_> = futures_util::future::join_all(
        (0..4).map(|_| s.pick(ask(other_ws, &c, &[], &[], NOW + 10, None))),
    )
    .await;
    assert!(picks.iter().any(|p| served(*p) == Some(0)), "{picks:?}");
    // Only the rejected one left: the answer says so, and a reset does not bring it back.
    let tried = [c[0].credential, c[1].credential];
    assert_eq!(
        s.pick(ask(m1, &c, &[], &tried, NOW + 10, None)).await,
        Choice::Exhausted
    );
    assert_eq!(
        s.pick(ask(m1, &c[..1], &[], &[], NOW + 10, None)).await,
        Choice::AllRejected
    );
    assert!(s.reset(m1, &[bad], NOW + 20).await.is_empty());
    assert_eq!(
        s.pick(ask(m1, &c[..1], &[], &[], NOW + 10, None)).await,
        Choice::AllRejected
    );
    assert_eq!(s.flagged().await.len(), 1);
    assert_eq!(
        s.recover(m1.workspace, bad, NOW + 30).await,
        Some(Change::Recovered)
    );
    assert!(s.flagged().await.is_empty());
    assert_eq!(
        served(s.pick(ask(m2, &c[..1], &[], &[], NOW + 40, None)).await),
        Some(0)
    );
}

#[tokio::test]
async fn a_spent_quota_rests_credential_wide_and_a_reset_ends_it() {
    let s = MemoryState::default();
    let (m1, c) = (pool(), candidates(1));
    let m2 = PoolKey {
        workspace: m1.workspace,
        model: Uuid::new_v4(),
    };
    let q = Classified {
        code: Some("insufficient_quota".into()),
        ..answer(429, Trigger::QuotaExhausted)
    };
    assert_eq!(
        record(&s, m1, c[0].credential, &q, NOW).await.change,
        Some(Change::QuotaExhausted)
    );
    // 600 s (the credential's quota cooldown), in the other model's pool too.
    assert_eq!(
        s.pick(ask(m2, &c, &[], &[], NOW + 1_000, None)).await,
        Choice::AllCooling {
            retry_after_ms: 599_000
        }
    );
    assert_eq!(
        served(s.pick(ask(m2, &c, &[], &[], NOW + 600_000, None)).await),
        Some(0)
    );
    record(&s, m1, c[0].credential, &q, NOW + 600_001).await;
    assert_eq!(
        s.reset(m2, &[c[0].credential], NOW + 600_002).await,
        vec![c[0].credential]
    );
    assert_eq!(
        served(s.pick(ask(m1, &c, &[], &[], NOW + 600_003, None)).await),
        Some(0)
    );
    let health = s.credentials(m1.workspace, &[c[0].credential]).await;
    let (_, record) = &health[0];
    let last = record.last_error.as_ref().map(|e| e.code.clone());
    assert_eq!(
        last,
        Some(Some("insufficient_quota".into())),
        "kept after recovery"
    );
}

#[tokio::test]
async fn a_transient_failure_gets_one_trial_after_ten_seconds_then_twenty() {
    let s = MemoryState::default();
    let (key, c) = (pool(), candidates(1));
    let id = c[0].credential;
    record(&s, key, id, &answer(500, Trigger::Transient), NOW).await;
    assert_eq!(
        s.pick(ask(key, &c, &[], &[], NOW + 1, None)).await,
        Choice::AllCooling {
            retry_after_ms: 9_999
        }
    );
    let trial = s.pick(ask(key, &c, &[], &[], NOW + 10_000, None)).await;
    assert!(matches!(trial, Choice::Serve(s) if s.trial), "{trial:?}");
    // One at a time: another request does not get a second trial.
    assert!(matches!(
        s.pick(ask(key, &c, &[], &[], NOW + 10_001, None)).await,
        Choice::AllCooling { .. }
    ));
    record(&s, key, id, &answer(503, Trigger::Transient), NOW + 10_500).await;
    assert_eq!(
        s.pick(ask(key, &c, &[], &[], NOW + 10_500, None)).await,
        Choice::AllCooling {
            retry_after_ms: 20_000
        }
    );
    let trial = s.pick(ask(key, &c, &[], &[], NOW + 30_500, None)).await;
    assert!(matches!(trial, Choice::Serve(s) if s.trial));
    record(&s, key, id, &answer(200, Trigger::Success), NOW + 30_600).await;
    let after = s.pick(ask(key, &c, &[], &[], NOW + 30_700, None)).await;
    assert!(
        matches!(after, Choice::Serve(s) if !s.trial),
        "closed again: {after:?}"
    );
    let book = s.book(key).await;
    let status = EntryStatus::of(
        book.get(id).unwrap(),
        &CredentialRecord::default(),
        Limits::default(),
        NOW + 30_700,
    );
    assert_eq!(status.state, EntryLabel::Available);
    assert_eq!(status.last_error.and_then(|e| e.status), Some(503));
}

#[tokio::test]
async fn rpm_skips_a_full_entry_and_tokens_fill_tpm() {
    let s = MemoryState::default();
    let (key, c) = (pool(), candidates(2));
    let limits = [
        Limits {
            rpm: Some(3),
            tpm: None,
        },
        Limits {
            rpm: None,
            tpm: Some(100),
        },
    ];
    let now = NOW - NOW % 60_000;
    let mut served_by = [0; 2];
    for i in 0..8 {
        if let Some(i) = served(s.pick(ask(key, &c, &limits, &[], now + i, None)).await) {
            served_by[i] += 1;
        }
    }
    assert_eq!(served_by, [3, 5], "rpm 3: the rest goes to the other entry");
    s.count_tokens(key, c[1].credential, 100, now + 10).await;
    assert_eq!(
        s.pick(ask(key, &c, &limits, &[], now + 20, None)).await,
        Choice::AllAtCapacity {
            retry_after_ms: 60_000 - 20
        }
    );
    assert!(served(s.pick(ask(key, &c, &limits, &[], now + 60_000, None)).await).is_some());
}

#[tokio::test]
async fn an_affinity_key_sticks_to_its_credential_and_moves_when_it_cannot_serve() {
    let s = MemoryState::default();
    let (key, c) = (pool(), candidates(3));
    let sticky = |k: &str| {
        Some(Sticky {
            key: crate::state::affinity_hash(k.as_bytes()),
            ttl_ms: 300_000,
        })
    };
    let first = s.pick(ask(key, &c, &[], &[], NOW, sticky("a"))).await;
    let Choice::Serve(first) = first else {
        panic!("{first:?}")
    };
    assert!(!first.sticky_hit);
    for i in 1..12 {
        let again = s.pick(ask(key, &c, &[], &[], NOW + i, sticky("a"))).await;
        assert_eq!(
            again,
            Choice::Serve(crate::pick::Served {
                index: first.index,
                trial: false,
                sticky_hit: true
            })
        );
    }
    // Its credential cools: the key moves to whoever serves, and stays there.
    let from = c[first.index].credential;
    record(&s, key, from, &answer(429, Trigger::RateLimited), NOW + 20).await;
    let moved = served(s.pick(ask(key, &c, &[], &[], NOW + 21, sticky("a"))).await).unwrap();
    assert_ne!(moved, first.index);
    let stays = s.pick(ask(key, &c, &[], &[], NOW + 22, sticky("a"))).await;
    assert!(matches!(stays, Choice::Serve(s) if s.index == moved && s.sticky_hit));
    // Expired after its TTL without use: the rotation decides again (not a hit).
    let later = s
        .pick(ask(key, &c, &[], &[], NOW + 22 + 300_001, sticky("a")))
        .await;
    assert!(matches!(later, Choice::Serve(s) if !s.sticky_hit));
}

#[tokio::test]
async fn a_full_client_minute_refuses_before_the_pool_is_touched() {
    let s = MemoryState::default();
    let key = pool();
    let c = candidates(2);
    let client = crate::state::ClientAdmit {
        workspace: key.workspace,
        key: Uuid::new_v4(),
        limits: Limits {
            rpm: Some(2),
            tpm: None,
        },
    };
    let served = |choice: Choice| match choice {
        Choice::Serve(s) => s.index,
        other => panic!("{other:?}"),
    };
    let mut first = ask(key, &c, &[], &[], NOW, None);
    first.client = Some(client);
    let a = served(s.pick(first).await);
    let b = served(s.pick(first).await);
    assert_ne!(a, b, "the rotation serves both");
    let minute_end = (NOW / 60_000 + 1) * 60_000;
    assert_eq!(
        s.pick(first).await,
        Choice::ClientFull {
            until_ms: minute_end
        }
    );
    // The refused pick advanced nothing: the rotation goes on where it was.
    let plain = ask(key, &c, &[], &[], NOW, None);
    assert_eq!(served(s.pick(plain).await), a);
    // Failover picks of an admitted request carry no client and are never refused.
    assert_eq!(served(s.pick(plain).await), b);
    // Next minute, room again.
    let mut later = ask(key, &c, &[], &[], minute_end, None);
    later.client = Some(client);
    assert!(matches!(s.pick(later).await, Choice::Serve(_)));
}

/// One step of a pool's history: a pick (a retry when `retry`) and what the served entry
/// answered, then time moving on.
#[derive(Debug, Clone)]
struct Step {
    retry: bool,
    answer: u8,
    advance_ms: u64,
    reset: bool,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    (
        prop::bool::weighted(0.1),
        // Mostly successes, so that the pool runs long enough unchanged to be replayed.
        (0u8..64).prop_map(|a| a.saturating_sub(59)),
        prop::sample::select(vec![0u64, 0, 0, 5, 500, 4_000, 30_000, 120_000]),
        prop::bool::weighted(0.02),
    )
        .prop_map(|(retry, answer, advance_ms, reset)| Step {
            retry,
            answer,
            advance_ms,
            reset,
        })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    #[test]
    fn the_replayed_rotation_serves_exactly_what_the_full_pick_serves(
        weights in proptest::collection::vec(1u32..5, 1..7),
        steps in proptest::collection::vec(step(), 1..400),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let replayed = MemoryState::default();
        let full = MemoryState { no_replay: true, ..MemoryState::default() };
        let key = pool();
        let c: Vec<Candidate> = weights
            .iter()
            .map(|&weight| Candidate { credential: Uuid::new_v4(), weight })
            .collect();
        let answers = [
            answer(200, Trigger::Success),
            answer(429, Trigger::RateLimited),
            answer(500, Trigger::Transient),
            answer(401, Trigger::Rejected),
            answer(402, Trigger::QuotaExhausted),
        ];
        let mut now = NOW;
        for (n, step) in steps.iter().enumerate() {
            let tried = if step.retry { vec![c[n % c.len()].credential] } else { Vec::new() };
            let a = replayed.pick_now(ask(key, &c, &[], &tried, now, None));
            let b = full.pick_now(ask(key, &c, &[], &tried, now, None));
            proptest::prop_assert_eq!(a, b, "step {}", n);
            if let Some(i) = served(a) {
                let answer = &answers[usize::from(step.answer)];
                for s in [&replayed, &full] {
                    rt.block_on(record(s, key, c[i].credential, answer, now));
                }
            }
            if step.reset {
                let all: Vec<Uuid> = c.iter().map(|c| c.credential).collect();
                for s in [&replayed, &full] {
                    rt.block_on(s.reset(key, &all, now));
                }
            }
            now += step.advance_ms;
        }
    }
}
