//! The upstream address policy (the SSRF guard): checked against every resolved address at
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

mod ranges;
#[cfg(test)]
mod tests;

use ipnet::IpNet;
use ranges::{canonical, is_private, is_reserved};
use std::net::IpAddr;

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
