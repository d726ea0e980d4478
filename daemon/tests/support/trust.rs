//! Helpers for the trust tests: a test PKI (rcgen), a receiver that answers as told over plain
//! HTTP or TLS (optionally requiring a client certificate), and secret files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

/// `shared/spec/sigvec` (the signature test vector and its throwaway key), beside the checkout:
/// the ancestors of the crate directory are searched, so the tests run from any clone or worktree
/// with `shared` next to it.
pub fn sigvec_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|a| a.join("shared/spec/sigvec"))
        .find(|d| d.join("vector.json").is_file())
        .unwrap_or_else(|| {
            panic!(
                "shared/spec/sigvec not found beside the checkout ({}/../../shared)",
                manifest.display()
            )
        })
}

/// Writes `contents` to `dir/name` readable by its owner only, as notifyd requires of secrets.
pub fn secret(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A certificate and key as PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A throwaway CA.
pub struct Pki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub ca_file: PathBuf,
}

impl Pki {
    /// A new CA named `name`, its certificate written to `dir/NAME-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Pki {
            dir: dir.to_owned(),
            ca,
            ca_file,
        }
    }

    /// A server certificate for `names`; `expired` makes one that ran out in 2020.
    pub fn server(&self, file: &str, names: &[&str], expired: bool) -> Issued {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        self.issue(file, params)
    }

    /// A client certificate (mTLS).
    pub fn client(&self, file: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "notifyd test client");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(file, params)
    }

    fn issue(&self, file: &str, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let cert_path = self.dir.join(format!("{file}.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        let key_path = secret(
            &self.dir,
            &format!("{file}.key"),
            key.serialize_pem().as_bytes(),
        );
        Issued {
            cert: cert_path,
            key: key_path,
        }
    }

    /// A TLS server configuration presenting `cert`; when `client_ca` is given, a client
    /// certificate issued by it is required.
    pub fn server_config(cert: &Issued, client_ca: Option<&Path>) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert.cert)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&cert.key).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca).unwrap() {
                    roots.add(c.unwrap()).unwrap();
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        Arc::new(builder.with_single_cert(chain, key).unwrap())
    }
}

/// One request as a [`Receiver`] saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path_and_query: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Builds the answer to a request.
pub type AnswerFn = Arc<dyn Fn(&Seen) -> http::Response<Full<Bytes>> + Send + Sync>;

/// A receiver on loopback, plain or TLS, answering with `answer` and remembering what it got.
pub struct Receiver {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    handshake_failures: Arc<std::sync::atomic::AtomicUsize>,
    _stop: DropGuard,
}

impl Receiver {
    pub async fn start(tls: Option<Arc<rustls::ServerConfig>>, answer: AnswerFn) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let (seen2, failures2, stop2) = (seen.clone(), failures.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    c = listener.accept() => c.unwrap(),
                    () = stop2.cancelled() => return,
                };
                let (seen, failures, answer, acceptor) = (
                    seen2.clone(),
                    failures2.clone(),
                    answer.clone(),
                    acceptor.clone(),
                );
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<Incoming>| {
                        let (seen, answer) = (seen.clone(), answer.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let s = Seen {
                                path_and_query: parts
                                    .uri
                                    .path_and_query()
                                    .map_or("/".to_owned(), |p| p.as_str().to_owned()),
                                headers: parts.headers,
                                body,
                            };
                            let resp = answer(&s);
                            seen.lock().push(s);
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(tls) => {
                                let _ = http.serve_connection(TokioIo::new(tls), service).await;
                            }
                            Err(_) => {
                                failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        },
                    }
                });
            }
        });
        Receiver {
            addr,
            seen,
            handshake_failures: failures,
            _stop: stop.drop_guard(),
        }
    }

    /// Requests received (complete, over an established connection).
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    /// TLS handshakes that failed on this side.
    pub fn handshake_failures(&self) -> usize {
        self.handshake_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The protocol's S acknowledgement.
pub fn ack_s() -> http::Response<Full<Bytes>> {
    json_response(
        br#"{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}"#,
        &[],
    )
}

/// A 200 JSON answer with `headers`.
pub fn json_response(body: &[u8], headers: &[(&str, String)]) -> http::Response<Full<Bytes>> {
    let mut b = http::Response::builder()
        .status(200)
        .header("content-type", "application/json; charset=UTF-8");
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(Full::new(Bytes::copy_from_slice(body))).unwrap()
}
