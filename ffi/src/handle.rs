//! Turning C arguments into Rust values and back: opaque handles, byte ranges, strings,
//! out-parameters and caller buffers. Every raw-pointer conversion in the crate goes through here.

use std::ffi::c_char;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::result::nd_result;

/// An opaque C type owned as a `Box<Rust>`: single owner, freed by its `_free`.
pub(crate) trait BoxCastable {
    type Rust;
}

/// An opaque C type owned as an `Arc<Rust>`: shared, immutable or internally synchronised.
pub(crate) trait ArcCastable {
    type Rust: Send + Sync;
}

pub(crate) fn box_into_ptr<C: BoxCastable>(value: C::Rust) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// # Safety
/// `p` is NULL or came from [`box_into_ptr`] for the same `C` and has not been freed.
pub(crate) unsafe fn box_ref<'a, C: BoxCastable>(p: *const C) -> Result<&'a C::Rust, nd_result> {
    // SAFETY: per the contract, a non-NULL `p` points to a live `C::Rust` made by Box::into_raw.
    unsafe { p.cast::<C::Rust>().as_ref() }.ok_or(nd_result::NullParameter)
}

/// # Safety
/// As [`box_ref`]; `p` is not used again.
pub(crate) unsafe fn box_free<C: BoxCastable>(p: *mut C) {
    if !p.is_null() {
        // SAFETY: `p` came from Box::into_raw of a `C::Rust` and ownership returns to us here.
        drop(unsafe { Box::from_raw(p.cast::<C::Rust>()) });
    }
}

pub(crate) fn arc_into_ptr<C: ArcCastable>(value: C::Rust) -> *const C {
    Arc::into_raw(Arc::new(value)).cast()
}

/// # Safety
/// `p` is NULL or came from [`arc_into_ptr`] for the same `C` and has not been freed.
pub(crate) unsafe fn arc_ref<'a, C: ArcCastable>(p: *const C) -> Result<&'a C::Rust, nd_result> {
    // SAFETY: per the contract, a non-NULL `p` points into a live Arc allocation of `C::Rust`,
    // which the caller keeps alive for the duration of the call.
    unsafe { p.cast::<C::Rust>().as_ref() }.ok_or(nd_result::NullParameter)
}

/// # Safety
/// As [`arc_ref`]; `p` is not used again.
pub(crate) unsafe fn arc_free<C: ArcCastable>(p: *const C) {
    if !p.is_null() {
        // SAFETY: `p` came from Arc::into_raw of a `C::Rust`; this drops the reference it held.
        drop(unsafe { Arc::from_raw(p.cast::<C::Rust>()) });
    }
}

/// An input byte range. `(NULL, 0)` is the empty range; `(NULL, n > 0)` is an error.
///
/// # Safety
/// A non-NULL `p` points to `len` readable bytes that stay unchanged during the call.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8], nd_result> {
    if p.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(nd_result::NullParameter)
        };
    }
    // SAFETY: non-NULL and `len` readable bytes, per the contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An input UTF-8 string as `(ptr, len)`, no NUL needed.
///
/// # Safety
/// As [`bytes`].
pub(crate) unsafe fn text<'a>(p: *const u8, len: usize) -> Result<&'a str, nd_result> {
    // SAFETY: forwarded contract.
    let b = unsafe { bytes(p, len) }?;
    std::str::from_utf8(b).map_err(|_| nd_result::InvalidUtf8)
}

/// A checked, not yet written out-parameter. Checked before any work so a NULL never leaves a
/// side effect behind, and written only once the call has succeeded.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// # Safety
    /// A non-NULL `p` is valid for writing a `T` (it need not be initialised).
    pub(crate) unsafe fn new(p: *mut T) -> Result<Self, nd_result> {
        NonNull::new(p).map(Out).ok_or(nd_result::NullParameter)
    }

    pub(crate) fn write(self, value: T) {
        // SAFETY: `new`'s contract: valid for writes; `write` does not read or drop the old value,
        // which may be uninitialised.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// A caller-allocated output buffer `(buf, cap, out_len)`; `buf` may be NULL when `cap` is 0,
/// which asks for the size only.
pub(crate) struct OutBuf {
    buf: *mut u8,
    cap: usize,
    len: Out<usize>,
}

impl OutBuf {
    /// # Safety
    /// A non-NULL `buf` is valid for writing `cap` bytes; a non-NULL `out_len` for a `size_t`.
    pub(crate) unsafe fn new(
        buf: *mut u8,
        cap: usize,
        out_len: *mut usize,
    ) -> Result<Self, nd_result> {
        if buf.is_null() && cap != 0 {
            return Err(nd_result::NullParameter);
        }
        // SAFETY: forwarded contract.
        let len = unsafe { Out::new(out_len) }?;
        Ok(OutBuf { buf, cap, len })
    }

    /// Copies `data` in and writes its length, or writes the length needed and returns
    /// `ND_RESULT_INSUFFICIENT_SIZE` (the one documented exception to "written only on success").
    pub(crate) fn fill(self, data: &[u8]) -> Result<(), nd_result> {
        if data.len() > self.cap {
            self.len.write(data.len());
            return Err(nd_result::InsufficientSize);
        }
        if !data.is_empty() {
            // SAFETY: `buf` is valid for `cap >= data.len()` bytes (so non-NULL here), and a Rust
            // slice cannot overlap caller memory we were handed as writable.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.buf, data.len()) };
        }
        self.len.write(data.len());
        Ok(())
    }
}

/// Writes `msg` into an optional message buffer as `snprintf` would: truncated to at most
/// `cap - 1` bytes and always NUL-terminated. Does nothing when `buf` is NULL or `cap` is 0.
///
/// The cut falls on a character boundary: messages echo the sender's keys, and a torn UTF-8
/// sequence would reach the gateway's logs, or Java, as invalid text.
///
/// # Safety
/// A non-NULL `buf` is valid for writing `cap` bytes.
pub(crate) unsafe fn write_message(msg: &str, buf: *mut c_char, cap: usize) {
    if buf.is_null() || cap == 0 {
        return;
    }
    let n = char_floor(msg, cap - 1);
    // SAFETY: `buf` is valid for `cap > n` bytes per the contract.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
        buf.add(n).write(0);
    }
}

/// An optional message buffer `(buf, cap)`, checked once so that reporting into it is safe.
pub(crate) struct MessageBuf {
    buf: *mut c_char,
    cap: usize,
}

impl MessageBuf {
    /// # Safety
    /// A non-NULL `buf` is valid for writing `cap` bytes for as long as the value lives.
    pub(crate) unsafe fn new(buf: *mut c_char, cap: usize) -> Self {
        MessageBuf { buf, cap }
    }

    /// Writes `msg` as [`write_message`] does and hands `code` back, for `map_err`.
    pub(crate) fn report(&self, code: nd_result, msg: &dyn std::fmt::Display) -> nd_result {
        // SAFETY: `new`'s contract.
        unsafe { write_message(&msg.to_string(), self.buf, self.cap) };
        code
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn char_floor(s: &str, max: usize) -> usize {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Copies `s` into a fixed C string field, cut on a char boundary to leave room for the NUL.
pub(crate) fn fill_c_array<const N: usize>(dst: &mut [c_char; N], s: &str) {
    let end = char_floor(s, N - 1);
    for (d, b) in dst.iter_mut().zip(&s.as_bytes()[..end]) {
        *d = *b as c_char;
    }
    dst[end] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_ranges_are_empty_only_when_empty() {
        // SAFETY: NULL pointers are allowed by the contract.
        unsafe {
            assert_eq!(bytes(std::ptr::null(), 0), Ok(&[][..]));
            assert_eq!(bytes(std::ptr::null(), 1), Err(nd_result::NullParameter));
        }
        let bad = [0xffu8, 0xfe];
        // SAFETY: `bad` is a live array of the given length.
        let got = unsafe { text(bad.as_ptr(), 2) };
        assert_eq!(got, Err(nd_result::InvalidUtf8));
    }

    #[test]
    fn out_buffers_report_the_size_needed() {
        let mut len = 0usize;
        let mut buf = [0u8; 4];
        // SAFETY: `buf` and `len` are live locals of the sizes given.
        let short = unsafe { OutBuf::new(buf.as_mut_ptr(), 2, &mut len) }.unwrap();
        assert_eq!(short.fill(b"abc"), Err(nd_result::InsufficientSize));
        assert_eq!(len, 3);
        assert_eq!(buf, [0; 4]);
        // SAFETY: as above.
        let fits = unsafe { OutBuf::new(buf.as_mut_ptr(), 4, &mut len) }.unwrap();
        assert_eq!(fits.fill(b"abc"), Ok(()));
        assert_eq!((&buf[..3], len), (&b"abc"[..], 3));
        // SAFETY: NULL buf with cap 0 is the documented size query.
        let query = unsafe { OutBuf::new(std::ptr::null_mut(), 0, &mut len) }.unwrap();
        assert_eq!(query.fill(b"hello"), Err(nd_result::InsufficientSize));
        assert_eq!(len, 5);
        // SAFETY: NULL with a capacity is refused before any access.
        let bad = unsafe { OutBuf::new(std::ptr::null_mut(), 3, &mut len) };
        assert!(matches!(bad, Err(nd_result::NullParameter)));
    }

    #[test]
    fn messages_truncate_and_terminate() {
        let mut buf = [1 as c_char; 5];
        // SAFETY: `buf` is a live array of 5 bytes.
        unsafe { write_message("abcdefgh", buf.as_mut_ptr(), 5) };
        assert_eq!(buf.map(|c| c as u8), *b"abcd\0");
        // "a😀b": the emoji's 4 bytes do not fit in 4 - 1 - 1, so it is dropped whole.
        let mut cut = [1 as c_char; 4];
        // SAFETY: `cut` is a live array of 4 bytes.
        unsafe { write_message("a\u{1F600}b", cut.as_mut_ptr(), 4) };
        assert_eq!(cut.map(|c| c as u8), [b'a', 0, 1, 1]);
        for cap in 1..=7 {
            let mut any = [0 as c_char; 8];
            // SAFETY: `any` is a live array of 8 >= cap bytes.
            unsafe { write_message("é😀x", any.as_mut_ptr(), cap) };
            let text = std::ffi::CStr::from_bytes_until_nul(&any.map(|c| c as u8))
                .unwrap()
                .to_bytes()
                .to_vec();
            assert!(std::str::from_utf8(&text).is_ok(), "cap {cap}: {text:?}");
        }
        let mut small = [7 as c_char; 4];
        fill_c_array(&mut small, "é€"); // 2 + 3 bytes: only "é" fits before the NUL
        assert_eq!(small.map(|c| c as u8), [0xc3, 0xa9, 0, 7]);
    }
}
