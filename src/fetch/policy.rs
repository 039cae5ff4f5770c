//! Where server-side fetches may go. A feed someone else named (a write body, a remembered feed)
//! and every document a feed links to (chapters, transcripts, audio) may only reach public
//! addresses: never loopback, private, link-local, shared (CGNAT), multicast, broadcast or
//! unspecified ones, IPv4 or IPv6, with IPv4 inside IPv6 (mapped, compatible, NAT64, 6to4) judged
//! as the IPv4 it carries. An operator admits hosts or networks by name (`--fetch-allow`).
//!
//! The check is on addresses, not URL text: the guarded client resolves names itself and connects
//! only to the addresses this policy admits (so DNS rebinding between a check and the connection
//! has nothing to race), checks literal addresses at the start and at every redirect, and the
//! address a response actually came from is checked once more. Not here: the HTTP client and the
//! document limits (`fetch`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// One entry of `--fetch-allow`: a network in CIDR form, one address, or a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    Network { base: IpAddr, prefix: u8 },
    Host(String),
}

impl FromStr for Allowed {
    type Err = String;

    fn from_str(text: &str) -> Result<Allowed, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        if let Ok(base) = addr.parse::<IpAddr>() {
            let bits = if base.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => bits,
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= bits)
                    .ok_or_else(|| format!("`{text}`: the prefix must be 0 to {bits}"))?,
            };
            return Ok(Allowed::Network { base, prefix });
        }
        let host_like = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
        if prefix.is_none() && !text.is_empty() && text.chars().all(host_like) {
            return Ok(Allowed::Host(
                text.trim_end_matches('.').to_ascii_lowercase(),
            ));
        }
        Err(format!(
            "`{text}` is neither a network (10.0.0.0/8, fd00::/8), an address nor a host name"
        ))
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allowed::Network { base, prefix } => write!(f, "{base}/{prefix}"),
            Allowed::Host(h) => f.write_str(h),
        }
    }
}

impl Allowed {
    fn contains(&self, ip: IpAddr) -> bool {
        let Allowed::Network { base, prefix } = self else {
            return false;
        };
        match (base, canonical(ip)) {
            (IpAddr::V4(b), IpAddr::V4(a)) => same_prefix(&b.octets(), &a.octets(), *prefix),
            (IpAddr::V6(b), IpAddr::V6(a)) => same_prefix(&b.octets(), &a.octets(), *prefix),
            _ => false,
        }
    }
}

fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (whole, rest) = ((prefix / 8) as usize, prefix % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// Where fetches may go: public addresses, plus what the operator allowed.
#[derive(Debug, Clone, Default)]
pub struct FetchPolicy {
    allowed: Vec<Allowed>,
}

impl FetchPolicy {
    pub fn allowing(allowed: Vec<Allowed>) -> FetchPolicy {
        FetchPolicy { allowed }
    }

    /// Why `ip` may not be fetched from, or `None` when it may.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let kind = inward_kind(canonical(ip))?;
        (!self.allowed.iter().any(|a| a.contains(ip))).then_some(kind)
    }

    /// Does the operator allow this host by name (all its addresses)?
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.allowed
            .iter()
            .any(|a| matches!(a, Allowed::Host(h) if h.eq_ignore_ascii_case(host)))
    }
}

/// IPv4 carried inside IPv6 as the IPv4 it is; anything else unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks) and NAT64.
    if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
        return IpAddr::V4(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(tail);
    }
    if s[0] == 0x2002 {
        let inner = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return IpAddr::V4(inner);
    }
    ip
}

/// The kind of a non-public address, in words for an error message.
fn inward_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local"
    } else if a == 100 && (64..128).contains(&b) {
        "shared (carrier-grade NAT)"
    } else if ip.is_multicast() {
        "multicast"
    } else if ip.is_broadcast() || a >= 240 {
        "reserved"
    } else if a == 0 {
        "unspecified"
    } else {
        return None;
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_multicast() {
        "multicast"
    } else if first & 0xfe00 == 0xfc00 {
        "private (unique local)"
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        "link-local"
    } else {
        return None;
    })
}

/// A fetch the policy refused, as the error the HTTP client carries up.
#[derive(Debug)]
pub struct Refused {
    pub kind: &'static str,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused by the fetch policy: a {} address (an operator can admit it with --fetch-allow)",
            self.kind
        )
    }
}

impl std::error::Error for Refused {}

/// The guarded client's resolver: the system's answer, minus every address the policy refuses.
pub struct GuardedResolver {
    pub policy: Arc<FetchPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if policy.allows_host(&host) {
                return Ok(Box::new(found.into_iter()) as Addrs);
            }
            let refused = found.iter().find_map(|a| policy.refusal(a.ip()));
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.refusal(a.ip()).is_none())
                .collect();
            match (kept.is_empty(), refused) {
                (true, Some(kind)) => Err(Box::new(Refused { kind }) as _),
                _ => Ok(Box::new(kept.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &FetchPolicy, ip: &str) -> bool {
        policy.refusal(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn inward_addresses_are_refused_in_every_spelling() {
        let policy = FetchPolicy::default();
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ] {
            assert!(refused(&policy, ip), "{ip} should be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!refused(&policy, ip), "{ip} should be admitted");
        }
    }

    #[test]
    fn an_operator_admits_networks_addresses_and_hosts() {
        let allowed: Vec<Allowed> = ["10.0.0.0/8", "127.0.0.1", "[::1]", "Feeds.Internal."]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let policy = FetchPolicy::allowing(allowed);
        assert!(!refused(&policy, "10.200.3.4"));
        assert!(!refused(&policy, "127.0.0.1"));
        assert!(!refused(&policy, "::ffff:127.0.0.1"));
        assert!(refused(&policy, "127.0.0.2"));
        assert!(!refused(&policy, "::1"));
        assert!(refused(&policy, "192.168.0.1"));
        assert!(policy.allows_host("feeds.internal"));
        assert!(!policy.allows_host("localhost"));
        for bad in ["10.0.0.0/33", "", "http://x", "a b", "1.2.3.4/x"] {
            assert!(bad.parse::<Allowed>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn prefixes_compare_bits_not_bytes() {
        let net: Allowed = "172.16.0.0/12".parse().unwrap();
        assert!(net.contains("172.31.1.1".parse().unwrap()));
        assert!(!net.contains("172.32.1.1".parse().unwrap()));
        let all: Allowed = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("127.0.0.1".parse().unwrap()));
    }
}
