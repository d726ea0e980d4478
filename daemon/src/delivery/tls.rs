//! TLS settings of a profile's client: the system's roots plus an optional CA file, an optional
//! client certificate (mTLS), TLS 1.2 at least, ring as the crypto provider.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// What a profile adds to the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsFiles<'a> {
    /// PEM bundle of extra trusted CAs (a private PKI, a test CA).
    pub ca_file: Option<&'a Path>,
    /// PEM chain and PKCS#8/PKCS#1/SEC1 key presented to receivers that ask for one.
    pub client_cert: Option<(&'a Path, &'a Path)>,
}

/// The system's roots, read once per process: reading the trust store takes tens of
/// milliseconds and it does not change under a running daemon often enough to matter.
pub(crate) fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if !found.errors.is_empty() {
            tracing::warn!(
                errors = found.errors.len(),
                "Some system CA certificates could not be read."
            );
        }
        found.certs
    })
}

/// A client configuration for one profile. Errors name the file at fault.
pub fn client_config(files: TlsFiles<'_>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    // Unusable system certificates are skipped, as every TLS client does.
    let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(ca) = files.ca_file {
        let certs = read_certs(ca)?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("{}: no usable CA certificate", ca.display()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    match files.client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{}: {e}", cert.display()))
        }
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate", path.display()));
    }
    Ok(certs)
}
