//! The state machine of §14: every trigger lands in its state, cooldowns never shorten,
//! half-open trials go one at a time with doubling backoff, resets never clear a rejection.

use super::*;
use http::header::HeaderMap;
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000_000;
const COOLDOWN_S: u32 = 60;
const LEASE: u64 = DEFAULT_TRIAL_LEASE_MS;

fn answer(trigger: Trigger, reset_s: Option<u64>) -> Classified {
    Classified {
        trigger,
        reset: reset_s.map(Duration::from_secs),
        status: Some(match trigger {
            Trigger::Success => 200,
            Trigger::RateLimited | Trigger::QuotaExhausted => 429,
            Trigger::Rejected => 401,
            Trigger::Transient => 503,
            Trigger::Other => 400,
        }),
        code: None,
    }
}

/// The entry and the credential after one answer at `NOW`.
fn after(a: &Classified) -> (EntryRecord, CredentialRecord) {
    let mut e = EntryRecord::default();
    let mut c = CredentialRecord::default();
    e.record(a, COOLDOWN_S, NOW);
    c.record(a, DEFAULT_QUOTA_COOLDOWN_S, NOW);
    (e, c)
}

fn cooling(reason: CoolReason, secs: u64, step: u8) -> Circuit {
    Circuit::Open {
        reason,
        until_ms: NOW + secs * 1000,
        step,
    }
}

#[test]
fn every_trigger_lands_in_its_state() {
    use CoolReason::*;
    let cases: [(Classified, Circuit, CredentialState); 8] = [
        (
            answer(Trigger::Success, None),
            Circuit::Closed,
            CredentialState::Available,
        ),
        // `-remaining: 0` on a success: until that limit's reset, not `cooldown_seconds`.
        (
            answer(Trigger::Success, Some(5)),
            cooling(RateLimited, 5, 0),
            CredentialState::Available,
        ),
        (
            answer(Trigger::RateLimited, None),
            cooling(RateLimited, 60, 0),
            CredentialState::Available,
        ),
        (
            answer(Trigger::RateLimited, Some(120)),
            cooling(RateLimited, 120, 0),
            CredentialState::Available,
        ),
        (
            answer(Trigger::Transient, None),
            cooling(Transient, 10, 1),
            CredentialState::Available,
        ),
        (
            answer(Trigger::QuotaExhausted, None),
            Circuit::Closed,
            CredentialState::QuotaExhausted {
                until_ms: NOW + 3_600_000,
                since_ms: NOW,
            },
        ),
        (
            answer(Trigger::Rejected, None),
            Circuit::Closed,
            CredentialState::Rejected { since_ms: NOW },
        ),
        (
            answer(Trigger::Other, None),
            Circuit::Closed,
            CredentialState::Available,
        ),
    ];
    for (a, circuit, state) in cases {
        let (e, c) = after(&a);
        assert_eq!((e.circuit, c.state), (circuit, state), "{a:?}");
        assert_eq!(e.last_error.is_some(), a.trigger.is_error(), "{a:?}");
    }
    // Through the classifier, with a transport failure too.
    let t = after(&transport()).0;
    assert_eq!(t.circuit, cooling(Transient, 10, 1));
    assert_eq!(
        t.last_error,
        Some(LastError {
            status: None,
            code: None,
            at_ms: NOW
        })
    );
    let quota = classify(
        crate::target::Family::OpenAi,
        429,
        &HeaderMap::new(),
        br#"{"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}"#,
        NOW,
    );
    let (e, c) = after(&quota);
    assert_eq!(
        e.circuit,
        Circuit::Closed,
        "the quota is credential-wide, not the entry's"
    );
    assert_eq!(c.health(NOW).state, CredentialLabel::QuotaExhausted);
    let shown = EntryStatus::of(&e, &c, Limits::default(), NOW + 1_500);
    assert_eq!(
        (shown.state, shown.cooldown_remaining_s),
        (EntryLabel::QuotaExhausted, 3599)
    );
    assert_eq!(
        shown.last_error.and_then(|e| e.code).as_deref(),
        Some("insufficient_quota")
    );
}

#[test]
fn credential_changes_are_reported_once() {
    let mut c = CredentialRecord::default();
    let quota = answer(Trigger::QuotaExhausted, None);
    let rejected = answer(Trigger::Rejected, None);
    assert_eq!(c.record(&quota, 60, NOW), Some(Change::QuotaExhausted));
    assert_eq!(c.record(&quota, 60, NOW + 10), None, "already exhausted");
    assert_eq!(c.record(&rejected, 60, NOW + 20), Some(Change::Rejected));
    assert_eq!(
        c.record(&quota, 60, NOW + 30),
        None,
        "rejected is the stronger state"
    );
    assert_eq!(c.state, CredentialState::Rejected { since_ms: NOW + 20 });
    assert_eq!(c.reset(NOW + 40), None, "a reset never clears a rejection");
    assert_eq!(c.recover(NOW + 50), Some(Change::Recovered));
    assert_eq!(c.recover(NOW + 60), None);
    assert_eq!(Change::Recovered.action(), "credential.recovered");
    // A spent quota returns by itself at its deadline.
    assert_eq!(c.record(&quota, 60, NOW), Some(Change::QuotaExhausted));
    assert!(!c.state.admits(NOW + 59_999));
    assert!(c.state.admits(NOW + 60_000));
    let h = c.health(NOW + 60_000);
    assert_eq!(
        (h.state, h.since_ms),
        (CredentialLabel::Available, Some(NOW + 60_000))
    );
}

#[test]
fn a_half_open_entry_shows_as_cooling_with_nothing_left_and_limits_show_their_use() {
    let mut e = EntryRecord::default();
    e.record(&transport(), COOLDOWN_S, NOW);
    let c = CredentialRecord::default();
    let limits = Limits {
        rpm: Some(2),
        tpm: None,
    };
    let s = EntryStatus::of(&e, &c, limits, NOW + 4_001);
    assert_eq!(
        (s.state, s.reason, s.cooldown_remaining_s),
        (EntryLabel::CoolingDown, Some(CoolReason::Transient), 6)
    );
    let s = EntryStatus::of(&e, &c, limits, NOW + 10_000);
    assert_eq!(
        (s.state, s.cooldown_remaining_s),
        (EntryLabel::CoolingDown, 0)
    );
    assert!(e.admit(NOW + 10_000, LEASE), "the trial");
    e.record(&answer(Trigger::Success, None), COOLDOWN_S, NOW + 10_500);
    assert!(!e.admit(NOW + 10_600, LEASE), "closed: no trial");
    let s = EntryStatus::of(&e, &c, limits, NOW + 10_700);
    assert_eq!(
        (s.state, s.rpm_used, s.tpm_used),
        (EntryLabel::AtCapacity, Some(2), Some(0))
    );
    let s = EntryStatus::of(&e, &c, Limits::default(), NOW + 10_700);
    assert_eq!((s.state, s.rpm_used), (EntryLabel::Available, None));
}

fn trigger() -> impl Strategy<Value = Classified> {
    let t = prop_oneof![
        Just(Trigger::Success),
        Just(Trigger::RateLimited),
        Just(Trigger::QuotaExhausted),
        Just(Trigger::Rejected),
        Just(Trigger::Transient),
        Just(Trigger::Other),
    ];
    (t, prop::option::of(0u64..4_000)).prop_map(|(t, r)| answer(t, r))
}

proptest! {
    #[test]
    fn a_running_cooldown_is_never_shortened(
        answers in prop::collection::vec((trigger(), 0u64..120_000, any::<bool>()), 1..40),
    ) {
        let mut e = EntryRecord::default();
        let mut now = NOW;
        for (a, dt, pick) in answers {
            now += dt;
            if pick {
                e.admit(now, LEASE);
            }
            let before = e.circuit.at(now);
            e.record(&a, COOLDOWN_S, now);
            if let Circuit::Open { until_ms, .. } = before {
                let kept = matches!(e.circuit, Circuit::Open { until_ms: after, .. } if after >= until_ms);
                prop_assert!(kept, "{:?} became {:?} after {:?}", before, e.circuit, a);
            }
        }
    }

    #[test]
    fn failed_trials_double_the_cooldown_up_to_five_minutes(failures in 1usize..14, then_succeed in any::<bool>()) {
        let mut e = EntryRecord::default();
        let mut now = NOW;
        e.record(&transport(), COOLDOWN_S, now);
        let mut lengths = vec![10_000];
        for _ in 0..failures {
            let Circuit::Open { until_ms, .. } = e.circuit else { unreachable!() };
            prop_assert!(!e.can_serve(Limits::default(), until_ms - 1));
            now = until_ms;
            prop_assert!(e.can_serve(Limits::default(), now), "half-open at the deadline");
            prop_assert!(e.admit(now, LEASE));
            prop_assert!(!e.can_serve(Limits::default(), now), "one trial at a time");
            now += 200;
            e.record(&answer(Trigger::Transient, None), COOLDOWN_S, now);
            let Circuit::Open { until_ms, reason, .. } = e.circuit else { unreachable!() };
            prop_assert_eq!(reason, CoolReason::Transient);
            lengths.push(until_ms - now);
        }
        let expected: Vec<u64> = (0..=failures as u32).map(|k| (10_000u64 << k.min(10)).min(300_000)).collect();
        prop_assert_eq!(lengths, expected);
        let Circuit::Open { until_ms, .. } = e.circuit else { unreachable!() };
        now = until_ms;
        prop_assert!(e.admit(now, LEASE));
        if then_succeed {
            e.record(&answer(Trigger::Success, None), COOLDOWN_S, now + 100);
            prop_assert_eq!(e.circuit, Circuit::Closed);
            // The backoff starts over.
            e.record(&transport(), COOLDOWN_S, now + 200);
            prop_assert_eq!(e.circuit.back_at(now + 200), Some(now + 10_200));
        } else {
            // A trial nobody reports on is given up after its lease: another may go.
            prop_assert!(!e.can_serve(Limits::default(), now + LEASE - 1));
            prop_assert!(e.admit(now + LEASE, LEASE));
        }
    }

    #[test]
    fn a_half_open_entry_hands_out_exactly_one_trial(picks in prop::collection::vec(0u64..5_000, 1..20)) {
        let mut e = EntryRecord::default();
        e.record(&transport(), COOLDOWN_S, NOW);
        let start = NOW + 10_000;
        let mut times: Vec<u64> = picks.iter().map(|dt| start + dt).collect();
        times.sort_unstable();
        let trials = times
            .iter()
            .filter(|t| e.can_serve(Limits::default(), **t) && e.admit(**t, LEASE))
            .count();
        prop_assert_eq!(trials, 1);
        // Whatever settles it without a verdict (a client error, a quota) frees the next trial.
        e.record(&answer(Trigger::Other, None), COOLDOWN_S, start + 6_000);
        prop_assert!(e.admit(start + 6_000, LEASE));
    }

    #[test]
    fn reset_clears_everything_but_a_rejection(answers in prop::collection::vec((trigger(), 0u64..60_000), 0..30)) {
        let mut e = EntryRecord::default();
        let mut c = CredentialRecord::default();
        let limits = Limits { rpm: Some(1), tpm: Some(10) };
        let mut now = NOW;
        for (a, dt) in &answers {
            now += dt;
            e.admit(now, LEASE);
            e.count_tokens(50, now);
            e.record(a, COOLDOWN_S, now);
            c.record(a, DEFAULT_QUOTA_COOLDOWN_S, now);
        }
        let rejected = matches!(c.state, CredentialState::Rejected { .. });
        let last_error = e.last_error.clone();
        e.reset();
        c.reset(now);
        prop_assert_eq!(e.state(limits, now), EntryState::Available);
        prop_assert_eq!(e.last_error.clone(), last_error, "history stays");
        prop_assert_eq!(matches!(c.state, CredentialState::Rejected { .. }), rejected);
        prop_assert_eq!(c.state.admits(now), !rejected);
        let label = EntryStatus::of(&e, &c, limits, now).state;
        prop_assert_eq!(label, if rejected { EntryLabel::Rejected } else { EntryLabel::Available });
    }

    #[test]
    fn a_quota_cooldown_never_shortens(first in 60u32..7_200, second in 60u32..7_200, gap in 0u64..3_600_000) {
        let mut c = CredentialRecord::default();
        let quota = answer(Trigger::QuotaExhausted, None);
        c.record(&quota, first, NOW);
        let CredentialState::QuotaExhausted { until_ms: a, .. } = c.state else { unreachable!() };
        c.record(&quota, second, NOW + gap);
        let expected = if NOW + gap >= a { NOW + gap + u64::from(second) * 1000 } else { a.max(NOW + gap + u64::from(second) * 1000) };
        let since = if NOW + gap >= a { NOW + gap } else { NOW };
        prop_assert_eq!(c.state, CredentialState::QuotaExhausted { until_ms: expected, since_ms: since });
    }

    #[test]
    fn windows_count_per_utc_minute(events in prop::collection::vec((0u64..30_000, 0u64..500), 1..60), rpm in 1u32..10, tpm in 100u64..3_000) {
        let mut e = EntryRecord::default();
        let limits = Limits { rpm: Some(rpm), tpm: Some(tpm) };
        let mut now = NOW;
        let (mut minute, mut requests, mut tokens) = (now / MINUTE_MS, 0u32, 0u64);
        for (dt, used) in events {
            now += dt;
            if now / MINUTE_MS != minute {
                (minute, requests, tokens) = (now / MINUTE_MS, 0, 0);
            }
            let full = requests >= rpm || tokens >= tpm;
            prop_assert_eq!(e.can_serve(limits, now), !full);
            if full {
                prop_assert_eq!(e.state(limits, now), EntryState::AtCapacity { until_ms: (minute + 1) * MINUTE_MS });
            } else {
                e.admit(now, LEASE);
                e.count_tokens(used, now);
                requests += 1;
                tokens += used;
            }
        }
    }
}
