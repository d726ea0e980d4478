//! Shared by the integration tests: a real notifyd started in-process, the signing test vector,
//! and the build directories of the C and Java harnesses.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../../../daemon/tests/support/skip.rs"]
mod skip;
#[allow(unused_imports)] // each test binary uses a different subset
pub use skip::skip;

/// A running notifyd on 127.0.0.1 (ephemeral port) and a Unix socket, with a fresh store.
pub struct Notifyd {
    pub addr: String,
    pub socket: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
    running: Option<notifyd_daemon::run::Running>,
    _dir: tempfile::TempDir,
}

impl Notifyd {
    pub fn start() -> Notifyd {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("ingest.sock");
        // Receivers at 127.0.0.1:9 refuse connections: deliveries just retry in the background.
        let toml = format!(
            "[store]\npath = {:?}\n\n[ingest]\nlisten = \"127.0.0.1:0\"\nunix_socket = {:?}\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\n[profiles.default]\nallow_http = true\nallow_private = [\"127.0.0.0/8\"]\n",
            dir.path().join("store.redb"),
            socket,
        );
        let config = notifyd_daemon::config::Config::from_toml(&toml, &Default::default())
            .unwrap_or_else(|p| panic!("test config refused: {p:?}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let running = runtime
            .block_on(notifyd_daemon::run::start(&config))
            .expect("notifyd starts");
        Notifyd {
            addr: running.ingest.to_string(),
            socket,
            runtime: Some(runtime),
            running: Some(running),
            _dir: dir,
        }
    }
}

impl Drop for Notifyd {
    fn drop(&mut self) {
        if let (Some(rt), Some(running)) = (self.runtime.take(), self.running.take()) {
            rt.block_on(running.shutdown());
        }
    }
}

/// `shared/spec/sigvec`, found beside the checkout as core's signing tests find it.
pub fn sigvec_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NOTIFYD_SIGVEC_DIR") {
        return PathBuf::from(dir);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/spec/sigvec"))
        .find(|d| d.join("vector.json").is_file())
        .expect("shared/spec/sigvec/vector.json beside the checkout (or NOTIFYD_SIGVEC_DIR)")
}

/// The environment the C and Java harnesses read: notifyd's addresses and the signing vector.
pub fn harness_env(nd: &Notifyd) -> Vec<(String, String)> {
    use simd_json::prelude::*;
    let dir = sigvec_dir();
    let mut json = std::fs::read(dir.join("vector.json")).expect("vector.json");
    let v = simd_json::to_owned_value(&mut json).expect("vector.json is JSON");
    let field = |section: &str, name: &str| {
        v.get(section)
            .and_then(|s| s.get_str(name))
            .unwrap_or_else(|| panic!("vector.json lacks {section}.{name}"))
            .to_owned()
    };
    vec![
        ("ND_TEST_ADDR".into(), nd.addr.clone()),
        ("ND_TEST_SOCK".into(), nd.socket.display().to_string()),
        ("ND_SIGVEC_DIR".into(), dir.display().to_string()),
        (
            "ND_REQ_SIGNATURE".into(),
            field("request", "Signature_header"),
        ),
        (
            "ND_RESP_CONTENT".into(),
            field("response", "content_to_be_validated"),
        ),
        (
            "ND_RESP_SIGNATURE".into(),
            field("response", "Signature_header"),
        ),
    ]
}

/// `target/<profile>`, where cargo put libnotifyd.a and libnotifyd.so for this test run.
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Builds libnotifyd.a and libnotifyd.so for this profile, once per test binary: `cargo test`
/// itself builds the library only as an rlib for the tests, which would leave the C and Java
/// harnesses linking a stale archive.
pub fn ensure_libraries_built() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = target_profile_dir();
            let release = dir.file_name().is_some_and(|n| n == "release");
            cargo_build_libraries(dir, release)
        })
        .clone()
}

/// Builds the release libnotifyd.a and .so (in `target/release`), once per test binary: the
/// build gateways ship. Optimised code takes paths a debug build does not (sonic-rs reads past
/// the end of a string only with debug assertions off), so memory checks must see this one too.
pub fn ensure_release_libraries_built() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = target_profile_dir()
                .parent()
                .expect("target dir")
                .to_path_buf();
            cargo_build_libraries(target.join("release"), true)
        })
        .clone()
}

/// `cargo build -p notifyd-ffi --lib` into `dir` (`<target>/<profile>`); returns `dir`.
fn cargo_build_libraries(dir: PathBuf, release: bool) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    // The variables cargo sets for this test process would otherwise reach build
    // scripts (ring's) and force rebuilds on every run.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("CARGO_") && name != "CARGO_HOME" || name == "OUT_DIR" {
            cmd.env_remove(name);
        }
    }
    cmd.args(["build", "-p", "notifyd-ffi", "--lib"])
        .env("CARGO_TARGET_DIR", dir.parent().expect("target dir"))
        .current_dir(repo_root());
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("running cargo build");
    assert!(status.success(), "cargo build -p notifyd-ffi failed");
    dir
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Whether `tool` runs; when it does not, the test is skipped ([`skip`]: a failure in CI).
pub fn have(tool: &str, version_arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(&format!("{tool} is not installed"));
    }
    ok
}

/// Runs a harness program and checks its last line is `N passed, 0 failed` with N > 0.
pub fn run_harness(mut cmd: Command, what: &str) -> usize {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{what} stdout:\n{stdout}\n{what} stderr:\n{stderr}");
    let last = stdout.lines().last().unwrap_or("");
    let counts: Vec<usize> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(
        last.ends_with(" failed") && counts.len() == 2,
        "{what}: last line is not `N passed, N failed`: {last:?}"
    );
    assert!(out.status.success(), "{what} exited with {}", out.status);
    assert_eq!(counts[1], 0, "{what}: {last}");
    assert!(counts[0] > 0, "{what} ran no checks");
    counts[0]
}
