//! Fields a body carries that its API's table does not (yet) define, for profiles with
//! `extra_fields = "forward"`.
//!
//! The APIs grow: Alipay+ added `customsDeclarationAmount` in a later page version, and gateways
//! built on newer models send fields notifyd has never heard of. Refusing them turns a gateway
//! upgrade into a storm of permanent F answers; dropping them changes what the gateway asked to
//! send. A profile may therefore forward them, under rules that keep the stored bytes canonical
//! and bounded: a forwarded field is a string or an object whose members are strings (the shapes
//! every field of these APIs has: scalars are strings, objects are `Amount`/`Result`-like),
//! within the limits below. They are encoded after the known fields, ordered by name (members
//! too), so a repeat with its keys in another order gives the same bytes and the same
//! fingerprint, and they are part of the key fields: a repeat that changes one is inconsistent.

use simd_json::BorrowedValue as Value;
use simd_json::StaticNode;

use super::fields::{Unknown, exceeds_chars, printable_key};
use crate::error::ValidationError;

/// Most forwarded fields in one body.
pub const MAX_EXTRA_FIELDS: usize = 16;
/// Most members of one forwarded object.
pub const MAX_EXTRA_MEMBERS: usize = 16;
/// Longest name of a forwarded field or member, in characters.
pub const MAX_EXTRA_NAME_CHARS: usize = 64;
/// Longest forwarded string value, in characters (the size of `extendInfo`).
pub const MAX_EXTRA_VALUE_CHARS: usize = 4096;
/// Most bytes of names and values over all forwarded fields of one body.
pub const MAX_EXTRA_TOTAL_BYTES: usize = 16 * 1024;

/// What a profile does with fields its API does not define (`extra_fields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExtraFieldsPolicy {
    /// Refused with PARAM_ILLEGAL ("is not a field of …"): a typo is caught at ingest.
    #[default]
    Refuse,
    /// Checked against the rules of this module, stored and sent after the known fields.
    Forward,
}

impl ExtraFieldsPolicy {
    /// Parses the config value `"refuse"` or `"forward"`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "refuse" => Some(ExtraFieldsPolicy::Refuse),
            "forward" => Some(ExtraFieldsPolicy::Forward),
            _ => None,
        }
    }
}

/// One forwarded value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExtraValue {
    /// A JSON string.
    Text(String),
    /// A JSON object of strings, members ordered by name.
    Object(Vec<(String, String)>),
}

/// The forwarded fields of one body, ordered by name; empty for most bodies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ExtraFields(Vec<(String, ExtraValue)>);

impl ExtraFields {
    /// No forwarded field.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ExtraValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Checks the unknown fields of a body against this module's rules. `null` means absent, as
    /// for every optional field; paths name the field (`acquirerId`, `tax.rate`).
    pub(crate) fn from_unknown(unknown: &Unknown<'_, '_>) -> Result<ExtraFields, ValidationError> {
        let mut fields = Vec::with_capacity(unknown.len());
        let mut total = 0usize;
        for (name, value) in unknown {
            check_name(name)?;
            let value = match value {
                Value::Static(StaticNode::Null) => continue,
                Value::String(s) => ExtraValue::Text(text(s, name)?.to_owned()),
                Value::Object(obj) => {
                    let mut members = Vec::with_capacity(obj.len());
                    for (k, v) in obj.iter() {
                        let k: &str = k;
                        check_name(k).map_err(|e| e.within(name))?;
                        match v {
                            Value::Static(StaticNode::Null) => continue,
                            Value::String(s) => members.push((
                                k.to_owned(),
                                text(s, k).map_err(|e| e.within(name))?.to_owned(),
                            )),
                            _ => {
                                return Err(ValidationError::new(
                                    printable_key(k),
                                    "must be a JSON string (a forwarded object holds strings only)",
                                )
                                .within(name));
                            }
                        }
                    }
                    if members.is_empty() {
                        return Err(ValidationError::new(
                            *name,
                            "must not be empty (omit the field or send null)",
                        ));
                    }
                    if members.len() > MAX_EXTRA_MEMBERS {
                        return Err(ValidationError::new(
                            *name,
                            format!("a forwarded object holds at most {MAX_EXTRA_MEMBERS} members"),
                        ));
                    }
                    members.sort();
                    if let Some(w) = members.windows(2).find(|w| w[0].0 == w[1].0) {
                        return Err(ValidationError::new(
                            format!("{name}.{}", w[0].0),
                            "appears more than once",
                        ));
                    }
                    total += members
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>();
                    ExtraValue::Object(members)
                }
                _ => {
                    return Err(ValidationError::new(
                        *name,
                        "must be a JSON string or an object of strings (a field its API's table \
                         does not define is forwarded only in these shapes)",
                    ));
                }
            };
            total += name.len();
            if let ExtraValue::Text(t) = &value {
                total += t.len();
            }
            fields.push(((*name).to_owned(), value));
        }
        if fields.len() > MAX_EXTRA_FIELDS {
            return Err(ValidationError::new(
                "",
                format!("at most {MAX_EXTRA_FIELDS} fields beyond the API's table are forwarded"),
            ));
        }
        if total > MAX_EXTRA_TOTAL_BYTES {
            return Err(ValidationError::new(
                "",
                format!(
                    "the fields beyond the API's table must total at most {MAX_EXTRA_TOTAL_BYTES} bytes"
                ),
            ));
        }
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = fields.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(ValidationError::new(
                w[0].0.clone(),
                "appears more than once",
            ));
        }
        Ok(ExtraFields(fields))
    }

    /// Appends the fields to a canonical JSON object already in `out` (`{…}`, at least one member):
    /// `,"name":value` for each, before the closing brace.
    pub(crate) fn append_to_object(&self, out: &mut Vec<u8>) {
        if self.0.is_empty() || out.last() != Some(&b'}') {
            return;
        }
        out.pop();
        for (name, value) in &self.0 {
            out.push(b',');
            string(out, name);
            out.push(b':');
            match value {
                ExtraValue::Text(t) => string(out, t),
                ExtraValue::Object(members) => {
                    out.push(b'{');
                    for (i, (k, v)) in members.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        string(out, k);
                        out.push(b':');
                        string(out, v);
                    }
                    out.push(b'}');
                }
            }
        }
        out.push(b'}');
    }
}

/// JSON string with the same escaping as the known fields (the same encoder writes both).
fn string(out: &mut Vec<u8>, s: &str) {
    crate::encode::write_str(s, out);
}

/// Names as the APIs write theirs (`customsDeclarationAmount`): a key with spaces, quotes or
/// control characters is no field of a future page version but a broken gateway.
fn check_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_EXTRA_NAME_CHARS
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            printable_key(name),
            format!(
                "a forwarded field's name must be 1 to {MAX_EXTRA_NAME_CHARS} ASCII letters, digits or _"
            ),
        ))
    }
}

fn text<'s>(s: &'s str, name: &str) -> Result<&'s str, ValidationError> {
    if s.is_empty() {
        return Err(ValidationError::new(
            name,
            "must not be empty (omit the field or send null)",
        ));
    }
    if exceeds_chars(s, MAX_EXTRA_VALUE_CHARS) {
        return Err(ValidationError::new(
            name,
            format!("must be at most {MAX_EXTRA_VALUE_CHARS} characters"),
        ));
    }
    Ok(s)
}
