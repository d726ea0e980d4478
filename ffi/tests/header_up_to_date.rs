//! `include/notifyd.h` is what cbindgen generates from the current source, and its version
//! macros match Cargo.toml. Regenerate with
//! `ND_UPDATE_HEADER=1 cargo test -p notifyd-ffi --test header_up_to_date`.

use std::path::{Path, PathBuf};

fn header_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/notifyd.h")
}

fn generate() -> String {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(Path::new(crate_dir).join("cbindgen.toml"))
        .expect("ffi/cbindgen.toml parses");
    let mut out = Vec::new();
    cbindgen::generate_with_config(crate_dir, config)
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn header_matches_the_source() {
    let generated = generate();
    let path = header_path();
    if std::env::var_os("ND_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("writing include/notifyd.h");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/notifyd.h is out of date; regenerate it with\n  \
         ND_UPDATE_HEADER=1 cargo test -p notifyd-ffi --test header_up_to_date"
    );
}

#[test]
fn version_macros_match_cargo_toml() {
    let header = std::fs::read_to_string(header_path()).expect("include/notifyd.h exists");
    for (name, value) in [
        ("ND_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("ND_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("ND_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        let line = format!("#define {name} {value}\n");
        assert!(
            header.contains(&line),
            "include/notifyd.h lacks `{}`: update after_includes in ffi/cbindgen.toml to the \
             version in Cargo.toml and regenerate",
            line.trim_end()
        );
    }
}
