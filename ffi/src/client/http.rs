//! A minimal blocking HTTP/1.1 client for notifyd's ingest API: one request per connection
//! (`Connection: close`), one deadline for the whole exchange, bounded response size.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Largest response accepted; a batch of 1000 results is about 150 KiB.
pub(crate) const MAX_RESPONSE_BYTES: usize = 16 << 20;
const MAX_HEAD_BYTES: usize = 64 << 10;
/// Longest chunk-size line (size, extensions) accepted in a chunked body.
const MAX_CHUNK_LINE_BYTES: usize = 1024;

#[derive(Debug)]
pub(crate) enum Target {
    /// Resolved addresses, tried in order, and the `Host` header value.
    Tcp(Vec<SocketAddr>, String),
    Unix(PathBuf),
}

#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) target: Target,
    pub(crate) timeout: Duration,
    pub(crate) token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Error {
    Connect,
    Timeout,
    Io,
    BadResponse,
    TooLarge,
}

#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<u64>,
    pub(crate) body: Vec<u8>,
}

fn io_error(e: &io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout,
        io::ErrorKind::UnexpectedEof => Error::BadResponse,
        _ => Error::Io,
    }
}

/// A connected stream whose per-call timeouts can be moved with the deadline.
trait Conn: Read + Write {
    fn set_timeouts(&self, t: Duration) -> io::Result<()>;
}

/// Both stream types have the same inherent timeout setters, but no trait that names them.
macro_rules! conn_by_timeouts {
    ($($stream:ty),*) => {$(
        impl Conn for $stream {
            fn set_timeouts(&self, t: Duration) -> io::Result<()> {
                self.set_read_timeout(Some(t))?;
                self.set_write_timeout(Some(t))
            }
        }
    )*};
}

conn_by_timeouts!(TcpStream, UnixStream);

/// Adapts a stream so every read and write waits at most until the deadline.
struct Deadline<C> {
    conn: C,
    until: Instant,
}

impl<C: Conn> Deadline<C> {
    fn arm(&self) -> io::Result<()> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.conn.set_timeouts(left)
    }
}

impl<C: Conn> Read for Deadline<C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm()?;
        self.conn.read(buf)
    }
}

impl<C: Conn> Write for Deadline<C> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm()?;
        // Forwarding the trait method; the caller uses write_all.
        #[allow(clippy::disallowed_methods)]
        self.conn.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()
    }
}

impl Client {
    /// POSTs `body` as JSON to `path` and returns the answer, whatever its status.
    pub(crate) fn post(&self, path: &str, body: &[u8]) -> Result<Response, Error> {
        let until = Instant::now() + self.timeout;
        let token = self.token.as_deref();
        match &self.target {
            Target::Tcp(addrs, host) => {
                let conn = connect_tcp(addrs, until)?;
                // Requests are written in one go; Nagle would only add a round trip.
                let _ = conn.set_nodelay(true);
                exchange(Deadline { conn, until }, host, path, body, token)
            }
            Target::Unix(p) => {
                let conn = UnixStream::connect(p).map_err(|_| Error::Connect)?;
                exchange(Deadline { conn, until }, "localhost", path, body, token)
            }
        }
    }
}

fn connect_tcp(addrs: &[SocketAddr], until: Instant) -> Result<TcpStream, Error> {
    let mut last = Error::Connect;
    for addr in addrs {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout);
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => last = Error::Timeout,
            Err(_) => last = Error::Connect,
        }
    }
    Err(last)
}

fn exchange<C: Conn>(
    mut conn: Deadline<C>,
    host: &str,
    path: &str,
    body: &[u8],
    token: Option<&str>,
) -> Result<Response, Error> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str("Authorization: Bearer ");
        head.push_str(t);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    conn.write_all(&request).map_err(|e| io_error(&e))?;
    conn.flush().map_err(|e| io_error(&e))?;
    read_response(&mut conn)
}

fn read_response(r: &mut impl Read) -> Result<Response, Error> {
    let mut buf = Vec::with_capacity(4096);
    // Where the search for the blank line resumes: a server that trickles its head a byte at
    // a time must not make each read rescan everything before it.
    let mut scanned = 0;
    let head_end = loop {
        if let Some(i) = find(&buf[scanned..], b"\r\n\r\n").map(|i| scanned + i) {
            // Judged on where the head ends, not on how much one read brought in, so the answer
            // does not depend on how the server's bytes were split into packets.
            if i + 4 > MAX_HEAD_BYTES {
                return Err(Error::BadResponse);
            }
            break i + 4;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(Error::BadResponse);
        }
        scanned = buf.len().saturating_sub(3);
        if fill(r, &mut buf)? == 0 {
            return Err(Error::BadResponse);
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| Error::BadResponse)?;
    let mut lines = head.split("\r\n");
    let status = parse_status_line(lines.next().unwrap_or(""))?;
    let mut length = None;
    let mut chunked = false;
    let mut retry_after = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(Error::BadResponse)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            if !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::BadResponse);
            }
            let n: usize = value.parse().map_err(|_| Error::BadResponse)?;
            if n > MAX_RESPONSE_BYTES {
                return Err(Error::TooLarge);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().ends_with("chunked");
        } else if name.eq_ignore_ascii_case("retry-after") {
            retry_after = value.parse().ok();
        }
    }
    let mut rest = buf.split_off(head_end);
    let body = if chunked {
        read_chunked(r, rest)?
    } else if let Some(n) = length {
        while rest.len() < n {
            if fill(r, &mut rest)? == 0 {
                return Err(Error::BadResponse);
            }
        }
        rest.truncate(n);
        rest
    } else {
        while fill(r, &mut rest)? != 0 {
            if rest.len() > MAX_RESPONSE_BYTES {
                return Err(Error::TooLarge);
            }
        }
        rest
    };
    Ok(Response {
        status,
        retry_after,
        body,
    })
}

fn parse_status_line(line: &str) -> Result<u16, Error> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    // `u16::from_str` also takes "+12"; a status is exactly three digits, 100 to 999.
    if !version.starts_with("HTTP/1.")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
        || code.starts_with('0')
    {
        return Err(Error::BadResponse);
    }
    code.parse().map_err(|_| Error::BadResponse)
}

/// Decodes a chunked body; `pending` holds bytes already read past the head.
fn read_chunked(r: &mut impl Read, mut pending: Vec<u8>) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    loop {
        let mut scanned = 0;
        let line_end = loop {
            // As for the head: the line's length decides, not the size of the last read.
            if let Some(i) = find(&pending[scanned..], b"\r\n").map(|i| scanned + i) {
                if i > MAX_CHUNK_LINE_BYTES {
                    return Err(Error::BadResponse);
                }
                break i;
            }
            scanned = pending.len().saturating_sub(1);
            if pending.len() > MAX_CHUNK_LINE_BYTES || fill(r, &mut pending)? == 0 {
                return Err(Error::BadResponse);
            }
        };
        let size_text =
            std::str::from_utf8(&pending[..line_end]).map_err(|_| Error::BadResponse)?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        // `from_str_radix` also takes a leading '+', which is no hex digit.
        if !size_text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::BadResponse);
        }
        let size = usize::from_str_radix(size_text, 16).map_err(|_| Error::BadResponse)?;
        if body.len().saturating_add(size) > MAX_RESPONSE_BYTES {
            return Err(Error::TooLarge);
        }
        pending.drain(..line_end + 2);
        // The chunk and its CRLF (for the last chunk: an empty trailer section's CRLF).
        while pending.len() < size + 2 {
            if fill(r, &mut pending)? == 0 {
                return Err(Error::BadResponse);
            }
        }
        if &pending[size..size + 2] != b"\r\n" {
            return Err(Error::BadResponse);
        }
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&pending[..size]);
        pending.drain(..size + 2);
    }
}

fn fill(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<usize, Error> {
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(&e)),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The response parser as `nd_client_submit` runs it, for the fuzz target in `fuzz/` (feature
/// `fuzzing`); not part of the C ABI, and no stable Rust API.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use crate::result::nd_result;

    /// The largest body a successful parse may return. (A function: cbindgen would put a
    /// `pub const` into the C header, even behind this feature.)
    pub fn max_response_bytes() -> usize {
        super::MAX_RESPONSE_BYTES
    }

    /// One response read from `r`: `(status, retry_after, body)`, or the code the submit
    /// would return.
    pub fn read_response(
        r: &mut impl std::io::Read,
    ) -> Result<(u16, Option<u64>, Vec<u8>), nd_result> {
        super::read_response(r)
            .map(|resp| (resp.status, resp.retry_after, resp.body))
            .map_err(super::super::map_client_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read, as a slow network would.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn limits_do_not_depend_on_how_reads_split_the_answer() {
        let long_head = format!(
            "HTTP/1.1 200 OK\r\nX-Pad: {}\r\nContent-Length: 2\r\n\r\n{{}}",
            "p".repeat(MAX_HEAD_BYTES)
        );
        let long_chunk_line = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;{}\r\n{{}}\r\n0\r\n\r\n",
            "x".repeat(2 * MAX_CHUNK_LINE_BYTES)
        );
        for raw in [long_head, long_chunk_line] {
            let whole = parse(raw.as_bytes()).map(|r| r.body);
            let trickled = read_response(&mut Trickle {
                data: raw.as_bytes(),
                step: 7,
            })
            .map(|r| r.body);
            assert_eq!(whole, trickled);
            assert_eq!(whole, Err(Error::BadResponse));
        }
    }

    #[test]
    fn numbers_are_digits_only() {
        for bad in [
            &b"HTTP/1.1 +20 OK\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad).unwrap_err(),
                Error::BadResponse,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn parse(raw: &[u8]) -> Result<Response, Error> {
        read_response(&mut &raw[..])
    }

    #[test]
    fn content_length_bodies() {
        let r = parse(
            b"HTTP/1.1 429 Too Many\r\nContent-Length: 2\r\nRetry-After: 3\r\n\r\n{}trailing",
        )
        .unwrap();
        assert_eq!(
            (r.status, r.retry_after, &r.body[..]),
            (429, Some(3), &b"{}"[..])
        );
    }

    #[test]
    fn chunked_bodies() {
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"abcde"[..]));
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n")
                .unwrap_err(),
            Error::BadResponse
        );
    }

    #[test]
    fn bodies_to_eof_and_malformed_heads() {
        let r = parse(b"HTTP/1.0 503 Unavailable\r\n\r\nbye").unwrap();
        assert_eq!((r.status, &r.body[..]), (503, &b"bye"[..]));
        assert_eq!(
            parse(b"SMTP 220 hi\r\n\r\n").unwrap_err(),
            Error::BadResponse
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").unwrap_err(),
            Error::BadResponse
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\n").unwrap_err(),
            Error::BadResponse
        );
        let huge = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_RESPONSE_BYTES + 1
        );
        assert_eq!(parse(huge.as_bytes()).unwrap_err(), Error::TooLarge);
    }
}
