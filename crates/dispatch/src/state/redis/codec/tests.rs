//! The stored forms: fixed examples, garbled values, and a round trip of every record.

use super::*;
use proptest::prelude::*;

#[test]
fn entry_forms_are_what_the_pick_script_reads() {
    let r = EntryRecord {
        circuit: Circuit::Open {
            reason: CoolReason::Transient,
            until_ms: 1_700_000_010_000,
            step: 2,
        },
        window: Window::default(),
        last_error: Some(LastError {
            status: Some(503),
            code: None,
            at_ms: 1_700_000_000_000,
        }),
    };
    assert_eq!(encode_entry(&r), "t:1700000010000:2|503:1700000000000:-");
    assert_eq!(decode_entry(&encode_entry(&r)), r);
    assert_eq!(encode_entry(&EntryRecord::default()), "c|");
    let h = EntryRecord {
        circuit: Circuit::HalfOpen {
            step: 1,
            trial_until_ms: 0,
        },
        ..EntryRecord::default()
    };
    assert_eq!(encode_entry(&h), "h:1:0|");
}

#[test]
fn credential_forms() {
    let r = CredentialRecord {
        state: CredentialState::Rejected { since_ms: 5 },
        last_error: Some(LastError {
            status: None,
            code: Some("a:b|c".into()),
            at_ms: 5,
        }),
    };
    assert_eq!(encode_credential(&r), "x:5|:5:=a:b|c");
    assert_eq!(decode_credential(&encode_credential(&r)), r);
}

#[test]
fn garbled_values_read_as_available() {
    for v in ["", "zz", "t:abc:1|", "h:999:1|", "r:5|", "x:|", "q:1|"] {
        assert_eq!(decode_entry(v).circuit, Circuit::Closed, "{v}");
        assert_eq!(
            decode_credential(v).state,
            CredentialState::Available,
            "{v}"
        );
    }
    assert_eq!(decode_entry("c|garbage").last_error, None);
    assert_eq!(decode_window("1:x:3"), Window::default());
}

fn error() -> impl Strategy<Value = Option<LastError>> {
    proptest::option::of(
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(".{0,12}"),
            any::<u64>(),
        )
            .prop_map(|(status, code, at_ms)| LastError {
                status,
                code,
                at_ms,
            }),
    )
}

fn circuit() -> impl Strategy<Value = Circuit> {
    prop_oneof![
        Just(Circuit::Closed),
        (any::<bool>(), any::<u64>(), any::<u8>()).prop_map(|(r, until_ms, step)| Circuit::Open {
            reason: if r {
                CoolReason::RateLimited
            } else {
                CoolReason::Transient
            },
            until_ms,
            step,
        }),
        (any::<u8>(), any::<u64>()).prop_map(|(step, trial_until_ms)| Circuit::HalfOpen {
            step,
            trial_until_ms,
        }),
    ]
}

fn state() -> impl Strategy<Value = CredentialState> {
    prop_oneof![
        Just(CredentialState::Available),
        (any::<u64>(), any::<u64>()).prop_map(|(until_ms, since_ms)| {
            CredentialState::QuotaExhausted { until_ms, since_ms }
        }),
        any::<u64>().prop_map(|since_ms| CredentialState::Rejected { since_ms }),
    ]
}

proptest! {
    #[test]
    fn records_round_trip(c in circuit(), s in state(), e in error(), m in any::<u64>(), r in any::<u32>(), t in any::<u64>()) {
        let entry = EntryRecord { circuit: c, window: Window::default(), last_error: e.clone() };
        prop_assert_eq!(decode_entry(&encode_entry(&entry)), entry);
        let cred = CredentialRecord { state: s, last_error: e };
        prop_assert_eq!(decode_credential(&encode_credential(&cred)), cred);
        let w = Window { minute: m, requests: r, tokens: t };
        prop_assert_eq!(decode_window(&encode_window(w)), w);
    }
}
