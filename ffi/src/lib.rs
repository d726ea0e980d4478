//! libnotifyd: the C ABI over notifyd-core, for payment gateways written in C or Java.
//!
//! Conventions (also in `ffi/README.md` and the header): opaque handles made by `*_new` and
//! released by `*_free` (`_free(NULL)` is a no-op); every fallible function returns an
//! `nd_result`; out-parameters are written only on success; C never frees Rust memory; no panic
//! crosses the boundary. Every exported function is `unsafe extern "C"` because its pointer
//! arguments must satisfy the rules stated in its documentation.
#![deny(rust_2018_idioms)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
// The pointer rules are stated once for the whole API (README, header) and per argument in each
// function's documentation, which is what C readers see; a `# Safety` heading would repeat them.
#![allow(clippy::missing_safety_doc)]
// C names: `nd_result`, `nd_envelope`, as the header spells them.
#![allow(non_camel_case_types)]

use std::ffi::c_char;

mod panic;

pub mod ack;
pub mod backoff;
pub mod client;
mod handle;
pub mod idempotency;
pub mod notification;
pub mod result;
pub mod signing;

/// The library version as a static NUL-terminated string, e.g. `"0.1.0"`; it equals
/// `ND_VERSION_MAJOR.ND_VERSION_MINOR.ND_VERSION_PATCH` of the header it was built with.
/// Never NULL; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn nd_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_the_crate_version() {
        // SAFETY: nd_version returns a pointer to a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(super::nd_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
