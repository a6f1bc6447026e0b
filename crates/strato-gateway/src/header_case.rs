//! The header names a client sent, with their case.
//!
//! REST API (payload 1.0) events carry header names as the client spelled
//! them (`event.headers['X-My-Header']` works on AWS), but `http::HeaderMap`
//! stores every name in lower case. hyper can keep the original case
//! internally, yet does not expose it, so the server records the bytes each
//! connection reads ([`RecordingStream`]) and, when hyper hands over a
//! request, finds that request's head among them ([`HeadRecorder::take`])
//! and attaches the names as a [`HeaderCase`] extension.
//!
//! Every request on every service passes through here, so the record
//! holds heads, not bodies: once a head is matched, the `Content-Length`
//! bytes of body that follow are counted past as they are read, never
//! copied (a chunked body, whose length is not known ahead, is recorded
//! and scrolls through the bounded record), and a head is found with one
//! substring search.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many recent bytes of a connection are kept. A request head larger
/// than this (far beyond API Gateway's 10 KB header limit) falls back to
/// lower-case names; bodies scroll through without growing the record.
const RECORD_LIMIT: usize = 64 * 1024;

/// The original spelling of a request's header names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderCase {
    /// In the order the client sent them; a name may repeat.
    names: Vec<String>,
}

impl HeaderCase {
    /// The first spelling the client used for `name` (any case).
    pub fn original<'a>(&'a self, name: &str) -> Option<&'a str> {
        self.names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(name))
            .map(String::as_str)
    }
}

impl FromIterator<String> for HeaderCase {
    fn from_iter<I: IntoIterator<Item = String>>(names: I) -> HeaderCase {
        HeaderCase {
            names: names.into_iter().collect(),
        }
    }
}

/// The bytes one connection has read and not yet matched to a request.
#[derive(Debug, Clone, Default)]
pub struct HeadRecorder {
    record: Arc<Mutex<Record>>,
}

#[derive(Debug, Default)]
struct Record {
    bytes: Vec<u8>,
    /// Bytes of the last matched request's body still to be read, which
    /// are not recorded.
    body_left: u64,
}

impl HeadRecorder {
    fn record(&self, read: &[u8]) {
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        let body = usize::try_from(record.body_left)
            .unwrap_or(usize::MAX)
            .min(read.len());
        record.body_left -= body as u64;
        let read = &read[body..];
        if read.is_empty() {
            return;
        }
        record.bytes.extend_from_slice(read);
        if record.bytes.len() > RECORD_LIMIT {
            let excess = record.bytes.len() - RECORD_LIMIT;
            record.bytes.drain(..excess);
        }
    }

    /// The header names of the request hyper parsed as (`method`,
    /// `headers`): the first recorded head with that method whose header
    /// lines are exactly `headers`' names. The record up to that head's end
    /// is dropped, and so is the body that follows when its length is
    /// known (the part already read now, the rest as it is read).
    pub fn take(&self, method: &str, headers: &HeaderMap) -> Option<HeaderCase> {
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        let (names, end) = find_head(&record.bytes, method, headers)?;
        record.bytes.drain(..end);
        if let Some(length) = fixed_body_length(headers) {
            let read = usize::try_from(length)
                .unwrap_or(usize::MAX)
                .min(record.bytes.len());
            record.bytes.drain(..read);
            record.body_left = length - read as u64;
        }
        Some(names.into_iter().collect())
    }
}

/// The body length a request's head fixes, as hyper reads it: its
/// `Content-Length`, unless a `Transfer-Encoding` (chunked) overrides it.
fn fixed_body_length(headers: &HeaderMap) -> Option<u64> {
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return None;
    }
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// (names, offset just past the blank line) of the first head in `bytes`
/// that starts with `method ` and whose header names match `headers`. A
/// head may start anywhere: the body before it need not end a line.
fn find_head(bytes: &[u8], method: &str, headers: &HeaderMap) -> Option<(Vec<String>, usize)> {
    let method = method.as_bytes();
    memchr::memmem::find_iter(bytes, method)
        .filter(|start| bytes.get(start + method.len()) == Some(&b' '))
        .find_map(|start| parse_head(&bytes[start..], headers).map(|(n, end)| (n, start + end)))
}

/// Reads the header lines after the request line at the start of `head`.
fn parse_head(head: &[u8], headers: &HeaderMap) -> Option<(Vec<String>, usize)> {
    let mut names = Vec::new();
    let mut offset = head.iter().position(|b| *b == b'\n')? + 1;
    loop {
        let line_len = head[offset..].iter().position(|b| *b == b'\n')?;
        let line = &head[offset..offset + line_len];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        offset += line_len + 1;
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|b| *b == b':')?;
        let name = std::str::from_utf8(&line[..colon]).ok()?;
        if !headers.contains_key(name.to_ascii_lowercase().as_str()) {
            return None;
        }
        names.push(name.to_string());
    }
    (names.len() == headers.len()).then_some((names, offset))
}

/// A connection whose reads are recorded for [`HeadRecorder::take`].
#[derive(Debug)]
pub struct RecordingStream<S> {
    inner: S,
    recorder: HeadRecorder,
}

impl<S> RecordingStream<S> {
    pub fn new(inner: S) -> RecordingStream<S> {
        RecordingStream {
            inner,
            recorder: HeadRecorder::default(),
        }
    }

    /// The record of this connection's reads.
    pub fn recorder(&self) -> &HeadRecorder {
        &self.recorder
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RecordingStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.recorder.record(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RecordingStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(names: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for name in names {
            map.append(
                http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap(),
                http::HeaderValue::from_static("v"),
            );
        }
        map
    }

    #[test]
    fn names_keep_the_case_the_client_sent() {
        let recorder = HeadRecorder::default();
        recorder.record(b"GET /prod/x HTTP/1.1\r\nHost: a\r\nX-My-Header: 1\r\nx-lower: 2\r\n\r\n");
        let case = recorder
            .take("GET", &headers(&["host", "x-my-header", "x-lower"]))
            .unwrap();
        assert_eq!(case.original("x-my-header"), Some("X-My-Header"));
        assert_eq!(case.original("X-LOWER"), Some("x-lower"));
        assert_eq!(case.original("absent"), None);
    }

    #[test]
    fn bodies_are_skipped_and_successive_requests_matched_in_order() {
        let recorder = HeadRecorder::default();
        recorder.record(b"POST /a HTTP/1.1\r\nContent-Length: 29\r\n\r\nbody:");
        recorder.record(b"GET /fake HTTP/1.1\r\nA: b\r\n\r\n");
        recorder.record(b"GET /b HTTP/1.1\r\nX-Second: 1\r\n\r\n");
        let first = recorder
            .take("POST", &headers(&["content-length"]))
            .unwrap();
        assert_eq!(first.original("content-length"), Some("Content-Length"));
        // The body looks like a head but its names are not the request's.
        let second = recorder.take("GET", &headers(&["x-second"])).unwrap();
        assert_eq!(second.original("x-second"), Some("X-Second"));
        assert!(recorder.take("GET", &headers(&["x-second"])).is_none());
    }

    #[test]
    fn a_body_of_known_length_is_counted_past_not_recorded() {
        let recorder = HeadRecorder::default();
        // The head and the first bytes of a 70 000-byte body in one read,
        // the rest of the body in later reads, then the next request.
        let mut first = b"PUT /o HTTP/1.1\r\nContent-Length: 70000\r\n\r\n".to_vec();
        first.extend_from_slice(&[b'a'; 1000]);
        recorder.record(&first);
        let mut put = HeaderMap::new();
        put.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("70000"),
        );
        let case = recorder.take("PUT", &put).unwrap();
        assert_eq!(case.original("content-length"), Some("Content-Length"));
        assert!(recorder.record.lock().unwrap().bytes.is_empty());
        // A body that looks like a head is not taken for one.
        recorder.record(b"GET /fake HTTP/1.1\r\nX-Second: 1\r\n\r\n");
        recorder.record(&vec![b'b'; 70_000 - 1000 - 35 - 10]);
        recorder.record(b"0123456789GET /b HTTP/1.1\r\nX-Second: 1\r\n\r\n");
        assert_eq!(recorder.record.lock().unwrap().bytes.len(), 32);
        let second = recorder.take("GET", &headers(&["x-second"])).unwrap();
        assert_eq!(second.original("x-second"), Some("X-Second"));
    }

    #[test]
    fn a_chunked_body_is_recorded_and_skipped_by_the_next_search() {
        let recorder = HeadRecorder::default();
        // hyper reads a chunked body whatever Content-Length says.
        recorder.record(
            b"POST /a HTTP/1.1\r\nContent-Length: 1000\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let mut post = HeaderMap::new();
        post.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("1000"),
        );
        post.insert(
            http::header::TRANSFER_ENCODING,
            http::HeaderValue::from_static("chunked"),
        );
        recorder.take("POST", &post).unwrap();
        recorder.record(b"3\r\nabc\r\n0\r\n\r\nGET /b HTTP/1.1\r\nX-B: 1\r\n\r\n");
        let next = recorder.take("GET", &headers(&["x-b"])).unwrap();
        assert_eq!(next.original("x-b"), Some("X-B"));
        assert!(recorder.record.lock().unwrap().bytes.is_empty());
    }

    #[test]
    fn an_incomplete_or_foreign_head_gives_nothing() {
        let recorder = HeadRecorder::default();
        recorder.record(b"GET / HTTP/1.1\r\nX-A: 1\r\n");
        assert!(recorder.take("GET", &headers(&["x-a"])).is_none());
        recorder.record(b"\r\n");
        assert!(recorder.take("PUT", &headers(&["x-a"])).is_none());
        assert!(recorder.take("GET", &headers(&["x-a", "x-b"])).is_none());
        assert!(recorder.take("GET", &headers(&["x-a"])).is_some());
    }

    #[test]
    fn the_record_stays_bounded() {
        let recorder = HeadRecorder::default();
        recorder.record(&vec![b'x'; RECORD_LIMIT * 2]);
        recorder.record(b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n");
        assert!(recorder.record.lock().unwrap().bytes.len() <= RECORD_LIMIT);
        assert!(recorder.take("GET", &headers(&["x-a"])).is_some());
    }
}
