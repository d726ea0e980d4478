//! Why an attempt got no answer, typed: whose fault it is and what `lastResult` and the
//! `notifyd_transport_errors_total{kind}` metric say about it (issue 14; code review "whose fault,
//! and whether to retry").
//!
//! Every kind is retried. All but [`TransportKind::Proxy`] spend an attempt on the normal
//! schedule: they are the receiver's or the network's, or cannot be told apart from them. A proxy
//! failure is ours alone and spends nothing ([`notifyd_core::ack::Ack::LocalFailure`]).

use std::error::Error as StdError;
use std::fmt;
use std::io;

use super::proxy::ProxyError;

/// A bounded label: what failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// Nothing listens on the receiver's port (ECONNREFUSED).
    ConnectRefused,
    /// No route to the receiver (EHOSTUNREACH, ENETUNREACH).
    Unreachable,
    /// The receiver's name did not resolve.
    Dns,
    /// The receiver did not accept the connection within the connect timeout.
    ConnectTimeout,
    /// The receiver's certificate does not chain to a CA the profile trusts: either our trust
    /// configuration (`ca_file` for a private CA) or the receiver's chain.
    TlsUntrustedCertificate,
    /// The receiver's certificate is not valid for it (expired, not yet valid, another name,
    /// revoked): the receiver's fault.
    TlsReceiverCertificate,
    /// The receiver refused our client certificate or wants one we did not send: ours.
    TlsClientCertificate,
    /// Any other TLS failure (no common version or cipher suite, a broken handshake).
    TlsHandshake,
    /// The connection broke before a complete answer (reset, closed, not HTTP).
    Io,
    /// The proxy reached for the receiver and failed (HTTP 502 or 504 to CONNECT): the
    /// receiver's connection failure, seen through the proxy.
    ProxyUpstream,
    /// The profile's proxy failed: unreachable, or it refused the tunnel.
    Proxy,
}

/// Whose side a failure is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The receiver (or the network to it).
    Receiver,
    /// Our configuration or infrastructure.
    Ours,
    /// Cannot be told apart from here.
    Either,
}

impl TransportKind {
    /// Every kind, for pre-registering the metric's series.
    pub const ALL: [TransportKind; 11] = [
        TransportKind::ConnectRefused,
        TransportKind::Unreachable,
        TransportKind::Dns,
        TransportKind::ConnectTimeout,
        TransportKind::TlsUntrustedCertificate,
        TransportKind::TlsReceiverCertificate,
        TransportKind::TlsClientCertificate,
        TransportKind::TlsHandshake,
        TransportKind::Io,
        TransportKind::ProxyUpstream,
        TransportKind::Proxy,
    ];

    /// The `kind` label and the word in `lastResult`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransportKind::ConnectRefused => "connect_refused",
            TransportKind::Unreachable => "unreachable",
            TransportKind::Dns => "dns",
            TransportKind::ConnectTimeout => "connect_timeout",
            TransportKind::TlsUntrustedCertificate => "tls_untrusted_certificate",
            TransportKind::TlsReceiverCertificate => "tls_receiver_certificate",
            TransportKind::TlsClientCertificate => "tls_client_certificate",
            TransportKind::TlsHandshake => "tls_handshake",
            TransportKind::Io => "io",
            TransportKind::ProxyUpstream => "proxy_upstream",
            TransportKind::Proxy => "proxy",
        }
    }

    /// Whose side it is on.
    pub const fn fault(self) -> Fault {
        match self {
            TransportKind::ConnectRefused
            | TransportKind::ConnectTimeout
            | TransportKind::TlsReceiverCertificate
            | TransportKind::ProxyUpstream => Fault::Receiver,
            TransportKind::TlsClientCertificate | TransportKind::Proxy => Fault::Ours,
            TransportKind::Unreachable
            | TransportKind::Dns
            | TransportKind::TlsUntrustedCertificate
            | TransportKind::TlsHandshake
            | TransportKind::Io => Fault::Either,
        }
    }

    /// What an operator reads in `lastResult` before the error itself.
    const fn hint(self) -> &'static str {
        match self {
            TransportKind::ConnectRefused => "the receiver refused the connection",
            TransportKind::Unreachable => "no route to the receiver",
            TransportKind::Dns => "the receiver's name did not resolve",
            TransportKind::ConnectTimeout => "the receiver did not accept the connection in time",
            TransportKind::TlsUntrustedCertificate => {
                "the receiver's certificate does not chain to a CA this profile trusts (ca_file, if it is a private CA)"
            }
            TransportKind::TlsReceiverCertificate => {
                "the receiver's certificate is not valid for it"
            }
            TransportKind::TlsClientCertificate => {
                "the receiver refused our client certificate or wants one (client_cert_file)"
            }
            TransportKind::TlsHandshake => "the TLS handshake failed",
            TransportKind::Io => "the connection broke before a complete answer",
            TransportKind::ProxyUpstream => "the proxy could not reach the receiver",
            TransportKind::Proxy => "the profile's proxy failed (proxy); attempt not counted",
        }
    }
}

/// A connect, TLS, proxy or I/O failure: its kind and the error chain, for `lastResult` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    pub kind: TransportKind,
    /// The error and its causes on one line, bounded.
    pub detail: String,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.kind.as_str(),
            self.kind.hint(),
            self.detail
        )
    }
}

impl TransportError {
    /// Types the error hyper's client returned, by the first cause in its chain that says.
    pub fn of(e: &(dyn StdError + 'static)) -> TransportError {
        TransportError {
            kind: kind_of(e),
            detail: error_chain(e),
        }
    }
}

fn kind_of(e: &(dyn StdError + 'static)) -> TransportKind {
    let mut io_kind = None;
    // The causes, depth first. io::Error needs its own step: its source() skips the error it
    // wraps, and hyper-rustls wraps tokio-rustls's io::Error (holding the rustls::Error) in
    // another one.
    let mut todo: Vec<&(dyn StdError + 'static)> = vec![e];
    while let Some(err) = todo.pop() {
        if let Some(p) = err.downcast_ref::<ProxyError>() {
            return p.kind();
        }
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return tls_kind(t);
        }
        if err.is::<super::guard::ResolveError>() {
            return TransportKind::Dns;
        }
        if let Some(source) = err.source() {
            todo.push(source);
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if io.kind() != io::ErrorKind::Other {
                io_kind.get_or_insert(io.kind());
            }
            if let Some(inner) = io.get_ref() {
                todo.push(inner);
            }
        }
    }
    match io_kind {
        Some(io::ErrorKind::ConnectionRefused) => TransportKind::ConnectRefused,
        Some(io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable) => {
            TransportKind::Unreachable
        }
        Some(io::ErrorKind::TimedOut) => TransportKind::ConnectTimeout,
        _ => TransportKind::Io,
    }
}

fn tls_kind(e: &rustls::Error) -> TransportKind {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            TransportKind::TlsUntrustedCertificate
        }
        E::InvalidCertificate(_) => TransportKind::TlsReceiverCertificate,
        E::AlertReceived(
            A::BadCertificate
            | A::CertificateRequired
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::UnsupportedCertificate
            | A::AccessDenied,
        ) => TransportKind::TlsClientCertificate,
        _ => TransportKind::TlsHandshake,
    }
}

/// The error and its causes on one line, for `lastResult` and logs.
pub fn error_chain(e: &dyn StdError) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        // hyper and io::Error repeat their cause's text in their own; say it once.
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    crate::text::truncate_chars(&mut s, 200);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds_and_tls_errors_are_told_apart() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(kind_of(&refused), TransportKind::ConnectRefused);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(kind_of(&reset), TransportKind::Io);
        let untrusted = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(kind_of(&untrusted), TransportKind::TlsUntrustedCertificate);
        let expired = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert_eq!(kind_of(&expired), TransportKind::TlsReceiverCertificate);
        let ours = io::Error::other(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired,
        ));
        assert_eq!(kind_of(&ours), TransportKind::TlsClientCertificate);
        assert_eq!(TransportKind::TlsClientCertificate.fault(), Fault::Ours);
    }

    #[test]
    fn labels_are_distinct() {
        let mut names: Vec<_> = TransportKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TransportKind::ALL.len());
    }
}
