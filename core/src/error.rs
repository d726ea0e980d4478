//! Validation errors: every rejection names the JSON path and the rule, and maps to `PARAM_ILLEGAL`.

use std::borrow::Cow;
use std::fmt;

/// A field broke its API's rules. Displayed as `path: rule`, e.g.
/// `body.paymentAmount.value: must be 1 to 16 digits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    path: String,
    rule: Cow<'static, str>,
}

impl ValidationError {
    /// An error at `path` (dotted JSON path; empty for the document itself) breaking `rule`.
    pub fn new(path: impl Into<String>, rule: impl Into<Cow<'static, str>>) -> Self {
        ValidationError {
            path: path.into(),
            rule: rule.into(),
        }
    }

    /// The dotted JSON path of the offending field (`body.paymentAmount.value`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The rule that was broken (`must be 1 to 16 digits`).
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// Prefixes the path, e.g. with `body` or `notifications[3]`, as the error travels outwards.
    pub fn within(mut self, parent: &str) -> Self {
        self.path = if self.path.is_empty() {
            parent.to_owned()
        } else if self.path.starts_with('[') {
            format!("{parent}{}", self.path)
        } else {
            format!("{parent}.{}", self.path)
        };
        self
    }

    /// The protocol result code this error answers with.
    pub const fn result_code(&self) -> &'static str {
        crate::ack::codes::PARAM_ILLEGAL
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.rule)
        } else {
            write!(f, "{}: {}", self.path, self.rule)
        }
    }
}

impl std::error::Error for ValidationError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_compose_outwards() {
        let e = ValidationError::new("value", "must be 1 to 16 digits")
            .within("paymentAmount")
            .within("body");
        assert_eq!(
            e.to_string(),
            "body.paymentAmount.value: must be 1 to 16 digits"
        );
        let e = ValidationError::new("", "must be an object")
            .within("[3]")
            .within("notifications");
        assert_eq!(e.to_string(), "notifications[3]: must be an object");
    }
}
