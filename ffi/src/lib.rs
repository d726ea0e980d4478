//! libnotifyd: the C ABI over notifyd-core. Built out in the C ABI issue; only the version is exported yet.
#![deny(rust_2018_idioms)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::c_char;

/// The library version as a static NUL-terminated string, e.g. `"0.1.0"`. Never NULL; do not free.
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
