//! The `notifyd` binary. The daemon is built in the daemon issue; until then it says so and exits.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

fn main() {
    eprintln!(
        "notifyd {}: the daemon is not built yet (see the daemon issue); notifyd-core is the usable part",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(69);
}
