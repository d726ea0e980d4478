//! `proxy` and `no_proxy` of a profile: the HTTP CONNECT proxy deliveries go through, and the
//! receivers reached directly instead.

use std::net::IpAddr;

use super::cidr::Cidr;
use super::problem::Problems;

/// A validated proxy setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The proxy's host name or address, as written.
    pub host: String,
    pub port: u16,
    /// Receivers reached directly.
    pub no_proxy: NoProxy,
}

/// `no_proxy`: receivers reached directly, not through the proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy(Vec<Rule>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// `"host"`: that name exactly (any case).
    Host(String),
    /// `".example.com"`: every name under it, not `example.com` itself.
    Suffix(String),
    /// `"10.0.0.0/8"` or one address: a receiver whose address (written in the URL or resolved)
    /// is inside.
    Net(Cidr),
}

impl NoProxy {
    /// True when `host` (a URL's host, without brackets) is excepted by name, or is an address
    /// literal inside an excepted network.
    pub fn matches_host(&self, host: &str) -> bool {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.matches_ip(ip);
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.0.iter().any(|r| match r {
            Rule::Host(h) => *h == host,
            Rule::Suffix(s) => host.ends_with(s.as_str()),
            Rule::Net(_) => false,
        })
    }

    /// True when the address is inside an excepted network.
    pub fn matches_ip(&self, ip: IpAddr) -> bool {
        self.0
            .iter()
            .any(|r| matches!(r, Rule::Net(c) if c.contains(ip)))
    }

    /// True when any rule is a network (the receiver's name must then be resolved first).
    pub fn has_networks(&self) -> bool {
        self.0.iter().any(|r| matches!(r, Rule::Net(_)))
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn parse_rule(text: &str) -> Result<Rule, String> {
    if let Ok(net) = text.parse::<Cidr>() {
        return Ok(Rule::Net(net));
    }
    let lower = text.to_ascii_lowercase();
    match lower.strip_prefix('.') {
        Some(rest) if valid_name(rest) => Ok(Rule::Suffix(lower)),
        None if valid_name(&lower) => Ok(Rule::Host(lower)),
        _ => Err(format!(
            "`{text}` is not a host name, a .suffix or a CIDR (\"merchant.example\", \
             \".internal.example\", \"10.0.0.0/8\")"
        )),
    }
}

/// The proxy URL: `http://HOST:PORT`, nothing else. TLS to the proxy and proxy credentials are
/// not supported: the tunnel carries TLS to the receiver end to end either way.
fn parse_proxy(text: &str) -> Result<(String, u16), String> {
    let shape = "must be http://HOST:PORT (an HTTP CONNECT proxy; no user, path or query)";
    let uri: http::Uri = text.parse().map_err(|_| shape.to_owned())?;
    let authority = uri.authority().ok_or_else(|| shape.to_owned())?;
    let plain = uri.scheme_str() == Some("http")
        && !authority.as_str().contains('@')
        && uri.query().is_none()
        && matches!(uri.path(), "" | "/");
    let (Some(port), true) = (authority.port_u16(), plain) else {
        return Err(shape.to_owned());
    };
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || port == 0 {
        return Err(shape.to_owned());
    }
    Ok((host.to_owned(), port))
}

/// Validates `proxy` and `no_proxy` of the profile at `key`.
pub(crate) fn validate_proxy(
    key: &str,
    proxy: Option<&str>,
    no_proxy: &[String],
    problems: &mut Problems,
) -> Option<ProxyConfig> {
    let rules: Vec<Rule> = no_proxy
        .iter()
        .enumerate()
        .filter_map(|(i, text)| problems.check(&format!("{key}.no_proxy[{i}]"), parse_rule(text)))
        .collect();
    let Some(proxy) = proxy else {
        if !no_proxy.is_empty() {
            problems.push(
                format!("{key}.no_proxy"),
                "lists exceptions to a proxy, but proxy is not set",
            );
        }
        return None;
    };
    let (host, port) = problems.check(&format!("{key}.proxy"), parse_proxy(proxy))?;
    Some(ProxyConfig {
        host,
        port,
        no_proxy: NoProxy(rules),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_proxy(rules: &[&str]) -> NoProxy {
        NoProxy(rules.iter().map(|r| parse_rule(r).unwrap()).collect())
    }

    #[test]
    fn exceptions_match_hosts_suffixes_and_networks() {
        let n = no_proxy(&["Merchant.Example", ".internal.example", "10.0.0.0/8", "::1"]);
        assert!(n.matches_host("merchant.example"));
        assert!(n.matches_host("MERCHANT.example."));
        assert!(
            !n.matches_host("www.merchant.example"),
            "a host is not a suffix"
        );
        assert!(n.matches_host("a.b.internal.example"));
        assert!(
            !n.matches_host("internal.example"),
            "a .suffix names what is under it"
        );
        assert!(!n.matches_host("evilinternal.example"));
        assert!(n.matches_host("10.1.2.3"));
        assert!(n.matches_host("::1"));
        assert!(!n.matches_host("11.1.2.3"));
        assert!(n.matches_ip("10.9.9.9".parse().unwrap()));
        assert!(n.has_networks());
    }

    #[test]
    fn bad_values_name_their_key_and_rule() {
        let mut p = Problems::default();
        assert!(validate_proxy("profiles.a", Some("https://p:3128"), &[], &mut p).is_none());
        assert!(validate_proxy("profiles.a", Some("http://u:pw@p:3128"), &[], &mut p).is_none());
        assert!(validate_proxy("profiles.a", Some("http://p"), &[], &mut p).is_none());
        let bad = vec!["*".to_owned(), "a..b".to_owned()];
        validate_proxy("profiles.a", Some("http://p:3128/"), &bad, &mut p);
        validate_proxy("profiles.b", None, &["x".to_owned()], &mut p);
        let keys: Vec<_> = p.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "profiles.a.proxy",
                "profiles.a.proxy",
                "profiles.a.proxy",
                "profiles.a.no_proxy[0]",
                "profiles.a.no_proxy[1]",
                "profiles.b.no_proxy"
            ]
        );
        assert!(
            p.0[0].message.starts_with("must be http://HOST:PORT"),
            "{:?}",
            p.0[0]
        );
        let ok = validate_proxy("profiles.a", Some("http://[fd00::1]:3128"), &[], &mut p).unwrap();
        assert_eq!((ok.host.as_str(), ok.port), ("fd00::1", 3128));
    }
}
