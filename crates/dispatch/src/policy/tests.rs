//! The policy's rules against every address form: tables of known addresses and property
//! tests that an embedded IPv4 address is judged like the address itself. Pure: the policy is
//! a function of the address, and nothing here opens a socket, resolves a name or sends a
//! request (the end-to-end refusal runs in a private network namespace,
//! `crates/dispatch/tests/it/netns.rs`).

use super::ranges::embedded_ipv4;
use super::*;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn nets(list: &[&str]) -> Vec<Rule> {
    list.iter().map(|n| Rule::Net(n.parse().unwrap())).collect()
}

/// Allows every address and every private range: only the always-refused rules remain.
fn allow_everything() -> AddressPolicy {
    AddressPolicy {
        allow: nets(&["0.0.0.0/0", "::/0"]),
        deny: vec![],
        allow_private_by_default: true,
    }
}

/// `v4` in each IPv6 form that embeds it; `free` fills the bits a form leaves open.
fn embeddings(v4: Ipv4Addr, free: u128) -> Vec<(&'static str, Ipv6Addr)> {
    let x = u128::from(u32::from(v4));
    let mut forms = vec![
        ("mapped", Ipv6Addr::from(0xffff_u128 << 32 | x)),
        ("translated", Ipv6Addr::from(0xffff_u128 << 48 | x)),
        ("nat64", Ipv6Addr::from(0x0064_ff9b_u128 << 96 | x)),
        (
            "nat64 local-use",
            Ipv6Addr::from(0x0064_ff9b_0001_u128 << 80 | (free & (u128::MAX >> 80)) << 32 | x),
        ),
        (
            "6to4",
            Ipv6Addr::from(0x2002_u128 << 112 | x << 80 | (free & (u128::MAX >> 48))),
        ),
    ];
    // `::` and `::1` are the unspecified and loopback addresses, not IPv4-compatible.
    if x > 1 {
        forms.push(("compatible", Ipv6Addr::from(x)));
    }
    forms
}

#[test]
fn defaults_refuse_private_and_always_refuse_metadata() {
    let p = AddressPolicy::default();
    assert_eq!(p.check(None, ip("127.0.0.1")), Err(Blocked::Private));
    assert_eq!(p.check(None, ip("10.1.2.3")), Err(Blocked::Private));
    assert_eq!(
        p.check(None, ip("::ffff:192.168.1.1")),
        Err(Blocked::Private)
    );
    assert_eq!(p.check(None, ip("169.254.169.254")), Err(Blocked::Reserved));
    assert_eq!(p.check(None, ip("fd00:ec2::254")), Err(Blocked::Reserved));
    assert_eq!(p.check(None, ip("0.0.0.0")), Err(Blocked::Reserved));
    assert!(p.check(None, ip("93.184.216.34")).is_ok());
}

#[test]
fn allow_lifts_private_deny_wins_and_metadata_stays_refused() {
    let p = AddressPolicy {
        allow: vec![
            Rule::Net("127.0.0.0/8".parse().unwrap()),
            Rule::Net("169.254.0.0/16".parse().unwrap()),
            Rule::Host("*.corp.example".into()),
        ],
        deny: vec![
            Rule::Net("127.0.0.2/32".parse().unwrap()),
            Rule::Host("bad.example".into()),
        ],
        allow_private_by_default: false,
    };
    assert!(p.check(None, ip("127.0.0.1")).is_ok());
    assert_eq!(p.check(None, ip("127.0.0.2")), Err(Blocked::Denied));
    assert_eq!(p.check(None, ip("169.254.169.254")), Err(Blocked::Reserved));
    assert!(p.check(Some("llm.corp.example"), ip("10.0.0.5")).is_ok());
    assert_eq!(
        p.check(Some("bad.example"), ip("93.184.216.34")),
        Err(Blocked::Denied)
    );
    assert_eq!(p.check_host("BAD.example."), Err(Blocked::Denied));
    let embedded = AddressPolicy {
        allow_private_by_default: true,
        ..Default::default()
    };
    assert!(embedded.check(None, ip("127.0.0.1")).is_ok());
    assert_eq!(
        embedded.check(None, ip("169.254.169.254")),
        Err(Blocked::Reserved)
    );
}

#[test]
fn every_ipv6_form_of_an_ipv4_address_is_recognised() {
    let v4 = Ipv4Addr::new(169, 254, 169, 254);
    for (form, v6) in embeddings(v4, u128::MAX) {
        assert_eq!(embedded_ipv4(v6), Some(v4), "{form} {v6}");
    }
    for literal in [
        "::ffff:169.254.169.254",
        "::ffff:0:a9fe:a9fe",
        "::a9fe:a9fe",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::a9fe:a9fe",
        "64:ff9b:1:ffff:ffff:ffff:a9fe:a9fe",
        "2002:a9fe:a9fe::1",
        "2002:a9fe:a9fe:ffff:ffff:ffff:ffff:ffff",
    ] {
        let v6: Ipv6Addr = literal.parse().unwrap();
        assert_eq!(embedded_ipv4(v6), Some(v4), "{literal}");
    }
    for plain in [
        "::",
        "::1",
        "64:ff9b:0:0:1::a9fe:a9fe",
        "64:ff9b:2::a9fe:a9fe",
        "2001:db8::a9fe:a9fe",
        "2003:a9fe:a9fe::1",
        "fd00:ec2::254",
    ] {
        let v6: Ipv6Addr = plain.parse().unwrap();
        assert_eq!(embedded_ipv4(v6), None, "{plain}");
    }
}

#[test]
fn metadata_and_link_local_are_refused_in_every_form_whatever_the_lists_say() {
    let policies = [
        AddressPolicy::default(),
        allow_everything(),
        AddressPolicy {
            allow: nets(&["0.0.0.0/0", "::/0"]),
            ..Default::default()
        },
    ];
    let always_refused_v4 = [
        "169.254.169.254", // AWS, GCP, Azure, OCI, OpenStack metadata
        "169.254.170.2",   // AWS ECS task credentials
        "169.254.170.23",  // AWS EKS Pod Identity
        "169.254.0.1",
        "168.63.129.16",   // Azure WireServer
        "100.100.100.200", // Alibaba Cloud metadata
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
    ];
    let mut refused: Vec<IpAddr> = vec![
        ip("fe80::1"),
        ip("febf::1"),
        ip("fd00:ec2::254"),
        ip("fd00:ec2::23"),
        ip("::"),
        ip("ff02::1"),
        // The examples the security review named, spelled as people write them.
        ip("64:ff9b::a9fe:a9fe"),
        ip("64:ff9b::169.254.169.254"),
        ip("2002:a9fe:a9fe::1"),
        ip("::a9fe:a9fe"),
        ip("::ffff:a83f:8110"),
        ip("64:ff9b:1::6464:64c8"),
    ];
    for v4 in always_refused_v4 {
        let v4: Ipv4Addr = v4.parse().unwrap();
        refused.push(IpAddr::V4(v4));
        for free in [0, u128::MAX, 0x1234_5678_9abc_def0_1234_5678] {
            refused.extend(embeddings(v4, free).into_iter().map(|(_, a)| IpAddr::V6(a)));
        }
    }
    for p in &policies {
        for a in &refused {
            assert_eq!(p.check(None, *a), Err(Blocked::Reserved), "{a} with {p:?}");
        }
    }
}

#[test]
fn ordinary_public_addresses_are_allowed_in_every_form() {
    let p = AddressPolicy::default();
    for a in ["93.184.216.34", "8.8.8.8", "192.0.2.1", "2606:4700::1111"] {
        assert_eq!(p.check(None, ip(a)), Ok(()), "{a}");
    }
    for v4 in [Ipv4Addr::new(93, 184, 216, 34), Ipv4Addr::new(8, 8, 8, 8)] {
        for (form, v6) in embeddings(v4, 0xabcd) {
            assert_eq!(p.check(None, IpAddr::V6(v6)), Ok(()), "{form} {v6}");
        }
    }
}

#[test]
fn embedded_private_addresses_are_private_unless_their_ipv4_range_is_allowed() {
    let private = [
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(192, 168, 1, 1),
        Ipv4Addr::new(100, 64, 0, 1),
    ];
    let default = AddressPolicy::default();
    // An IPv6 allow entry does not cover the IPv4 address an IPv6 form carries.
    let allow_v6 = AddressPolicy {
        allow: nets(&["::/0"]),
        ..Default::default()
    };
    let allow_v4 = AddressPolicy {
        allow: nets(&[
            "10.0.0.0/8",
            "127.0.0.0/8",
            "192.168.0.0/16",
            "100.64.0.0/10",
        ]),
        ..Default::default()
    };
    let by_default = AddressPolicy {
        allow_private_by_default: true,
        ..Default::default()
    };
    for v4 in private {
        for (form, v6) in embeddings(v4, 7) {
            let a = IpAddr::V6(v6);
            assert_eq!(default.check(None, a), Err(Blocked::Private), "{form} {a}");
            assert_eq!(allow_v6.check(None, a), Err(Blocked::Private), "{form} {a}");
            assert_eq!(allow_v4.check(None, a), Ok(()), "{form} {a}");
            assert_eq!(by_default.check(None, a), Ok(()), "{form} {a}");
        }
    }
    assert_eq!(
        default.check(None, ip("::ffff:127.0.0.1")),
        Err(Blocked::Private)
    );
    assert_eq!(
        default.check(None, ip("::ffff:10.0.0.1")),
        Err(Blocked::Private)
    );
    // `::1` stays IPv6 loopback (not 0.0.0.1) and an IPv6 entry admits it.
    assert_eq!(default.check(None, ip("::1")), Err(Blocked::Private));
    let loopback6 = AddressPolicy {
        allow: nets(&["::1/128"]),
        ..Default::default()
    };
    assert_eq!(loopback6.check(None, ip("::1")), Ok(()));
}

#[test]
fn deny_matches_the_embedded_address_and_the_ipv6_form_as_written() {
    let p = AddressPolicy {
        allow: nets(&["0.0.0.0/0", "::/0"]),
        deny: nets(&["8.8.8.0/24", "2002::/16"]),
        allow_private_by_default: false,
    };
    assert_eq!(p.check(None, ip("64:ff9b::808:808")), Err(Blocked::Denied));
    assert_eq!(p.check(None, ip("::ffff:8.8.8.8")), Err(Blocked::Denied));
    assert_eq!(p.check(None, ip("2002:5db8:d822::1")), Err(Blocked::Denied));
    assert_eq!(p.check(None, ip("64:ff9b::5db8:d822")), Ok(()));
    // Reserved wins over deny too: the reason given is the stronger one.
    assert_eq!(
        p.check(None, ip("2002:a9fe:a9fe::1")),
        Err(Blocked::Reserved)
    );
}

fn sample_policies() -> Vec<AddressPolicy> {
    vec![
        AddressPolicy::default(),
        allow_everything(),
        AddressPolicy {
            allow: nets(&["0.0.0.0/0", "::/0"]),
            ..Default::default()
        },
        AddressPolicy {
            allow: nets(&["10.0.0.0/8", "::/0"]),
            deny: nets(&["8.0.0.0/8", "10.9.0.0/16"]),
            allow_private_by_default: false,
        },
        AddressPolicy {
            allow: vec![],
            deny: nets(&["93.184.216.0/24"]),
            allow_private_by_default: true,
        },
    ]
}

proptest! {
    #[test]
    fn an_embedded_ipv4_address_is_judged_exactly_like_the_address_itself(
        bits in any::<u32>(),
        free in any::<u128>(),
    ) {
        let v4 = Ipv4Addr::from(bits);
        for p in sample_policies() {
            let expected = p.check(None, IpAddr::V4(v4));
            for (form, v6) in embeddings(v4, free) {
                prop_assert_eq!(
                    p.check(None, IpAddr::V6(v6)),
                    expected,
                    "{} {} of {} with {:?}", form, v6, v4, p
                );
            }
        }
    }

    #[test]
    fn reserved_ipv4_ranges_stay_refused_in_every_form(
        host in any::<u16>(),
        free in any::<u128>(),
    ) {
        let [a, b] = host.to_be_bytes();
        let v4 = Ipv4Addr::new(169, 254, a, b);
        for (form, v6) in embeddings(v4, free) {
            prop_assert_eq!(
                allow_everything().check(None, IpAddr::V6(v6)),
                Err(Blocked::Reserved),
                "{} {}", form, v6
            );
        }
    }
}
