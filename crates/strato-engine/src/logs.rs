//! Function logs: capturing an instance's stdout/stderr as log events, in
//! order with the platform's START/END/REPORT lines, and keeping them per
//! log group and stream.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::io::unix::AsyncFd;

/// The log types live in the model, so the rooms that implement or write to
/// a sink (logs service, API Gateway's access logs) need not depend on the
/// engine.
pub use strato_model::telemetry::{LogEvent, LogOwner, LogSink};

/// A sink that appends everything as `owner`'s: what an instance writes to.
pub struct OwnedLogSink {
    inner: Arc<dyn LogSink>,
    owner: LogOwner,
}

/// `sink`, writing as the function of `account` in `region`.
pub fn owned_by(sink: &Arc<dyn LogSink>, account: &str, region: &str) -> Arc<dyn LogSink> {
    Arc::new(OwnedLogSink {
        inner: sink.clone(),
        owner: LogOwner {
            account: account.to_string(),
            region: region.to_string(),
        },
    })
}

impl LogSink for OwnedLogSink {
    fn append(&self, group: &str, stream: &str, events: Vec<LogEvent>) {
        self.inner.append_owned(&self.owner, group, stream, events);
    }

    fn append_owned(&self, owner: &LogOwner, group: &str, stream: &str, events: Vec<LogEvent>) {
        self.inner.append_owned(owner, group, stream, events);
    }
}

/// The events of one stream, newest last.
type Stream = Arc<Mutex<VecDeque<LogEvent>>>;

/// A bounded in-memory log store: the newest events of each stream.
pub struct MemoryLogs {
    max_events_per_stream: usize,
    /// Keyed by (group, stream).
    streams: RwLock<HashMap<(String, String), Stream>>,
}

impl MemoryLogs {
    pub fn new(max_events_per_stream: usize) -> MemoryLogs {
        MemoryLogs {
            max_events_per_stream,
            streams: RwLock::new(HashMap::new()),
        }
    }

    /// The events of a stream, oldest first.
    pub fn events(&self, group: &str, stream: &str) -> Vec<LogEvent> {
        self.streams
            .read()
            .get(&(group.to_string(), stream.to_string()))
            .map(|s| s.lock().iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The stream names of a group.
    pub fn streams(&self, group: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .streams
            .read()
            .keys()
            .filter(|(g, _)| g == group)
            .map(|(_, s)| s.clone())
            .collect();
        names.sort();
        names
    }
}

impl LogSink for MemoryLogs {
    fn append(&self, group: &str, stream: &str, events: Vec<LogEvent>) {
        let key = (group.to_string(), stream.to_string());
        let existing = self.streams.read().get(&key).cloned();
        let target = match existing {
            Some(s) => s,
            None => self.streams.write().entry(key).or_default().clone(),
        };
        let mut target = target.lock();
        for event in events {
            if target.len() == self.max_events_per_stream {
                target.pop_front();
            }
            target.push_back(event);
        }
    }
}

/// The log stream of one instance, and the text of the invocation in flight
/// (for `X-Amz-Log-Type: Tail`).
pub struct LogCapture {
    sink: Arc<dyn LogSink>,
    group: String,
    stream: String,
    invocation: Mutex<Option<String>>,
}

/// `LogType: Tail` returns at most this much of an invocation's log.
pub const TAIL_BYTES: usize = 4096;

impl LogCapture {
    pub fn new(sink: Arc<dyn LogSink>, group: String, stream: String) -> LogCapture {
        LogCapture {
            sink,
            group,
            stream,
            invocation: Mutex::new(None),
        }
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// Records one event, now.
    pub fn line(&self, message: String) {
        if let Some(text) = self.invocation.lock().as_mut() {
            text.push_str(&message);
            text.push('\n');
        }
        let event = LogEvent {
            timestamp_ms: chrono::Utc::now().timestamp_millis(),
            message,
        };
        self.sink.append(&self.group, &self.stream, vec![event]);
    }

    /// Starts collecting the text of an invocation.
    pub fn begin_invocation(&self) {
        *self.invocation.lock() = Some(String::new());
    }

    /// Stops collecting and returns the last [`TAIL_BYTES`] of the text.
    pub fn end_invocation(&self) -> String {
        let text = self.invocation.lock().take().unwrap_or_default();
        if text.len() <= TAIL_BYTES {
            return text;
        }
        let mut start = text.len() - TAIL_BYTES;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_string()
    }
}

/// One output pipe of an instance, read by a background task and drained on
/// demand, so that every line written before a response is recorded before
/// the platform's END line. Both readers hold the same lock while reading
/// and recording.
pub struct LogPipe {
    fd: AsyncFd<OwnedFd>,
    partial: Mutex<Vec<u8>>,
}

impl LogPipe {
    pub fn new(fd: OwnedFd) -> io::Result<Arc<LogPipe>> {
        let flags =
            nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        // SAFETY: the AsyncFd takes ownership of the OwnedFd, which stays open
        // and refers to the same pipe until the AsyncFd (and with it the
        // OwnedFd) is dropped; OwnedFd::as_raw_fd always returns that fd.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Arc::new(LogPipe {
            fd,
            partial: Mutex::new(Vec::new()),
        }))
    }

    /// Reads everything available now into `capture`. Returns true at end of file.
    pub fn drain(&self, capture: &LogCapture) -> bool {
        let mut partial = self.partial.lock();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match nix::unistd::read(self.fd.get_ref(), &mut buf) {
                Ok(0) => {
                    if !partial.is_empty() {
                        let rest = std::mem::take(&mut *partial);
                        capture.line(clean_line(&rest));
                    }
                    return true;
                }
                Ok(n) => {
                    partial.extend_from_slice(&buf[..n]);
                    while let Some(pos) = partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = partial.drain(..=pos).collect();
                        capture.line(clean_line(&line[..line.len() - 1]));
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }

    /// Records a trailing line that has no newline yet (a runtime that logs
    /// without one, e.g. Java's `LambdaLogger.log("x")`), so it belongs to
    /// the invocation that wrote it.
    pub fn flush_partial(&self, capture: &LogCapture) {
        let mut partial = self.partial.lock();
        if !partial.is_empty() {
            let rest = std::mem::take(&mut *partial);
            capture.line(clean_line(&rest));
        }
    }

    /// Reads until the other end closes.
    pub async fn run(self: Arc<Self>, capture: Arc<LogCapture>) {
        loop {
            let mut guard = match self.fd.readable().await {
                Ok(guard) => guard,
                Err(_) => return,
            };
            if self.drain(&capture) {
                return;
            }
            guard.clear_ready();
        }
    }
}

/// A log record as CloudWatch shows it: runtimes put `\r` where a record
/// spans several lines (so it stays one record on a line-based pipe).
fn clean_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_logs_keep_the_newest_events() {
        let logs = MemoryLogs::new(2);
        for i in 0..3 {
            logs.append(
                "g",
                "s",
                vec![LogEvent {
                    timestamp_ms: i,
                    message: i.to_string(),
                }],
            );
        }
        let kept: Vec<String> = logs
            .events("g", "s")
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(kept, vec!["1", "2"]);
    }

    #[test]
    fn tail_is_bounded_to_4kb_of_the_invocation() {
        let capture = LogCapture::new(Arc::new(MemoryLogs::new(10)), "g".into(), "s".into());
        capture.line("before".into());
        capture.begin_invocation();
        for _ in 0..1000 {
            capture.line("0123456789".into());
        }
        capture.line("last".into());
        let tail = capture.end_invocation();
        assert!(tail.len() <= TAIL_BYTES);
        assert!(tail.ends_with("last\n"));
        assert!(!tail.contains("before"));
    }

    #[tokio::test]
    async fn a_line_without_newline_is_recorded_when_flushed() {
        let (read, write) = nix::unistd::pipe().unwrap();
        let logs = Arc::new(MemoryLogs::new(100));
        let capture = LogCapture::new(logs.clone(), "g".into(), "s".into());
        let pipe = LogPipe::new(read).unwrap();
        nix::unistd::write(&write, b"no newline").unwrap();
        pipe.drain(&capture);
        assert!(logs.events("g", "s").is_empty());
        pipe.flush_partial(&capture);
        assert_eq!(logs.events("g", "s")[0].message, "no newline");
    }

    #[tokio::test]
    async fn drained_pipe_records_every_complete_line_in_order() {
        let (read, write) = nix::unistd::pipe().unwrap();
        let logs = Arc::new(MemoryLogs::new(100));
        let capture = LogCapture::new(logs.clone(), "g".into(), "s".into());
        let pipe = LogPipe::new(read).unwrap();
        nix::unistd::write(&write, b"one\ntwo\rstill two\nthr").unwrap();
        pipe.drain(&capture);
        let msgs: Vec<String> = logs
            .events("g", "s")
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(msgs, vec!["one", "two\nstill two"]);
        drop(write);
        assert!(pipe.drain(&capture));
        assert_eq!(logs.events("g", "s").last().unwrap().message, "thr");
    }
}
