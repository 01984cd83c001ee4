//! Which addresses are special to the policy: the IPv4 address an IPv6 form embeds, the
//! always-refused (link-local, metadata, non-unicast) and the private ranges. Only tables and
//! pure functions of an address: nothing here touches the network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The IPv4 address carried by an IPv6 address of a form that embeds one: IPv4-mapped
/// `::ffff:a.b.c.d`, IPv4-translated (SIIT) `::ffff:0:a.b.c.d`, IPv4-compatible `::a.b.c.d`
/// (deprecated; not `::` or `::1`), NAT64 `64:ff9b::/96` and local-use `64:ff9b:1::/48`
/// (RFC 6052, RFC 8215; the last 32 bits, as for a /96 prefix), and 6to4 `2002::/16`
/// (bits 16..48).
pub(super) fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
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
pub(super) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_ipv4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

pub(super) fn is_reserved(ip: IpAddr) -> bool {
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

pub(super) fn is_private(ip: IpAddr) -> bool {
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
