//! The one skip helper of the workspace's integration tests: the daemon's support includes it as
//! a module, ffi's through `#[path]`, so every skipped test says so in the same words.

/// Skips a test whose outside tool or privilege is missing, saying why, unless `NOTIFYD_CI` is
/// set: CI installs every such tool, so there a missing one is a failure, never a silent skip.
pub fn skip(reason: &str) {
    assert!(
        std::env::var_os("NOTIFYD_CI").is_none(),
        "a tool CI installs is missing: {reason}"
    );
    eprintln!("SKIPPED: {reason}");
}
