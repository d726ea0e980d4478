//! What inquiry needs at run time, built from `[inquiry]` and `[merchants.NAME]` with the
//! merchants' public keys loaded; replaced whole on SIGHUP, like profiles.

use std::collections::HashMap;
use std::time::Duration;

use notifyd_core::signing::VerifyingKey;

use crate::config::{Config, InquiryConfig};
use crate::profile::{LoadError, load_key};

/// A merchant allowed on the merchant-facing listener.
#[derive(Debug)]
pub struct Merchant {
    /// Its `[merchants.NAME]` name, for logs.
    pub name: String,
    /// Verifies its request signatures.
    pub key: VerifyingKey,
    /// The partners whose payments it may ask about.
    pub partner_ids: Vec<String>,
}

/// Inquiry's settings in force.
#[derive(Debug)]
pub struct InquirySettings {
    /// Unknown payments answer F `ORDER_NOT_EXIST` instead of U `UNKNOWN_EXCEPTION`.
    pub authoritative: bool,
    /// Largest distance between a request's `Request-Time` and the clock.
    pub request_time_window: Duration,
    /// The profile whose key signs the merchant listener's answers.
    pub profile: String,
    /// Merchants by the `Client-Id` they send.
    merchants: HashMap<String, Merchant>,
}

impl Default for InquirySettings {
    fn default() -> Self {
        InquirySettings::from_config(&InquiryConfig::default(), HashMap::new())
    }
}

impl InquirySettings {
    fn from_config(c: &InquiryConfig, merchants: HashMap<String, Merchant>) -> Self {
        InquirySettings {
            authoritative: c.authoritative,
            request_time_window: c.request_time_window,
            profile: c.profile.clone(),
            merchants,
        }
    }

    /// Loads every merchant's key; the error names the key path of the file that failed.
    pub fn build(config: &Config) -> Result<InquirySettings, LoadError> {
        let mut merchants = HashMap::new();
        for (name, m) in &config.merchants {
            let key = load_key(
                &format!("merchants.{name}.public_key_file"),
                &m.public_key_file,
                VerifyingKey::from_spki_pem,
            )?;
            merchants.insert(
                m.client_id.clone(),
                Merchant {
                    name: name.clone(),
                    key,
                    partner_ids: m.partner_ids.clone(),
                },
            );
        }
        Ok(InquirySettings::from_config(&config.inquiry, merchants))
    }

    /// The merchant that sends this `Client-Id`.
    pub fn merchant(&self, client_id: &str) -> Option<&Merchant> {
        self.merchants.get(client_id)
    }
}
