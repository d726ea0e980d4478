//! TOML text to [`FileConfig`], collecting every structural problem (syntax, unknown keys, wrong types).
//!
//! serde stops at the first error, so each table is deserialized on its own and an offending key is
//! reported, dropped (its default stands in) and the table tried again, until it goes through.

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::file::{FileConfig, ProfileFile, RetryFile};
use super::problem::Problems;

const SECTIONS: &str =
    "store, ingest, metrics, delivery, shutdown, log, profiles, inquiry, merchants";

/// Parses `text`; problems go to `problems` and the affected keys keep their defaults.
pub(crate) fn parse_file(text: &str, problems: &mut Problems) -> FileConfig {
    let table: Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            problems.push("", e.to_string().trim_end().to_owned());
            return FileConfig::default();
        }
    };
    let mut file = FileConfig::default();
    for (name, value) in table {
        match name.as_str() {
            "store" => file.store = section(&name, value, problems),
            "ingest" => file.ingest = section(&name, value, problems),
            "metrics" => file.metrics = section(&name, value, problems),
            "delivery" => file.delivery = section(&name, value, problems),
            "shutdown" => file.shutdown = section(&name, value, problems),
            "log" => file.log = section(&name, value, problems),
            "inquiry" => file.inquiry = section(&name, value, problems),
            "merchants" => match value {
                Value::Table(merchants) => {
                    for (merchant, value) in merchants {
                        let key = format!("merchants.{merchant}");
                        let parsed = section(&key, value, problems);
                        file.merchants.insert(merchant, parsed);
                    }
                }
                _ => problems.push("merchants", "must be a table of merchants"),
            },
            "profiles" => match value {
                Value::Table(profiles) => {
                    for (profile, value) in profiles {
                        let key = format!("profiles.{profile}");
                        let parsed = parse_profile(&key, value, problems);
                        file.profiles.insert(profile, parsed);
                    }
                }
                _ => problems.push("profiles", "must be a table of profiles"),
            },
            _ => problems.push(name, format!("unknown section; expected one of {SECTIONS}")),
        }
    }
    file
}

fn parse_profile(key: &str, value: Value, problems: &mut Problems) -> ProfileFile {
    let Value::Table(mut table) = value else {
        problems.push(key, "must be a table");
        return ProfileFile::default();
    };
    let retry = table.remove("retry");
    let mut profile: ProfileFile = section(key, Value::Table(table), problems);
    if let Some(retry) = retry {
        profile.retry = section::<RetryFile>(&format!("{key}.retry"), retry, problems);
    }
    profile
}

/// Deserializes the table at `key`, reporting and dropping bad keys one by one.
fn section<T: DeserializeOwned + Default>(key: &str, value: Value, problems: &mut Problems) -> T {
    let Value::Table(mut table) = value else {
        problems.push(key, "must be a table");
        return T::default();
    };
    // Each round drops one key, so this ends.
    loop {
        match Value::Table(table.clone()).try_into::<T>() {
            Ok(parsed) => return parsed,
            Err(e) => {
                let (field, message) = explain(&e);
                match field {
                    Some(field) if table.remove(&field).is_some() => {
                        problems.push(format!("{key}.{field}"), message);
                    }
                    _ => {
                        problems.push(key, message);
                        return T::default();
                    }
                }
            }
        }
    }
}

/// The top-level key a deserialization error is about, and its message.
fn explain(error: &toml::de::Error) -> (Option<String>, String) {
    let message = error.message().to_owned();
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once('`')
    {
        let expected = expected.trim_start_matches(", ");
        return (Some(field.to_owned()), format!("unknown key; {expected}"));
    }
    // Errors inside a value name its key path on a line `in `a.b``; only the first part is ours to drop.
    let rendered = error.to_string();
    let field = rendered
        .lines()
        .find_map(|line| {
            line.strip_prefix("in `")?
                .strip_suffix('`')
                .map(str::to_owned)
        })
        .map(|path| path.split('.').next().unwrap_or_default().to_owned());
    (field, message)
}
