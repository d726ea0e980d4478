//! The ingest envelope (CONTRACT.md §2): `{"api", "url", "profile", "body"}`, alone or in a batch.

use simd_json::BorrowedValue as Value;

use crate::api::Api;
use crate::error::ValidationError;
use crate::model::fields::{opt_str, parse_json, present, req_str, split};
use crate::model::{ExtraFields, ExtraFieldsPolicy, Notification};
use crate::url_check::check_url;

/// Longest accepted target URL, in characters.
pub const MAX_URL_CHARS: usize = 2048;

/// Profile used when the envelope names none.
pub const DEFAULT_PROFILE: &str = "default";

/// A validated ingest envelope: which API, where to, under which profile, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The API the body belongs to.
    pub api: Api,
    /// Absolute `http`/`https` URL of the receiver.
    pub url: String,
    /// Configuration profile (signing key, retry policy, limits).
    pub profile: String,
    /// The validated message.
    pub notification: Notification,
    /// Fields beyond the API's table, forwarded because the profile says `extra_fields =
    /// "forward"`; empty otherwise.
    pub extra: ExtraFields,
}

impl Envelope {
    /// Parses and validates one envelope; body fields the API does not define are refused.
    /// The buffer is scratch space for the SIMD parser.
    pub fn parse(bytes: &mut [u8]) -> Result<Envelope, ValidationError> {
        Envelope::parse_with(bytes, &|_| ExtraFieldsPolicy::Refuse)
    }

    /// [`Envelope::parse`], with the policy for undefined body fields chosen by the envelope's
    /// profile name (`policy_of("default")`…); an unknown profile is the caller's to refuse.
    pub fn parse_with(
        bytes: &mut [u8],
        policy_of: &dyn Fn(&str) -> ExtraFieldsPolicy,
    ) -> Result<Envelope, ValidationError> {
        let value = parse_json(bytes)?;
        Envelope::from_value_with(&value, policy_of)
    }

    /// Validates an envelope already parsed as JSON; body fields the API does not define are refused.
    pub fn from_value(value: &Value<'_>) -> Result<Envelope, ValidationError> {
        Envelope::from_value_with(value, &|_| ExtraFieldsPolicy::Refuse)
    }

    /// [`Envelope::from_value`] with a per-profile policy, as [`Envelope::parse_with`].
    pub fn from_value_with(
        value: &Value<'_>,
        policy_of: &dyn Fn(&str) -> ExtraFieldsPolicy,
    ) -> Result<Envelope, ValidationError> {
        let [api, url, profile, body] =
            split(value, &["api", "url", "profile", "body"], "the envelope")?;
        let api_name = req_str(api, "api", 64)?;
        let api = Api::from_name(api_name).ok_or_else(|| {
            ValidationError::new(
                "api",
                "must be one of notifyPayment, notifyVoid, alipayplus.notifyPayment",
            )
        })?;
        let url = req_str(url, "url", MAX_URL_CHARS)?;
        check_url(url).map_err(|e| e.within("url"))?;
        let profile = opt_str(profile, "profile", 64)?.unwrap_or(DEFAULT_PROFILE);
        if !profile
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(ValidationError::new(
                "profile",
                "must be letters, digits, '_', '-' or '.'",
            ));
        }
        let body = match body {
            Some(b) if present(Some(b)) => b,
            _ => return Err(ValidationError::new("body", "is required")),
        };
        let (notification, extra) = Notification::from_value_with(api, body, policy_of(profile))
            .map_err(|e| e.within("body"))?;
        Ok(Envelope {
            api,
            url: url.to_owned(),
            profile: profile.to_owned(),
            notification,
            extra,
        })
    }

    /// The receiver's host (lower-cased, with the port when one is given), for per-endpoint
    /// queues and the per-payment order key.
    pub fn endpoint(&self) -> String {
        endpoint_of(&self.url).unwrap_or_default()
    }

    /// Whether the URL is plain `http://` (refused unless the profile allows it).
    pub fn is_plain_http(&self) -> bool {
        self.url.len() > 7 && self.url[..7].eq_ignore_ascii_case("http://")
    }

    /// The per-payment order key of CONTRACT.md §3: same payment, same host → one at a time.
    pub fn order_key(&self) -> String {
        format!("{}|{}", self.endpoint(), self.notification.payment_key())
    }

    /// The canonical bytes to send (see [`crate::encode`]): the message's fields in table
    /// order, then any forwarded fields by name.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = crate::encode::encode(&self.notification);
        self.extra.append_to_object(&mut out);
        out
    }
}

/// Parses a batch, `{"notifications": [envelope, …]}` with 1 to `max_items` items. The batch
/// itself must be well formed; each item is then judged on its own, so one bad item does not
/// refuse the others. Item errors carry paths relative to the item (`body.paymentId: …`).
pub fn parse_batch(
    bytes: &mut [u8],
    max_items: usize,
) -> Result<Vec<Result<Envelope, ValidationError>>, ValidationError> {
    parse_batch_with(bytes, max_items, &|_| ExtraFieldsPolicy::Refuse)
}

/// [`parse_batch`] with a per-profile policy for undefined body fields, as [`Envelope::parse_with`].
pub fn parse_batch_with(
    bytes: &mut [u8],
    max_items: usize,
    policy_of: &dyn Fn(&str) -> ExtraFieldsPolicy,
) -> Result<Vec<Result<Envelope, ValidationError>>, ValidationError> {
    let value = parse_json(bytes)?;
    let [items] = split(&value, &["notifications"], "the batch")?;
    let Some(Value::Array(items)) = items else {
        return Err(ValidationError::new(
            "notifications",
            "must be a JSON array",
        ));
    };
    if items.is_empty() || items.len() > max_items {
        return Err(ValidationError::new(
            "notifications",
            format!("must hold 1 to {max_items} notifications"),
        ));
    }
    Ok(items
        .iter()
        .map(|item| Envelope::from_value_with(item, policy_of))
        .collect())
}

/// The endpoint (`host:port` as written, lower-cased) of an absolute URL: what delivery queues
/// and limits by.
pub fn endpoint_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let authority = uri.authority()?;
    Some(authority.as_str().to_ascii_lowercase())
}
