//! The egress policy for user-supplied provider URLs (the SSRF hole other chat UIs had CVEs
//! for). Only http and https; the host's addresses are checked where the connection is made:
//! IP literals before the request, host names inside the HTTP client's DNS resolver, so every
//! resolved address is checked and a name that resolves differently the second time (DNS
//! rebinding) is checked again. Loopback, private, link-local, CGNAT and other
//! special-purpose addresses are refused unless the operator allows private networks. Cloud
//! metadata endpoints (instance credentials) are refused always: allowing private networks is
//! for a local Ollama, and any user of a multi-user Parley could otherwise read them.
//! IPv4-mapped, IPv4-translated (SIIT), IPv4-compatible, NAT64 (well-known and local-use
//! prefixes), 6to4 and Teredo IPv6 addresses are judged by the IPv4 address they carry.
//! Redirects are never followed (the client is built with `Policy::none()`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// Why an address or URL was refused; shown to the user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EgressDenied(pub String);

/// A host name that did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve host {host}: {reason}")]
pub struct ResolveFailed {
    pub host: String,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EgressPolicy {
    pub allow_private_networks: bool,
}

impl EgressPolicy {
    pub fn new(allow_private_networks: bool) -> Self {
        Self { allow_private_networks }
    }

    /// Checks what can be checked before connecting: the scheme, and the address when the host
    /// is an IP literal (the HTTP client does not resolve those, so the resolver never sees them).
    pub fn check_url(&self, url: &Url) -> Result<(), EgressDenied> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressDenied(format!(
                "only http and https URLs are allowed, not {}:",
                url.scheme()
            )));
        }
        match url.host() {
            None => Err(EgressDenied("the URL has no host".to_string())),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(Host::Domain(_)) => Ok(()),
        }
    }

    /// Whether Parley may connect to `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), EgressDenied> {
        self.check(ip, &format!("{ip} is"))
    }

    /// `subject` introduces the address in the refusal: "10.0.0.1 is", "ollama resolves to
    /// 10.0.0.1, which is".
    fn check(&self, ip: IpAddr, subject: &str) -> Result<(), EgressDenied> {
        match classify(ip) {
            AddressClass::Public => Ok(()),
            AddressClass::Forbidden(what) => {
                Err(EgressDenied(format!("{subject} {what}; Parley never connects there")))
            }
            AddressClass::Internal(_) if self.allow_private_networks => Ok(()),
            AddressClass::Internal(what) => Err(EgressDenied(format!(
                "{subject} {what}; this Parley does not connect to private networks \
                 (an operator can allow them with --allow-private-networks)"
            ))),
        }
    }

    /// The DNS resolver to give the HTTP client.
    pub fn resolver(&self) -> Arc<PolicyResolver> {
        Arc::new(PolicyResolver { policy: *self })
    }
}

/// Whether `ip` is an ordinary public address: neither loopback, private, link-local nor any
/// other special-purpose range. What a provider elsewhere says may be passed on to users;
/// what a service on the operator's own network says may not (it would let them read it).
pub fn is_public(ip: IpAddr) -> bool {
    classify(ip) == AddressClass::Public
}

#[derive(Debug, PartialEq, Eq)]
enum AddressClass {
    Public,
    /// Refused unless private networks are allowed.
    Internal(&'static str),
    /// Refused always: no provider lives there (multicast, documentation, discard …), or
    /// what lives there must never be reached (cloud metadata).
    Forbidden(&'static str),
}

const CLOUD_METADATA: &str = "a cloud metadata address";

fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    let [a, b, c, d] = ip.octets();
    match (a, b, c, d) {
        // Cloud metadata endpoints: AWS, GCP, Azure, OpenStack, OCI (169.254.169.254); ECS
        // task metadata (169.254.170.2); EKS Pod Identity (169.254.170.23); Alibaba
        // (100.100.100.200); Tencent (169.254.0.23); Azure's WireServer (168.63.129.16, a
        // public address, so private networks being refused does not cover it).
        (169, 254, 169, 254)
        | (169, 254, 170, 2)
        | (169, 254, 170, 23)
        | (169, 254, 0, 23)
        | (100, 100, 100, 200)
        | (168, 63, 129, 16) => Forbidden(CLOUD_METADATA),
        (127, ..) => Internal("a loopback address"),
        (0, ..) => Internal("the unspecified (\"this host\") network"),
        (10, ..) => Internal("a private address"),
        (172, 16..=31, ..) => Internal("a private address"),
        (192, 168, ..) => Internal("a private address"),
        (169, 254, ..) => Internal("a link-local address"),
        (100, 64..=127, ..) => Internal("a carrier-grade NAT (shared) address"),
        (192, 0, 0, _) => Internal("an IETF protocol address"),
        (198, 18..=19, ..) => Internal("a benchmarking address"),
        (192, 88, 99, _) => Forbidden("a deprecated 6to4 relay anycast address"),
        (255, 255, 255, 255) => Forbidden("the broadcast address"),
        (224..=239, ..) => Forbidden("a multicast address"),
        (240..=255, ..) => Forbidden("a reserved address"),
        (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => Forbidden("a documentation address"),
        _ => Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let segments = ip.segments();
    if ip.is_loopback() {
        return Internal("a loopback address");
    }
    if ip.is_unspecified() {
        return Internal("the unspecified address");
    }
    // IPv6 metadata endpoints, inside the unique-local range: AWS's instance metadata
    // (fd00:ec2::254), EKS Pod Identity (fd00:ec2::23), OCI's (fd00:c1::a9fe:a9fe).
    if matches!(
        segments,
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254 | 0x0023] | [0xfd00, 0x00c1, 0, 0, 0, 0, 0xa9fe, 0xa9fe]
    ) {
        return Forbidden(CLOUD_METADATA);
    }
    match segments {
        [0x0100, 0, 0, 0, ..] => Forbidden("a discard-only address"),
        [0xfc00..=0xfdff, ..] => Internal("a unique-local (private) address"),
        [0xfe80..=0xfebf, ..] => Internal("a link-local address"),
        [0xfec0..=0xfeff, ..] => Internal("a site-local address"),
        [0xff00..=0xffff, ..] => Forbidden("a multicast address"),
        [0x2001, 0x0db8, ..] | [0x3fff, 0x0000..=0x0fff, ..] => Forbidden("a documentation address"),
        _ => Public,
    }
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-translated (SIIT, `::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated but
/// still routed by some stacks), NAT64 (`64:ff9b::a.b.c.d`, and the local-use
/// `64:ff9b:1::/48` with the address in the last 32 bits as a gateway maps it), 6to4
/// (`2002:aabb:ccdd::`) and Teredo (`2001:0:…`, the client's address inverted in the last 32
/// bits).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // `::` and `::1` are themselves, not 0.0.0.0 and 0.0.0.1.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, hi, lo] | [0, 0, 0, 0, 0xffff, 0, hi, lo] => Some(v4(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] | [0x64, 0xff9b, 1, _, _, _, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        [0x2001, 0, _, _, _, _, hi, lo] => Some(v4(!hi, !lo)),
        _ => None,
    }
}

/// Resolves host names with the system resolver and refuses the lot when any resolved
/// address is not allowed (a name pointing at both a public and a private address is an
/// attack, not a provider).
pub struct PolicyResolver {
    policy: EgressPolicy,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| ResolveFailed {
                    host: host.clone(),
                    reason: e.to_string(),
                })?
                .collect();
            if addresses.is_empty() {
                return Err(Box::new(ResolveFailed {
                    host,
                    reason: "no addresses".to_string(),
                }) as Box<dyn std::error::Error + Send + Sync>);
            }
            for address in &addresses {
                let ip = address.ip();
                policy.check(ip, &format!("{host} resolves to {ip}, which is"))?;
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(policy: EgressPolicy, ip: &str) -> bool {
        policy.check_ip(ip.parse().unwrap_or_else(|_| unreachable!())).is_err()
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let strict = EgressPolicy::new(false);
        let open = EgressPolicy::new(true);
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "64:ff9b:1:abcd::7f00:1",
            "2002:7f00:1::",
            // Teredo, client 10.0.0.1 inverted (f5ff:fffe).
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "fc00::1",
            "fe80::1",
        ] {
            assert!(denied(strict, ip), "{ip} should be refused");
            assert!(!denied(open, ip), "{ip} should be allowed with private networks");
        }
    }

    #[test]
    fn public_addresses_pass_and_nonsense_never_does() {
        let strict = EgressPolicy::new(false);
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "::ffff:0:808:808",
            "64:ff9b:1::808:808",
            // Teredo with a public client (8.8.8.8 inverted).
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
        ] {
            assert!(!denied(strict, ip), "{ip} should be allowed");
        }
        for ip in [
            "224.0.0.1",
            "255.255.255.255",
            "ff02::1",
            "240.0.0.1",
            "100::1",
            "100::ffff:ffff:ffff:ffff",
            "192.88.99.1",
            "2001:db8::1",
            "3fff::1",
        ] {
            assert!(denied(EgressPolicy::new(true), ip), "{ip} should always be refused");
        }
    }

    #[test]
    fn cloud_metadata_is_refused_even_with_private_networks_allowed() {
        let open = EgressPolicy::new(true);
        for ip in [
            "169.254.169.254",
            "169.254.170.2",
            "169.254.170.23",
            "169.254.0.23",
            "100.100.100.200",
            "168.63.129.16",
            "fd00:ec2::254",
            "fd00:ec2::23",
            "fd00:c1::a9fe:a9fe",
            "::ffff:169.254.169.254",
            "::ffff:168.63.129.16",
            "64:ff9b::a83f:8110",
            "::ffff:0:a9fe:a9fe",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a9fe:a9fe",
            "2002:a9fe:a9fe::",
            // Teredo, client 169.254.169.254 inverted.
            "2001:0:4136:e378:8000:63bf:5601:5601",
        ] {
            let denial = open.check_ip(ip.parse().unwrap_or_else(|_| unreachable!()));
            assert!(
                denial.as_ref().is_err_and(|d| d.0.contains("cloud metadata")),
                "{ip}: {denial:?}"
            );
        }
        // The rest of link-local and CGNAT stays the operator's call, and the neighbours of
        // the public WireServer address are ordinary public addresses.
        for ip in [
            "169.254.1.1",
            "169.254.170.24",
            "100.64.0.1",
            "fd00::1",
            "fd00:ec2::24",
            "fd00:c1::1",
            "168.63.129.17",
        ] {
            assert!(!denied(open, ip), "{ip}");
        }
        let strict = EgressPolicy::new(false);
        assert!(!denied(strict, "168.63.129.17"));
        assert!(
            strict
                .check_ip("168.63.129.16".parse().unwrap_or_else(|_| unreachable!()))
                .is_err_and(|d| d.0.contains("cloud metadata"))
        );
    }

    #[test]
    fn only_ordinary_addresses_count_as_public() {
        let public = |ip: &str| is_public(ip.parse().unwrap_or_else(|_| unreachable!()));
        for ip in ["1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(public(ip), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "::1",
            "10.0.0.5",
            "192.168.1.1",
            "fd00::1",
            "::ffff:10.0.0.5",
            "168.63.129.16",
        ] {
            assert!(!public(ip), "{ip}");
        }
    }

    #[test]
    fn refusals_read_as_sentences() {
        let strict = EgressPolicy::new(false);
        let denial = strict
            .check(
                IpAddr::from([127, 0, 0, 1]),
                "localhost resolves to 127.0.0.1, which is",
            )
            .unwrap_err();
        assert!(
            denial
                .0
                .starts_with("localhost resolves to 127.0.0.1, which is a loopback address; "),
            "{}",
            denial.0
        );
    }

    #[test]
    fn urls_need_http_or_https() {
        let strict = EgressPolicy::new(false);
        let check = |u: &str| strict.check_url(&Url::parse(u).unwrap_or_else(|_| unreachable!()));
        assert!(check("https://api.openai.com/v1").is_ok());
        assert!(check("http://example.com/v1").is_ok());
        assert!(
            check("ftp://example.com/")
                .unwrap_err()
                .0
                .contains("only http and https")
        );
        assert!(check("file:///etc/passwd").is_err());
        assert!(
            check("http://[::ffff:127.0.0.1]:8000/v1")
                .unwrap_err()
                .0
                .contains("loopback")
        );
        assert!(
            check("http://169.254.169.254/latest")
                .unwrap_err()
                .0
                .contains("metadata")
        );
        // Other spellings of 127.0.0.1 are parsed as the address they are.
        for url in [
            "http://2130706433/v1",
            "http://0x7f.0.0.1/v1",
            "http://[0:0:0:0:0:ffff:7f00:1]/v1",
        ] {
            assert!(check(url).unwrap_err().0.contains("loopback"), "{url}");
        }
    }
}
