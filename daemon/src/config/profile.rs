//! Profiles: per-receiver signing, SSRF and retry settings, validated from `[profiles.NAME]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notifyd_core::ack::SignatureMode;
use notifyd_core::backoff::RetryPolicy;
use notifyd_core::model::ExtraFieldsPolicy;
use notifyd_core::signing::RequestTimeFormat;

use super::cidr::Cidr;
use super::file::ProfileFile;
use super::problem::Problems;
use super::proxy::{ProxyConfig, validate_proxy};
use super::retry::{DEFAULT_ATTEMPT_TIMEOUT, validate_retry};

/// The profile envelopes get when they name none.
pub const DEFAULT_PROFILE: &str = "default";

/// A validated profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Plain `http://` targets are allowed.
    pub allow_http: bool,
    /// Networks the SSRF guard lets through although they are private, loopback or link-local.
    pub allow_private: Vec<Cidr>,
    /// Request signing (PROTOCOL.md §1); `None` sends unsigned requests.
    pub signing: Option<Signing>,
    /// The receiver's public key (PEM), to verify response signatures whose `keyVersion` has no
    /// key in `peer_public_keys` (or that name none).
    pub peer_public_key_file: Option<PathBuf>,
    /// The receiver's public keys by `keyVersion` (key rotation).
    pub peer_public_keys: BTreeMap<u32, PathBuf>,
    /// What to do about response signatures.
    pub response_signature: SignatureMode,
    /// CAs trusted in addition to the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The HTTP CONNECT proxy deliveries go through, with its exceptions.
    pub proxy: Option<ProxyConfig>,
    /// Client certificate for mTLS.
    pub client_cert: Option<ClientCert>,
    /// How `Request-Time` is written.
    pub request_time_format: RequestTimeFormat,
    /// What happens to body fields the API does not define.
    pub extra_fields: ExtraFieldsPolicy,
    /// When to try again.
    pub retry: RetryPolicy,
    /// Time allowed for one attempt.
    pub attempt_timeout: Duration,
    /// Where `dead` and `failed` outcomes are reported (`dead_letter.rs`); `None`: nowhere.
    pub dead_letter_url: Option<String>,
}

impl Default for Profile {
    /// The built-in `default` profile: unsigned, https only, no private targets, Alipay's schedule.
    fn default() -> Self {
        Profile {
            allow_http: false,
            allow_private: Vec::new(),
            signing: None,
            peer_public_key_file: None,
            peer_public_keys: BTreeMap::new(),
            response_signature: SignatureMode::Optional,
            ca_file: None,
            proxy: None,
            client_cert: None,
            request_time_format: RequestTimeFormat::Rfc3339Millis,
            extra_fields: ExtraFieldsPolicy::Refuse,
            retry: RetryPolicy::alipay_default(),
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            dead_letter_url: None,
        }
    }
}

/// The signing identity of a profile: all three keys set together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    /// Sent as `Client-Id`.
    pub client_id: String,
    /// Sent as `keyVersion` in `Signature`.
    pub key_version: u32,
    /// PEM file of the RSA private key.
    pub private_key_file: PathBuf,
}

/// A client certificate and its key (mTLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

/// Profile names travel in envelopes and metrics-free logs; keep them to a safe alphabet.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Checks that a file can be opened for reading.
pub(crate) fn check_readable_file(key: &str, path: &Path, problems: &mut Problems) {
    match std::fs::metadata(path) {
        Err(e) => problems.push(key, format!("cannot read {}: {e}", path.display())),
        Ok(meta) if !meta.is_file() => {
            problems.push(key, format!("{} is not a regular file", path.display()));
        }
        Ok(_) => {
            if let Err(e) = std::fs::File::open(path) {
                problems.push(key, format!("cannot read {}: {e}", path.display()));
            }
        }
    }
}

/// Checks a secret (private key, token file): readable, and not open to group or others. As ssh
/// does, a secret others can read is refused: it may already have leaked, and starting anyway
/// would hide that.
pub(crate) fn check_secret_file(key: &str, path: &Path, problems: &mut Problems) {
    use std::os::unix::fs::PermissionsExt;
    let before = problems.0.len();
    check_readable_file(key, path, problems);
    if problems.0.len() > before {
        return;
    }
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            problems.push(
                key,
                format!(
                    "{} is accessible by group or others (mode {mode:04o}); a secret must be \
                     readable by its owner only: chmod 600 it",
                    path.display()
                ),
            );
        }
    }
}

/// Validates the profile `name`; problems are keyed `profiles.NAME...`.
pub(crate) fn validate_profile(name: &str, file: &ProfileFile, problems: &mut Problems) -> Profile {
    let key = format!("profiles.{name}");
    if !valid_name(name) {
        problems.push(&key, "a profile name is 1 to 64 of A-Z a-z 0-9 _ - .");
    }

    let allow_private: Vec<Cidr> = file
        .allow_private
        .iter()
        .enumerate()
        .filter_map(|(i, text)| problems.check(&format!("{key}.allow_private[{i}]"), text.parse()))
        .collect();
    let dead_letter_url = file.dead_letter_url.as_deref().and_then(|url| {
        super::dead_letter::validate_dead_letter_url(
            name,
            url,
            file.allow_http,
            &allow_private,
            problems,
        )
    });

    let signing = match (&file.client_id, file.key_version, &file.private_key_file) {
        (None, None, None) => None,
        (Some(client_id), Some(key_version), Some(private_key_file)) => {
            if client_id.trim().is_empty() {
                problems.push(format!("{key}.client_id"), "must not be empty");
            }
            check_secret_file(
                &format!("{key}.private_key_file"),
                private_key_file,
                problems,
            );
            Some(Signing {
                client_id: client_id.clone(),
                key_version,
                private_key_file: private_key_file.clone(),
            })
        }
        _ => {
            problems.push(
                &key,
                "client_id, key_version and private_key_file must be set together",
            );
            None
        }
    };

    if let Some(path) = &file.peer_public_key_file {
        check_readable_file(&format!("{key}.peer_public_key_file"), path, problems);
    }
    let mut peer_public_keys = BTreeMap::new();
    for (version, path) in &file.peer_public_keys {
        let entry = format!("{key}.peer_public_keys.\"{version}\"");
        // The Signature header's keyVersion as the SDKs write it: a decimal number.
        match version.parse::<u32>() {
            Ok(v) if version.bytes().all(|b| b.is_ascii_digit()) => {
                if peer_public_keys.insert(v, path.clone()).is_some() {
                    problems.push(&entry, format!("key version {v} is given twice"));
                }
            }
            _ => problems.push(
                &entry,
                "a key version is a decimal number (the keyVersion of the receiver's Signature header)",
            ),
        }
        check_readable_file(&entry, path, problems);
    }

    if let Some(path) = &file.ca_file {
        check_readable_file(&format!("{key}.ca_file"), path, problems);
    }
    let proxy = validate_proxy(&key, file.proxy.as_deref(), &file.no_proxy, problems);
    let client_cert = match (&file.client_cert_file, &file.client_key_file) {
        (None, None) => None,
        (Some(cert_file), Some(key_file)) => {
            check_readable_file(&format!("{key}.client_cert_file"), cert_file, problems);
            check_secret_file(&format!("{key}.client_key_file"), key_file, problems);
            Some(ClientCert {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
            })
        }
        _ => {
            problems.push(
                &key,
                "client_cert_file and client_key_file must be set together",
            );
            None
        }
    };

    let response_signature = match file.response_signature.as_str() {
        "required" => SignatureMode::Required,
        "optional" => SignatureMode::Optional,
        "off" => SignatureMode::Off,
        other => {
            problems.push(
                format!("{key}.response_signature"),
                format!("unknown value `{other}`; expected \"required\", \"optional\" or \"off\""),
            );
            SignatureMode::Optional
        }
    };
    if response_signature == SignatureMode::Required
        && file.peer_public_key_file.is_none()
        && file.peer_public_keys.is_empty()
    {
        problems.push(
            format!("{key}.response_signature"),
            "\"required\" needs peer_public_key_file or peer_public_keys",
        );
    }

    let request_time_format = match file.request_time_format.as_str() {
        "rfc3339" => RequestTimeFormat::Rfc3339Millis,
        "epoch_millis" => RequestTimeFormat::EpochMillis,
        other => {
            problems.push(
                format!("{key}.request_time_format"),
                format!("unknown value `{other}`; expected \"rfc3339\" or \"epoch_millis\""),
            );
            RequestTimeFormat::Rfc3339Millis
        }
    };

    let extra_fields = ExtraFieldsPolicy::from_name(&file.extra_fields).unwrap_or_else(|| {
        problems.push(
            format!("{key}.extra_fields"),
            format!(
                "unknown value `{}`; expected \"refuse\" or \"forward\"",
                file.extra_fields
            ),
        );
        ExtraFieldsPolicy::Refuse
    });

    let (retry, attempt_timeout) = validate_retry(&format!("{key}.retry"), &file.retry, problems);

    Profile {
        allow_http: file.allow_http,
        allow_private,
        signing,
        peer_public_key_file: file.peer_public_key_file.clone(),
        peer_public_keys,
        response_signature,
        ca_file: file.ca_file.clone(),
        proxy,
        client_cert,
        request_time_format,
        extra_fields,
        retry,
        attempt_timeout,
        dead_letter_url,
    }
}
