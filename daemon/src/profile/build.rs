//! From a validated `[profiles.NAME]` to a [`Profile`]: its keys read and parsed, its TLS trust
//! and client certificate loaded into a client of its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use notifyd_core::signing::{KeyError, SigningKey, VerifyingKey};

use super::{Profile, Signer};
use crate::config::{self, Config};
use crate::delivery::guard::Guard;
use crate::delivery::tls::{self, TlsFiles};
use crate::delivery::{HttpClient, PeerKeys, PoolOptions};

/// A file the configuration names could not be loaded. `key` is its configuration key
/// (`profiles.acme.private_key_file`), so the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (it passed `check-config`, so it changed since, or the
    /// service runs as another user).
    #[error("{key} {}: {source}", path.display())]
    Read {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file holds no usable key.
    #[error("{key} {}: {source}", path.display())]
    Key {
        key: String,
        path: PathBuf,
        source: KeyError,
    },
    /// The CA file, client certificate or its key is unusable (the message names the file).
    #[error("{key}: {message}")]
    Tls { key: String, message: String },
}

impl LoadError {
    /// Whether the configuration must change (the file's content is wrong), rather than the
    /// host (the file cannot be read).
    pub fn is_config(&self) -> bool {
        !matches!(self, LoadError::Read { .. })
    }
}

/// Reads the PEM file at `path` and parses it with `parse`; errors are keyed `key`.
pub(crate) fn load_key<K>(
    key: &str,
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<K, KeyError>,
) -> Result<K, LoadError> {
    let pem = std::fs::read(path).map_err(|source| LoadError::Read {
        key: key.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    parse(&pem).map_err(|source| LoadError::Key {
        key: key.to_owned(),
        path: path.to_owned(),
        source,
    })
}

/// Turns a profile's configuration into delivery values, loading its keys, CA and client
/// certificate into a client of its own.
pub fn build_profile(
    name: &str,
    p: &config::Profile,
    pool: PoolOptions,
) -> Result<Profile, LoadError> {
    let signer = match &p.signing {
        Some(s) => Some(Signer {
            client_id: s.client_id.clone(),
            key_version: s.key_version,
            key: load_key(
                &format!("profiles.{name}.private_key_file"),
                &s.private_key_file,
                SigningKey::from_pkcs8_pem,
            )?,
        }),
        None => None,
    };
    let any = match &p.peer_public_key_file {
        Some(f) => Some(load_key(
            &format!("profiles.{name}.peer_public_key_file"),
            f,
            VerifyingKey::from_spki_pem,
        )?),
        None => None,
    };
    let mut by_version = HashMap::new();
    for (version, f) in &p.peer_public_keys {
        let key = format!("profiles.{name}.peer_public_keys.\"{version}\"");
        by_version.insert(*version, load_key(&key, f, VerifyingKey::from_spki_pem)?);
    }
    let peer_keys = PeerKeys::new(any, by_version);
    let tls = tls::client_config(TlsFiles {
        ca_file: p.ca_file.as_deref(),
        client_cert: p
            .client_cert
            .as_ref()
            .map(|c| (c.cert_file.as_path(), c.key_file.as_path())),
    })
    .map_err(|message| LoadError::Tls {
        key: format!("profiles.{name}"),
        message,
    })?;
    let guard = Guard::new(name, p.allow_private.clone());
    let client = HttpClient::new(pool, tls, guard.clone(), p.allow_http, p.proxy.clone());
    Ok(Profile {
        name: name.to_owned(),
        allow_http: p.allow_http,
        guard,
        client,
        retry: p.retry.clone(),
        attempt_timeout: p.attempt_timeout,
        signer,
        peer_keys,
        response_signature: p.response_signature,
        request_time: p.request_time_format,
        extra_fields: p.extra_fields,
        dead_letter_url: p.dead_letter_url.as_deref().map(Arc::from),
    })
}

/// Every profile of `config`, ready for delivery.
pub fn build_profiles(config: &Config) -> Result<HashMap<String, Arc<Profile>>, LoadError> {
    let pool = PoolOptions {
        idle_timeout: config.delivery.pool_idle_timeout,
        max_idle_per_host: config.delivery.endpoint_concurrency.get(),
    };
    config
        .profiles
        .iter()
        .map(|(name, p)| Ok((name.clone(), Arc::new(build_profile(name, p, pool)?))))
        .collect()
}
