//! The SSRF guard: which addresses a profile may deliver to.
//!
//! A notification URL comes from a gateway, so without a guard anyone who can submit one can make
//! notifyd POST into the private network (or the cloud metadata service). By default every
//! loopback, private, link-local, CGNAT, multicast, unspecified, reserved and metadata address is
//! refused; a profile lets chosen networks through with `allow_private`.
//!
//! The check runs on the addresses DNS actually returned, inside the connector's resolver
//! ([`GuardedResolver`]), so a name that resolves (or rebinds) to a forbidden address is caught
//! on the very lookup used to connect. IP literals never reach the resolver; they are checked at
//! ingest and again before each attempt ([`Guard::check_url`]).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};

use crate::config::Cidr;

/// A profile's allow list, cheap to clone.
#[derive(Debug, Clone)]
pub struct Guard {
    profile: Arc<str>,
    allow: Arc<[Cidr]>,
}

/// An address the profile may not deliver to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{addr} is a {class} address; not allowed by profile \"{profile}\" (allow_private)")]
pub struct Forbidden {
    /// The refused address.
    pub addr: IpAddr,
    /// Why it is refused by default (`loopback`, `private`, …).
    pub class: &'static str,
    /// The profile whose allow list does not cover it.
    pub profile: Arc<str>,
}

impl Guard {
    /// The guard of profile `profile`, letting `allow` through.
    pub fn new(profile: &str, allow: Vec<Cidr>) -> Guard {
        Guard {
            profile: Arc::from(profile),
            allow: Arc::from(allow),
        }
    }

    /// Whether notifyd may connect to `ip` under this profile.
    pub fn check(&self, ip: IpAddr) -> Result<(), Forbidden> {
        match classify(ip) {
            None => Ok(()),
            Some(_) if self.allow.iter().any(|c| c.contains(ip)) => Ok(()),
            Some(class) => Err(Forbidden {
                addr: ip,
                class,
                profile: self.profile.clone(),
            }),
        }
    }

    /// Checks the host of `url` when it is an IP literal (`http://10.0.0.5/`, `http://[::1]/`).
    /// Host names pass here: they are checked after DNS, by [`GuardedResolver`].
    pub fn check_url(&self, url: &str) -> Result<(), Forbidden> {
        match literal_host(url) {
            Some(ip) => self.check(ip),
            None => Ok(()),
        }
    }
}

/// The host of `url` when it is written as an IP address.
fn literal_host(url: &str) -> Option<IpAddr> {
    let uri: http::Uri = url.parse().ok()?;
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// Why `ip` is refused by default, or `None` for an ordinary public address. IPv4 addresses
/// embedded in IPv6 (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) are judged as the IPv4
/// address they reach.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b, c, d) {
        // AWS/GCP/Azure/OpenStack metadata; Alibaba Cloud's (inside CGNAT space).
        (169, 254, 169, 254) | (100, 100, 100, 200) => "cloud-metadata",
        (0, 0, 0, 0) => "unspecified",
        (127, ..) => "loopback",
        (10, ..) | (192, 168, ..) => "private",
        (172, b, ..) if (16..32).contains(&b) => "private",
        (169, 254, ..) => "link-local",
        (100, b, ..) if (64..128).contains(&b) => "CGNAT",
        (224..=239, ..) => "multicast",
        // "This network", IETF protocol assignments, benchmarking, class E and broadcast.
        (0, ..) | (192, 0, 0, _) | (240..=255, ..) => "reserved",
        (198, 18 | 19, ..) => "reserved",
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let seg = ip.segments();
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = seg[6].to_be_bytes();
        let [c, d] = seg[7].to_be_bytes();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    Some(match seg {
        // AWS's IPv6 metadata endpoint (inside the ULA range, named for a clearer message).
        [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] => "cloud-metadata",
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
        // The deprecated IPv4-compatible range: never a legitimate receiver.
        [0, 0, 0, 0, 0, 0, ..] => "reserved",
        [s, ..] if s & 0xfe00 == 0xfc00 => "private",
        [s, ..] if s & 0xffc0 == 0xfe80 => "link-local",
        // Site-local, deprecated but still routed inside some networks.
        [s, ..] if s & 0xffc0 == 0xfec0 => "private",
        [s, ..] if s & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

/// The system resolver with the profile's guard applied to every answer: forbidden addresses are
/// dropped, and a name with nothing but forbidden addresses is an error carrying [`Forbidden`].
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    inner: GaiResolver,
    guard: Guard,
}

impl GuardedResolver {
    /// The system resolver, filtered by `guard`.
    pub fn new(guard: Guard) -> GuardedResolver {
        GuardedResolver {
            inner: GaiResolver::new(),
            guard,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let lookup = self.inner.call(name);
        let guard = self.guard.clone();
        Box::pin(async move {
            let mut allowed = Vec::new();
            let mut refused = None;
            for addr in lookup.await.map_err(ResolveError)? {
                match guard.check(addr.ip()) {
                    Ok(()) => allowed.push(addr),
                    Err(f) => {
                        refused.get_or_insert(f);
                    }
                }
            }
            match refused {
                Some(f) if allowed.is_empty() => Err(Box::new(f) as BoxError),
                _ => Ok(allowed.into_iter()),
            }
        })
    }
}

/// The system resolver could not resolve the name (marks the error as DNS's for
/// [`super::transport::TransportKind::Dns`]).
#[derive(Debug, thiserror::Error)]
#[error("could not resolve the name")]
pub struct ResolveError(#[source] pub std::io::Error);

/// Finds a [`Forbidden`] among the causes of `e` (the connector buries it a few levels deep).
pub fn find_forbidden<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Forbidden> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(f) = err.downcast_ref::<Forbidden>() {
            return Some(f);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_every_internal_range_by_default() {
        for (addr, class) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.5", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.1.1", "link-local"),
            ("169.254.169.254", "cloud-metadata"),
            ("100.100.100.200", "cloud-metadata"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.255", "CGNAT"),
            ("224.0.0.1", "multicast"),
            ("239.1.1.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "reserved"),
            ("255.255.255.255", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "private"),
            ("fd12:3456::1", "private"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("fd00:ec2::254", "cloud-metadata"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:169.254.169.254", "cloud-metadata"),
            ("64:ff9b::a00:1", "private"),
            ("::7f00:1", "reserved"),
        ] {
            assert_eq!(classify(ip(addr)), Some(class), "{addr}");
        }
    }

    #[test]
    fn lets_public_addresses_through() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(classify(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn allow_list_opens_named_networks_only() {
        let g = Guard::new("x", vec!["127.0.0.1".parse().unwrap()]);
        assert!(g.check(ip("127.0.0.1")).is_ok());
        assert!(g.check(ip("::ffff:127.0.0.1")).is_ok(), "mapped form too");
        let e = g.check(ip("127.0.0.2")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "127.0.0.2 is a loopback address; not allowed by profile \"x\" (allow_private)"
        );
        assert!(g.check(ip("10.0.0.1")).is_err());
        assert!(g.check(ip("8.8.8.8")).is_ok());
    }

    #[test]
    fn url_literals_are_checked_and_names_left_to_dns() {
        let g = Guard::new("strict", Vec::new());
        assert!(g.check_url("https://127.0.0.1:8443/n").is_err());
        assert!(g.check_url("https://[::1]/n").is_err());
        assert!(g.check_url("https://[::ffff:a9fe:a9fe]/n").is_err());
        assert!(g.check_url("http://10.0.0.5/n").is_err());
        assert!(g.check_url("https://8.8.8.8/n").is_ok());
        assert!(g.check_url("https://merchant.example/n").is_ok());
    }

    #[tokio::test]
    async fn resolver_drops_forbidden_answers() {
        use tower_service::Service;
        let name = |s: &str| s.parse::<Name>().unwrap();
        let mut strict = GuardedResolver::new(Guard::new("strict", Vec::new()));
        let err = strict.call(name("localhost")).await.unwrap_err();
        let f = find_forbidden(err.as_ref()).expect("a Forbidden error");
        assert_eq!(f.class, "loopback");
        let mut open = GuardedResolver::new(Guard::new(
            "open",
            vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()],
        ));
        let addrs: Vec<SocketAddr> = open.call(name("localhost")).await.unwrap().collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
