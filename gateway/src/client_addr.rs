//! Who is calling, by network address: the TCP peer, or, when the peer is a trusted proxy, the
//! first address in `X-Forwarded-For`, read from the right, that is not a trusted proxy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

/// The TCP peer of a connection; the server puts it into every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

/// The client's address as resolved by [`client_ip`], put into every gRPC request's
/// extensions by [`ResolveClient`] before any limit looks at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

/// The metadata that tells an upstream the client's address (plain IP text, such as
/// `203.0.113.9` or `2001:db8::1`), so user-service can throttle sign-ins per address. The
/// gateway always sets it itself: a value a client sent is never passed on.
pub(crate) const CLIENT_IP_METADATA: http::HeaderName = http::HeaderName::from_static("x-parley-client-ip");

/// Resolves each request's client address once, for every limit after it and for the
/// upstream ([`CLIENT_IP_METADATA`]).
#[derive(Clone)]
pub(crate) struct ResolveClient {
    trusted_proxies: Arc<[IpNetwork]>,
}

impl ResolveClient {
    pub(crate) fn new(trusted_proxies: &[IpNetwork]) -> Self {
        Self {
            trusted_proxies: trusted_proxies.into(),
        }
    }

    pub(crate) fn resolve<B>(&self, mut request: http::Request<B>) -> http::Request<B> {
        let peer = request
            .extensions()
            .get::<ClientAddr>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let ip = client_ip(peer, request.headers(), &self.trusted_proxies);
        request.extensions_mut().insert(ClientIp(ip));
        // `insert` replaces every value the client sent under this name.
        match http::HeaderValue::from_str(&ip.to_string()) {
            Ok(value) => request.headers_mut().insert(CLIENT_IP_METADATA, value),
            Err(_) => request.headers_mut().remove(CLIENT_IP_METADATA),
        };
        request
    }
}

/// The key a client address is limited by: the address itself for IPv4, its /64 for IPv6,
/// the smallest network one subscriber is normally given (a /64 holds 2^64 addresses to
/// rotate through).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// An address range such as `10.0.0.0/8`, `fd00::/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
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
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
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

/// A comma-separated list of address ranges, where an empty list (`PARLEY_TRUSTED_PROXIES=`)
/// says "none" in an environment file or ConfigMap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkList(pub(crate) Vec<IpNetwork>);

impl FromStr for NetworkList {
    type Err = InvalidNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// The client's address for rate limiting.
///
/// `X-Forwarded-For` is read from the right, where the trusted proxies appended what they
/// saw: trusted hops are skipped and the first untrusted one is the client. Everything to its
/// left was written by the client and is never believed. An entry that is not an address ends
/// the walk at the last trusted proxy's own address: a broken chain names nobody else.
pub(crate) fn client_ip(peer: IpAddr, headers: &http::HeaderMap, trusted: &[IpNetwork]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = canonical(peer);
    if !is_trusted(client) {
        return client;
    }
    // One entry per hop, over every X-Forwarded-For line in order; a line that is not text
    // is one unreadable hop.
    let hops: Vec<Option<&str>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(text) => text.split(',').map(Some).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect();
    for hop in hops.into_iter().rev() {
        let Some(ip) = hop.and_then(parse_hop) else {
            return client;
        };
        if !is_trusted(ip) {
            return ip;
        }
        client = ip;
    }
    // Every hop is a trusted proxy: the leftmost one is as far as anyone can tell.
    client
}

/// `203.0.113.9`, `2001:db8::1`, `[2001:db8::1]`, `203.0.113.9:4711` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let bare = hop.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(hop);
    bare.parse::<IpAddr>()
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
    fn network_lists_may_be_empty() {
        assert_eq!("".parse::<NetworkList>().ok(), Some(NetworkList(Vec::new())));
        assert_eq!(
            " 10.0.0.0/8, 192.0.2.1 ,".parse::<NetworkList>().ok(),
            Some(NetworkList(vec![net("10.0.0.0/8"), net("192.0.2.1")]))
        );
        assert!("10.0.0.0/8, nonsense".parse::<NetworkList>().is_err());
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

    fn forwarded(values: &[&'static str]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", http::HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let headers = forwarded(&["203.0.113.9, 10.0.0.2"]);
        let trusted = [net("10.0.0.0/8")];
        // An untrusted peer cannot choose its address.
        assert_eq!(client_ip(ip("198.51.100.1"), &headers, &trusted), ip("198.51.100.1"));
        // A trusted one is skipped, and so are trusted hops, from the right.
        assert_eq!(client_ip(ip("10.0.0.1"), &headers, &trusted), ip("203.0.113.9"));
        // A client cannot prepend its way past the proxy: the rightmost untrusted hop wins.
        let headers = forwarded(&["1.1.1.1, 203.0.113.9, 10.0.0.2"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &headers, &trusted), ip("203.0.113.9"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), &http::HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        // Several header lines are one list, in order.
        let headers = forwarded(&["1.1.1.1", "203.0.113.9", "10.0.0.2"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &headers, &trusted), ip("203.0.113.9"));
        // Only trusted hops: the leftmost is the best anyone knows.
        let headers = forwarded(&["10.0.0.3, 10.0.0.2"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &headers, &trusted), ip("10.0.0.3"));
    }

    #[test]
    fn an_unreadable_hop_never_lets_the_client_choose() {
        let trusted = [net("10.0.0.0/8")];
        let peer = ip("10.0.0.1");
        // The client wrote "198.51.100.7, x" itself; the proxy appended nothing readable
        // after it, so the proxy's own view (the peer) is the key.
        for value in [
            "198.51.100.7, x",
            "198.51.100.7, ",
            "198.51.100.7,unknown",
            "198.51.100.7, 10.0.0.300",
        ] {
            assert_eq!(client_ip(peer, &forwarded(&[value]), &trusted), peer, "{value:?}");
        }
        // Behind two proxies, the walk stops at the last trusted hop that was readable.
        let headers = forwarded(&["198.51.100.7, garbage, 10.0.0.2"]);
        assert_eq!(client_ip(peer, &headers, &trusted), ip("10.0.0.2"));
        // Garbage to the left of the real client changes nothing.
        let headers = forwarded(&["garbage, 198.51.100.7, 203.0.113.9"]);
        assert_eq!(client_ip(peer, &headers, &trusted), ip("203.0.113.9"));
        // A header line that is not text counts as one unreadable hop.
        let mut headers = forwarded(&["198.51.100.7"]);
        headers.append("x-forwarded-for", http::HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(client_ip(peer, &headers, &trusted), peer);
    }

    #[test]
    fn hops_may_carry_ports_and_brackets() {
        let trusted = [net("10.0.0.0/8")];
        let peer = ip("10.0.0.1");
        for (value, expected) in [
            ("203.0.113.9:4711", "203.0.113.9"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
        ] {
            assert_eq!(client_ip(peer, &forwarded(&[value]), &trusted), ip(expected), "{value}");
        }
    }
}
