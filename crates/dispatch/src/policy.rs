//! The upstream address policy (DESIGN §4, §11): checked against every resolved address at
//! connect time, for the gateway and for credential validation.
//!
//! Order of rules: link-local, metadata, unspecified and multicast addresses are always
//! refused; then `deny` wins; then `allow` admits; loopback and private ranges are refused
//! unless the policy allows them by default (the embedded default does); anything else is
//! allowed.
//!
//! An IPv6 address that embeds an IPv4 address (mapped, translated, compatible, NAT64, 6to4)
//! is judged as that IPv4 address by every rule (see SECURITY.md), so no list entry such as
//! `::/0` can admit an embedded metadata or private address; a `deny` entry also matches the
//! IPv6 form as written.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One allow/deny entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// An address range.
    Net(IpNet),
    /// A host name; `*.example.com` matches its subdomains.
    Host(String),
}

impl Rule {
    fn matches(&self, host: Option<&str>, ip: IpAddr) -> bool {
        match self {
            Rule::Net(net) => net.contains(&ip),
            Rule::Host(pattern) => host.is_some_and(|h| host_matches(pattern, h)),
        }
    }

    fn matches_host(&self, host: &str) -> bool {
        matches!(self, Rule::Host(p) if host_matches(p, host))
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        None => host == pattern,
    }
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    /// Link-local, cloud metadata, unspecified, broadcast or multicast: never reachable.
    #[error("link-local, metadata or non-unicast address")]
    Reserved,
    /// Listed in `ROTOR_UPSTREAM_DENY`.
    #[error("address is denied by ROTOR_UPSTREAM_DENY")]
    Denied,
    /// Loopback or private range, not listed in `ROTOR_UPSTREAM_ALLOW`.
    #[error("loopback or private address is not in ROTOR_UPSTREAM_ALLOW")]
    Private,
}

/// The configured policy.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    /// Lifts the default refusal of loopback and private ranges for what it lists.
    pub allow: Vec<Rule>,
    /// Refuses what it lists (wins over `allow`).
    pub deny: Vec<Rule>,
    /// Whether loopback and private ranges are allowed without being listed.
    pub allow_private_by_default: bool,
}

/// The IPv4 address carried by an IPv6 address of a form that embeds one: IPv4-mapped
/// `::ffff:a.b.c.d`, IPv4-translated (SIIT) `::ffff:0:a.b.c.d`, IPv4-compatible `::a.b.c.d`
/// (deprecated; not `::` or `::1`), NAT64 `64:ff9b::/96` and local-use `64:ff9b:1::/48`
/// (RFC 6052, RFC 8215; the last 32 bits, as for a /96 prefix), and 6to4 `2002::/16`
/// (bits 16..48).
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = v6.octets();
    let last32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match v6.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(last32),
        [0, 0, 0, 0, 0, 0, _, _] if !v6.is_unspecified() && !v6.is_loopback() => Some(last32),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Some(last32),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

/// The address the rules judge: the embedded IPv4 address if there is one, else `ip`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_ipv4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn is_reserved(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_link_local() // includes 169.254.169.254, the usual metadata service
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.octets()[0] == 0
                // Alibaba Cloud's metadata service.
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
                // Azure's WireServer (platform agent, extension settings).
                || v4 == Ipv4Addr::new(168, 63, 129, 16)
        }
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.is_unspecified()
                || v6.is_multicast()
                // AWS's IPv6 instance metadata service.
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                // AWS's EKS Pod Identity credentials agent (IPv6 twin of 169.254.170.23).
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)
        }
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
        }
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

impl AddressPolicy {
    /// Whether `ip` (reached through `host`, when it was a name) may be connected to.
    pub fn check(&self, host: Option<&str>, ip: IpAddr) -> Result<(), Blocked> {
        let judged = canonical(ip);
        if is_reserved(judged) {
            return Err(Blocked::Reserved);
        }
        if self
            .deny
            .iter()
            .any(|r| r.matches(host, judged) || r.matches(host, ip))
        {
            return Err(Blocked::Denied);
        }
        if self.allow.iter().any(|r| r.matches(host, judged)) {
            return Ok(());
        }
        if is_private(judged) && !self.allow_private_by_default {
            return Err(Blocked::Private);
        }
        Ok(())
    }

    /// Whether a host name is refused outright by a `deny` host rule (checked before resolving).
    pub fn check_host(&self, host: &str) -> Result<(), Blocked> {
        if self.deny.iter().any(|r| r.matches_host(host)) {
            return Err(Blocked::Denied);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
}
