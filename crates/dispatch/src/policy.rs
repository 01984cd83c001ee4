//! The upstream address policy (DESIGN §4, §11): checked against every resolved address at
//! connect time, for the gateway and for credential validation.
//!
//! Order of rules: link-local, metadata, unspecified and multicast addresses are always
//! refused; then `deny` wins; then `allow` admits; loopback and private ranges are refused
//! unless the policy allows them by default (the embedded default does); anything else is
//! allowed.

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

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn is_reserved(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.octets()[0] == 0
                // Alibaba Cloud's metadata service.
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
        }
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.is_unspecified()
                || v6.is_multicast()
                // AWS's IPv6 metadata endpoint.
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
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
        let ip = canonical(ip);
        if is_reserved(ip) {
            return Err(Blocked::Reserved);
        }
        if self.deny.iter().any(|r| r.matches(host, ip)) {
            return Err(Blocked::Denied);
        }
        if self.allow.iter().any(|r| r.matches(host, ip)) {
            return Ok(());
        }
        if is_private(ip) && !self.allow_private_by_default {
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
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
}
