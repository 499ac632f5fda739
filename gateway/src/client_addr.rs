//! Who is calling, by network address: the TCP peer, or, when the peer is a trusted proxy, the
//! first address in `X-Forwarded-For` (from the right) that is not a trusted proxy.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The TCP peer of a connection; the server puts it into every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// An address range such as `10.0.0.0/8`, `fd00::/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) compare as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an address or address range such as 10.0.0.0/8")]
pub struct InvalidNetwork(String);

impl FromStr for IpNetwork {
    type Err = InvalidNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidNetwork(s.to_string());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().map_err(|_| invalid())?)),
            None => (s.trim(), None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| invalid())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(invalid());
        }
        Ok(Self { addr, prefix })
    }
}

/// The client's address for rate limiting.
pub(crate) fn client_ip(peer: IpAddr, headers: &http::HeaderMap, trusted: &[IpNetwork]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = canonical(peer);
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(parse_hop)
        .collect();
    hops.iter()
        .rev()
        .copied()
        .find(|hop| !is_trusted(*hop))
        .or_else(|| hops.first().copied())
        .unwrap_or(peer)
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn networks_contain_their_addresses() {
        assert!(net("10.0.0.0/8").contains(ip("10.1.2.3")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(net("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        assert!(!net("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(net("fd00::/8").contains(ip("fd12::1")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!("10.0.0.0/33".parse::<IpNetwork>().is_err());
        assert!("example.com".parse::<IpNetwork>().is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            http::HeaderValue::from_static("203.0.113.9, 10.0.0.2"),
        );
        let trusted = [net("10.0.0.0/8")];
        // An untrusted peer cannot choose its address.
        assert_eq!(client_ip(ip("198.51.100.1"), &headers, &trusted), ip("198.51.100.1"));
        // A trusted one is skipped, and so are trusted hops, from the right.
        assert_eq!(client_ip(ip("10.0.0.1"), &headers, &trusted), ip("203.0.113.9"));
        // A client cannot prepend its way past the proxy: the rightmost untrusted hop wins.
        headers.insert(
            "x-forwarded-for",
            http::HeaderValue::from_static("1.1.1.1, 203.0.113.9, 10.0.0.2"),
        );
        assert_eq!(client_ip(ip("10.0.0.1"), &headers, &trusted), ip("203.0.113.9"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), &http::HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }
}
