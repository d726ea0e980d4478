//! Builds the C tests in ffi/tests/c against libnotifyd.a and include/notifyd.h and runs them:
//! once with AddressSanitizer and UBSan, and under valgrind against both the debug and the
//! release library (the one gateways ship: its optimised code is what valgrind must see). The
//! smoke test's client checks talk to a real notifyd started here.

mod support;

use std::path::Path;
use std::process::Command;

use support::{
    Notifyd, ensure_libraries_built, ensure_release_libraries_built, harness_env, have, repo_root,
    run_harness, target_profile_dir,
};

/// `make` in ffi/tests/c against the libnotifyd.a in `libdir`, with the given sanitizer flags,
/// into `out`.
fn build(libdir: &Path, out: &Path, san: &str) {
    let status = Command::new("make")
        .arg("-C")
        .arg(repo_root().join("ffi/tests/c"))
        .arg(format!("LIBDIR={}", libdir.display()))
        .arg(format!("OUT={}", out.display()))
        .arg(format!("INCLUDE={}", repo_root().join("include").display()))
        .arg(format!("SAN={san}"))
        .arg("-B")
        .status()
        .expect("running make");
    assert!(status.success(), "building the C tests failed");
}

fn tools_present() -> bool {
    have("cc", "--version") && have("make", "--version")
}

#[test]
fn c_tests_pass_under_asan_and_ubsan() {
    if !tools_present() {
        return;
    }
    let out = target_profile_dir().join("c-tests/asan");
    build(
        &ensure_libraries_built(),
        &out,
        "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all",
    );
    let nd = Notifyd::start();
    let mut smoke = Command::new(out.join("smoke"));
    smoke.envs(harness_env(&nd));
    let n = run_harness(smoke, "smoke (asan)");
    assert!(n > 200, "smoke ran only {n} checks");
    run_harness(Command::new(out.join("threads")), "threads (asan)");
}

/// The C tests under valgrind, linked against the libnotifyd.a in `libdir`.
fn valgrind(libdir: &Path, out: &Path, what: &str) {
    build(libdir, out, "");
    let nd = Notifyd::start();
    for prog in ["smoke", "threads"] {
        let mut cmd = Command::new("valgrind");
        cmd.args([
            "--quiet",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
        ])
        .arg(out.join(prog))
        .envs(harness_env(&nd));
        run_harness(cmd, &format!("{prog} (valgrind, {what})"));
    }
}

#[test]
fn c_tests_are_clean_under_valgrind() {
    if !tools_present() || !have("valgrind", "--version") {
        return;
    }
    let out = target_profile_dir().join("c-tests/valgrind");
    valgrind(&ensure_libraries_built(), &out, "this profile");
}

#[test]
fn c_tests_are_clean_under_valgrind_against_the_release_library() {
    if !tools_present() || !have("valgrind", "--version") {
        return;
    }
    let libdir = ensure_release_libraries_built();
    valgrind(&libdir, &libdir.join("c-tests/valgrind-release"), "release");
}
