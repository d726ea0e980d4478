//! Builds the JNI binding in ffi/java with the JDK on the machine (`javac -h`, gcc) and runs its
//! test program against a real notifyd. Skipped, with the reason printed, when javac is absent
//! (a failure instead when NOTIFYD_CI is set).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Notifyd, ensure_libraries_built, harness_env, have, repo_root, run_harness};

fn java_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("reading java sources") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(java_files(&path));
        } else if path.extension().is_some_and(|e| e == "java") {
            out.push(path);
        }
    }
    out
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed");
}

#[test]
fn java_binding_passes_its_tests() {
    if !have("javac", "-version") || !have("cc", "--version") {
        return;
    }
    let javac = which("javac");
    // $JAVA_HOME/bin/javac -> $JAVA_HOME
    let java_home = std::fs::canonicalize(&javac)
        .expect("resolving javac")
        .parent()
        .and_then(Path::parent)
        .expect("JAVA_HOME")
        .to_path_buf();
    let libdir = ensure_libraries_built();
    let root = repo_root();
    let java = root.join("ffi/java");
    let out = libdir.join("java-tests");
    let (classes, headers, test_classes) = (
        out.join("classes"),
        out.join("jni"),
        out.join("test-classes"),
    );

    run(
        Command::new("javac")
            .args(["-Xlint:all", "-Werror", "-d"])
            .arg(&classes)
            .arg("-h")
            .arg(&headers)
            .args(java_files(&java.join("src"))),
        "javac (binding)",
    );
    run(
        Command::new("cc")
            .args([
                "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-O1",
            ])
            .arg(format!("-I{}", java_home.join("include").display()))
            .arg(format!("-I{}", java_home.join("include/linux").display()))
            .arg(format!("-I{}", headers.display()))
            .arg(format!("-I{}", root.join("include").display()))
            .arg(java.join("native/nd_jni.c"))
            .arg(libdir.join("libnotifyd.a"))
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(out.join("libnotifyd_jni.so")),
        "cc (JNI shim)",
    );
    run(
        Command::new("javac")
            .args(["-Xlint:all", "-Werror", "-cp"])
            .arg(&classes)
            .arg("-d")
            .arg(&test_classes)
            .args(java_files(&java.join("test"))),
        "javac (test)",
    );

    let nd = Notifyd::start();
    let mut cmd = Command::new("java");
    cmd.arg("--enable-native-access=ALL-UNNAMED")
        .arg(format!("-Djava.library.path={}", out.display()))
        .arg("-cp")
        .arg(format!("{}:{}", classes.display(), test_classes.display()))
        .arg("dev.notifyd.NdTest")
        .envs(harness_env(&nd));
    let n = run_harness(cmd, "java NdTest");
    assert!(n > 30, "NdTest ran only {n} checks");
}

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} not on PATH"))
}
