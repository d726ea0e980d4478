//! Profiles as delivery uses them: the validated config turned into ready-to-use values
//! (retry policy, loaded keys, the profile's own TLS client and SSRF guard). Built at start and
//! on SIGHUP (`build.rs`); shared by `Arc`, so an attempt in flight keeps the profile it started
//! with.

mod build;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use notifyd_core::ack::SignatureMode;
use notifyd_core::backoff::RetryPolicy;
use notifyd_core::signing::{RequestTimeFormat, SigningKey};

use crate::delivery::guard::Guard;
use crate::delivery::{HttpClient, PeerKeys};

pub(crate) use build::load_key;
pub use build::{LoadError, build_profile, build_profiles};

/// The signing identity of a profile.
#[derive(Debug)]
pub struct Signer {
    /// `Client-Id` header.
    pub client_id: String,
    /// `keyVersion` in the `Signature` header.
    pub key_version: u32,
    /// The private key.
    pub key: SigningKey,
}

/// One named profile, ready for delivery.
#[derive(Debug)]
pub struct Profile {
    /// The profile's name (`default`, …).
    pub name: String,
    /// Whether plain `http://` targets are allowed.
    pub allow_http: bool,
    /// When to retry.
    pub retry: RetryPolicy,
    /// Limit for one attempt, connect to last byte of the answer.
    pub attempt_timeout: Duration,
    /// Set when requests are signed.
    pub signer: Option<Signer>,
    /// The receiver's public keys, for response signatures.
    pub peer_keys: PeerKeys,
    /// Whether response signatures are required, checked when present, or ignored.
    pub response_signature: SignatureMode,
    /// `Request-Time` format.
    pub request_time: RequestTimeFormat,
    /// What happens to body fields an envelope's API does not define.
    pub extra_fields: notifyd_core::model::ExtraFieldsPolicy,
    /// Which addresses this profile may deliver to.
    pub guard: Guard,
    /// The client every attempt under this profile goes through (its TLS trust, client
    /// certificate and guard).
    pub client: HttpClient,
    /// The operator's URL told of this profile's `dead` and `failed` notifications.
    pub dead_letter_url: Option<Arc<str>>,
}

/// The profiles in force, by name; replaced whole on SIGHUP. The dispatcher holds the one
/// registry: ingest looks an envelope's profile up through it, and delivery looks a
/// notification's profile up before each attempt, so rotated keys, CAs and allow lists apply to
/// retries of notifications queued before the reload too, while an attempt already in flight
/// finishes with the profile it started with.
#[derive(Debug)]
pub struct Profiles(RwLock<Arc<HashMap<String, Arc<Profile>>>>);

impl Profiles {
    /// A registry with `profiles` in force.
    pub fn new(profiles: HashMap<String, Arc<Profile>>) -> Profiles {
        Profiles(RwLock::new(Arc::new(profiles)))
    }

    /// The profile named `name`, if configured.
    pub fn get(&self, name: &str) -> Option<Arc<Profile>> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        map.get(name).cloned()
    }

    /// Puts `profiles` in force.
    pub fn replace(&self, profiles: HashMap<String, Arc<Profile>>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(profiles);
    }
}
