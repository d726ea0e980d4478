//! `[inquiry]` and `[merchants.NAME]`: how `inquiryPayment` answers, and who may ask on the
//! merchant-facing listener (CONTRACT.md §2.2).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::duration::parse_duration;
use super::file::{InquiryFile, MerchantFile};
use super::problem::Problems;
use super::profile::{Profile, check_readable_file};

/// Longest partner id (seed 002: `partnerId` is at most 32 characters).
const MAX_PARTNER_ID_CHARS: usize = 32;

/// `[inquiry]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InquiryConfig {
    /// Address of the merchant-facing listener; off when `None`.
    pub listen: Option<SocketAddr>,
    /// The profile whose key signs every answer on that listener.
    pub profile: String,
    /// An unknown payment answers F `ORDER_NOT_EXIST` instead of U `UNKNOWN_EXCEPTION`.
    pub authoritative: bool,
    /// How long finished notifications are kept for inquiry, when longer than the store's
    /// retention.
    pub retention: Option<Duration>,
    /// Largest distance between a request's `Request-Time` and notifyd's clock.
    pub request_time_window: Duration,
}

impl Default for InquiryConfig {
    fn default() -> Self {
        InquiryConfig {
            listen: None,
            profile: super::DEFAULT_PROFILE.to_owned(),
            authoritative: false,
            retention: None,
            request_time_window: Duration::from_secs(300),
        }
    }
}

/// `[merchants.NAME]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    /// The `Client-Id` it sends.
    pub client_id: String,
    /// Its public key (PEM), verifying its request signatures.
    pub public_key_file: PathBuf,
    /// The partners whose payments it may ask about.
    pub partner_ids: Vec<String>,
}

/// Validates `[inquiry]` against the profiles and the other listeners.
pub(crate) fn validate_inquiry(
    file: &InquiryFile,
    profiles: &BTreeMap<String, Profile>,
    store_retention: Duration,
    taken: &[(&str, SocketAddr)],
    problems: &mut Problems,
) -> InquiryConfig {
    let listen = file.listen.as_deref().and_then(|text| {
        problems.check(
            "inquiry.listen",
            text.parse::<SocketAddr>()
                .map_err(|_| format!("`{text}` is not a socket address such as \"0.0.0.0:8472\"")),
        )
    });
    if let Some(addr) = listen
        && addr.port() != 0
    {
        for (key, other) in taken {
            if *other == addr {
                problems.push("inquiry.listen", format!("must differ from {key}"));
            }
        }
    }
    if listen.is_some() {
        match profiles.get(&file.profile) {
            None => problems.push(
                "inquiry.profile",
                format!("no profile named \"{}\" is configured", file.profile),
            ),
            Some(p) if p.signing.is_none() => problems.push(
                "inquiry.profile",
                format!(
                    "profile \"{}\" must set client_id, key_version and private_key_file: its \
                     key signs every answer of inquiry.listen",
                    file.profile
                ),
            ),
            Some(_) => {}
        }
    }
    let retention = file.retention.as_deref().and_then(|text| {
        let d = problems.check("inquiry.retention", parse_duration(text))?;
        if d < store_retention {
            problems.push(
                "inquiry.retention",
                "must be at least store.retention (inquiry keeps records longer, never shorter)",
            );
        }
        Some(d)
    });
    let request_time_window = problems
        .check(
            "inquiry.request_time_window",
            parse_duration(&file.request_time_window),
        )
        .unwrap_or_default();
    if request_time_window.is_zero() {
        problems.push("inquiry.request_time_window", "must be more than 0");
    }
    InquiryConfig {
        listen,
        profile: file.profile.clone(),
        authoritative: file.authoritative,
        retention,
        request_time_window,
    }
}

/// Validates every `[merchants.NAME]`; problems are keyed `merchants.NAME...`.
pub(crate) fn validate_merchants(
    merchants: &BTreeMap<String, MerchantFile>,
    problems: &mut Problems,
) -> BTreeMap<String, Merchant> {
    let mut client_ids = HashSet::new();
    let mut out = BTreeMap::new();
    for (name, m) in merchants {
        let key = format!("merchants.{name}");
        let client_id = match m.client_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => {
                if !client_ids.insert(id.to_owned()) {
                    problems.push(
                        format!("{key}.client_id"),
                        format!("`{id}` is already another merchant's client_id"),
                    );
                }
                id.to_owned()
            }
            Some(_) => {
                problems.push(format!("{key}.client_id"), "must not be empty");
                String::new()
            }
            None => {
                problems.push(format!("{key}.client_id"), "is required");
                String::new()
            }
        };
        let public_key_file = match &m.public_key_file {
            Some(path) => {
                check_readable_file(&format!("{key}.public_key_file"), path, problems);
                path.clone()
            }
            None => {
                problems.push(format!("{key}.public_key_file"), "is required");
                PathBuf::new()
            }
        };
        if m.partner_ids.is_empty() {
            problems.push(
                format!("{key}.partner_ids"),
                "must name at least one partner (a merchant sees only its partners' payments)",
            );
        }
        for (i, p) in m.partner_ids.iter().enumerate() {
            if p.is_empty() || p.chars().count() > MAX_PARTNER_ID_CHARS {
                problems.push(
                    format!("{key}.partner_ids[{i}]"),
                    format!("must be 1 to {MAX_PARTNER_ID_CHARS} characters"),
                );
            }
        }
        out.insert(
            name.clone(),
            Merchant {
                client_id,
                public_key_file,
                partner_ids: m.partner_ids.clone(),
            },
        );
    }
    out
}
