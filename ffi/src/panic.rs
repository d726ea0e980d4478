//! The panic boundary: no unwind ever reaches C.
//!
//! Every exported function wraps its body in [`ffi_boundary!`] (fallible, returns `nd_result`) or
//! [`ffi_boundary_or_default!`] (infallible getters). A panic becomes `ND_RESULT_PANIC` or the
//! return type's documented default instead of aborting the host process: the library lives
//! inside someone else's process (a JVM), and an error code lets it fail one request.

use std::ffi::c_char;

use crate::result::nd_result;

/// What an infallible function returns when its body panicked or got a NULL it cannot use.
pub(crate) trait PanicOrDefault {
    fn value() -> Self;
}

impl PanicOrDefault for nd_result {
    fn value() -> Self {
        nd_result::Panic
    }
}

impl PanicOrDefault for *const c_char {
    fn value() -> Self {
        std::ptr::null()
    }
}

impl PanicOrDefault for usize {
    fn value() -> Self {
        0
    }
}

impl PanicOrDefault for u32 {
    fn value() -> Self {
        0
    }
}

impl PanicOrDefault for bool {
    fn value() -> Self {
        false
    }
}

impl PanicOrDefault for () {
    fn value() -> Self {}
}

/// Runs a fallible body (a block evaluating to `Result<(), nd_result>`, `?` allowed) and returns
/// its `nd_result`; a panic gives `ND_RESULT_PANIC`.
macro_rules! ffi_boundary {
    ($($body:tt)*) => {{
        let run = || -> ::std::result::Result<(), $crate::result::nd_result> { $($body)* };
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(run)) {
            Ok(Ok(())) => $crate::result::nd_result::Ok,
            Ok(Err(code)) => code,
            Err(_) => $crate::result::nd_result::Panic,
        }
    }};
}

/// Runs an infallible body; a panic gives the return type's [`PanicOrDefault`] value.
macro_rules! ffi_boundary_or_default {
    ($($body:tt)*) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(v) => v,
            Err(_) => $crate::panic::PanicOrDefault::value(),
        }
    }};
}

pub(crate) use {ffi_boundary, ffi_boundary_or_default};

#[cfg(test)]
mod tests {
    use super::*;

    fn fallible(panic: bool) -> nd_result {
        ffi_boundary! {
            if panic {
                panic!("boom");
            }
            Err(nd_result::NullParameter)
        }
    }

    fn getter(panic: bool) -> usize {
        ffi_boundary_or_default! {
            if panic {
                panic!("boom");
            }
            7
        }
    }

    #[test]
    fn panics_become_codes_or_defaults() {
        assert_eq!(fallible(false), nd_result::NullParameter);
        assert_eq!(fallible(true), nd_result::Panic);
        assert_eq!(getter(false), 7);
        assert_eq!(getter(true), 0);
    }
}
