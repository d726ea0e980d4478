//! `dead_letter_url`: the operator's URL that hears of every notification of a profile ending
//! `dead` or `failed` (README "Dead-letter hook").

use super::cidr::Cidr;
use super::problem::Problems;
use crate::delivery::guard::Guard;

/// Checks `url` by the rules a notification URL of profile `name` follows: an absolute http(s)
/// URL, plain http only with `allow_http`, and an IP literal only where the SSRF guard (with
/// `allow_private`) lets it through. Host names are judged after DNS, at each attempt, as for
/// notifications. `None` when the URL is refused (the problem names `profiles.NAME.dead_letter_url`).
pub(super) fn validate_dead_letter_url(
    name: &str,
    url: &str,
    allow_http: bool,
    allow_private: &[Cidr],
    problems: &mut Problems,
) -> Option<String> {
    let key = format!("profiles.{name}.dead_letter_url");
    if let Err(e) = notifyd_core::check_url(url) {
        problems.push(&key, e.rule().to_owned());
        return None;
    }
    if url.len() > 7 && url[..7].eq_ignore_ascii_case("http://") && !allow_http {
        problems.push(
            &key,
            format!("plain http:// is not allowed by profile \"{name}\" (allow_http = false)"),
        );
        return None;
    }
    if let Err(forbidden) = Guard::new(name, allow_private.to_vec()).check_url(url) {
        problems.push(&key, forbidden.to_string());
        return None;
    }
    Some(url.to_owned())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides, Problem};

    fn problems(text: &str) -> Vec<Problem> {
        Config::from_toml(text, &Overrides::default()).expect_err("the file should be refused")
    }

    fn hook(extra: &str, url: &str) -> String {
        format!("[profiles.ops]\n{extra}\ndead_letter_url = \"{url}\"\n")
    }

    #[test]
    fn a_dead_letter_url_is_read() {
        let text = hook("", "https://ops.example/dead-letters");
        let config = Config::from_toml(&text, &Overrides::default()).unwrap();
        assert_eq!(
            config.profiles["ops"].dead_letter_url.as_deref(),
            Some("https://ops.example/dead-letters")
        );
        assert_eq!(config.profiles["default"].dead_letter_url, None);
        let text = hook(
            "allow_http = true\nallow_private = [\"10.0.0.0/8\"]",
            "http://10.1.2.3:8080/dl",
        );
        assert!(Config::from_toml(&text, &Overrides::default()).is_ok());
    }

    #[test]
    fn a_dead_letter_url_follows_the_profiles_url_rules() {
        let key = "profiles.ops.dead_letter_url";
        for (extra, url, says) in [
            ("", "ops.example/dl", "absolute http or https URL"),
            ("", "https://user@ops.example/dl", "user info"),
            ("", "https://ops.example/dl#x", "fragment"),
            ("", "http://ops.example/dl", "allow_http = false"),
            ("", "https://127.0.0.1/dl", "loopback"),
            (
                "allow_http = true",
                "http://[::ffff:a9fe:a9fe]/",
                "cloud-metadata",
            ),
            (
                "allow_private = [\"10.0.0.0/8\"]",
                "https://192.168.1.1/dl",
                "private",
            ),
        ] {
            let found = problems(&hook(extra, url));
            assert!(
                found
                    .iter()
                    .any(|p| p.key == key && p.message.contains(says)),
                "{url}: {found:?}"
            );
        }
    }

    #[test]
    fn the_postgres_store_takes_a_dead_letter_url() {
        let text = format!(
            "[store]\nkind = \"postgres\"\nurl = \"postgres://h/db\"\n{}",
            hook("", "https://ops.example/dl")
        );
        let config = Config::from_toml(&text, &Overrides::default()).unwrap();
        assert!(matches!(
            config.store.backend,
            crate::config::StoreBackend::Postgres(_)
        ));
        assert_eq!(
            config.profiles["ops"].dead_letter_url.as_deref(),
            Some("https://ops.example/dl")
        );
    }
}
