//! The Lambda Runtime API (2018-06-01) that one instance's runtime talks to.
//!
//! Each instance gets its own listener (inside its own network namespace, at
//! the same `127.0.0.1:9001` everywhere) and this router bound to that
//! instance's [`InstanceChannel`], so requests need no routing by instance and
//! one instance can never answer another's invocations.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use http_body_util::BodyExt as _;
use parking_lot::Mutex;
use serde_json::json;
use strato_model::limits::MAX_SYNC_PAYLOAD_BYTES;
use tokio::sync::{mpsc, oneshot};

/// The largest response Lambda returns: its "6 MB" is 6,291,556 bytes, as
/// `Function.ResponseSizeTooLarge` messages state (a response of exactly this
/// size is accepted).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// The most a streamed response may carry (AWS's soft limit for response
/// streaming, 20 MiB); beyond it the stream ends with
/// `Function.ResponseSizeTooLarge`.
pub const MAX_STREAMED_RESPONSE_BYTES: usize = 20 * 1024 * 1024;

/// How many chunks may wait between the runtime and the caller: when the
/// caller reads slower than the function writes, the Runtime API stops
/// reading the runtime's body, and TCP makes the runtime's writes wait.
pub const STREAM_CHUNKS_IN_FLIGHT: usize = 8;

pub use strato_model::response_stream::StreamedPart;

/// Where a streaming invocation's parts go; bounded
/// ([`STREAM_CHUNKS_IN_FLIGHT`]), which is the backpressure.
pub type StreamSink = mpsc::Sender<StreamedPart>;

/// One event handed to the runtime by `/invocation/next`.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_ms: i64,
    pub invoked_function_arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

/// How the runtime ended an invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(Bytes),
    /// `/error`, with the `Lambda-Runtime-Function-Error-Type` header.
    Error {
        error_type: Option<String>,
        body: Bytes,
    },
    /// The response was larger than Lambda allows.
    ResponseTooLarge {
        size: usize,
    },
}

/// How the runtime ended its init phase.
#[derive(Debug)]
pub enum InitSignal {
    /// The first `/invocation/next`: init is complete.
    Ready,
    /// `/init/error`.
    Failed {
        error_type: Option<String>,
        body: Bytes,
    },
}

/// Strato-specific assignment of a stem cell: the environment a pre-started
/// runtime adopts before it loads the function.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Assignment {
    pub env: std::collections::BTreeMap<String, String>,
    /// For runtimes whose process is the function's own executable: what
    /// the stem cell's waiter executes (absent for interpreters, whose
    /// bootstrap loads the function itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
}

/// The invocation an instance is running: where its outcome goes, and
/// where its streamed chunks go when the caller streams.
struct Inflight {
    request_id: String,
    reply: oneshot::Sender<Outcome>,
    stream: Option<StreamSink>,
}

/// The state one instance's Runtime API shares with the engine.
pub struct InstanceChannel {
    dispatch_rx: tokio::sync::Mutex<mpsc::Receiver<Dispatch>>,
    inflight: Mutex<Option<Inflight>>,
    init: Mutex<Option<oneshot::Sender<InitSignal>>>,
    assignment: Mutex<Option<oneshot::Receiver<Assignment>>>,
    /// A stem cell's runtime asked for its assignment: it is fully started.
    awaiting_assignment: std::sync::atomic::AtomicBool,
}

pub struct ChannelEnds {
    pub channel: Arc<InstanceChannel>,
    pub dispatch_tx: mpsc::Sender<Dispatch>,
    pub init_rx: oneshot::Receiver<InitSignal>,
}

impl InstanceChannel {
    pub fn open(assignment: Option<oneshot::Receiver<Assignment>>) -> ChannelEnds {
        let (dispatch_tx, dispatch_rx) = mpsc::channel(1);
        let (init_tx, init_rx) = oneshot::channel();
        let channel = Arc::new(InstanceChannel {
            dispatch_rx: tokio::sync::Mutex::new(dispatch_rx),
            inflight: Mutex::new(None),
            init: Mutex::new(Some(init_tx)),
            assignment: Mutex::new(assignment),
            awaiting_assignment: std::sync::atomic::AtomicBool::new(false),
        });
        ChannelEnds {
            channel,
            dispatch_tx,
            init_rx,
        }
    }

    /// Registers where the outcome of `request_id` goes (and its streamed
    /// chunks, when the caller streams); called just before the event is
    /// dispatched.
    pub fn expect(
        &self,
        request_id: &str,
        reply: oneshot::Sender<Outcome>,
        stream: Option<StreamSink>,
    ) {
        *self.inflight.lock() = Some(Inflight {
            request_id: request_id.to_string(),
            reply,
            stream,
        });
    }

    /// Forgets the invocation in flight (it timed out or the instance died).
    pub fn abandon(&self) {
        self.inflight.lock().take();
    }

    fn complete(&self, request_id: &str, outcome: Outcome) -> bool {
        let mut inflight = self.inflight.lock();
        match inflight.as_ref() {
            Some(current) if current.request_id == request_id => {}
            _ => return false,
        }
        if let Some(current) = inflight.take() {
            let _ = current.reply.send(outcome);
        }
        true
    }

    /// Whether `request_id` is the invocation in flight, and if so where its
    /// streamed chunks go (`None`: the caller takes the response whole).
    fn stream_of(&self, request_id: &str) -> Option<Option<StreamSink>> {
        match self.inflight.lock().as_ref() {
            Some(current) if current.request_id == request_id => Some(current.stream.clone()),
            _ => None,
        }
    }

    /// True once a stem cell's runtime waits for its assignment.
    pub fn awaiting_assignment(&self) -> bool {
        self.awaiting_assignment
            .load(std::sync::atomic::Ordering::Acquire)
    }

    fn signal_init(&self, signal: InitSignal) {
        if let Some(tx) = self.init.lock().take() {
            let _ = tx.send(signal);
        }
    }
}

pub fn router(channel: Arc<InstanceChannel>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .route("/2018-06-01/runtime/strato/assignment", get(assignment))
        .route(RESPONSE_THEN_NEXT_PATH, post(response_then_next))
        // Responses are measured against the limit by hand, so a few bytes
        // over it can still be reported as Function.ResponseSizeTooLarge.
        .layer(DefaultBodyLimit::max(MAX_SYNC_PAYLOAD_BYTES + 1024 * 1024))
        .with_state(channel)
}

/// Strato's own bootstraps end a whole-body invocation here: the route takes
/// the response as `/response` does and, once it is accepted, answers with the
/// next event as `/invocation/next` would. One HTTP exchange per invocation
/// instead of two: the runtime is not woken for the `202` and does not send a
/// separate `GET /next` (docs/runtimes.md, "the Runtime API round trip").
/// Official runtime clients keep using the standard routes.
const RESPONSE_THEN_NEXT_PATH: &str =
    "/2018-06-01/runtime/strato/invocation/{id}/response-then-next";

fn header(name: &'static str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    HeaderValue::from_str(value)
        .ok()
        .map(|v| (HeaderName::from_static(name), v))
}

async fn next(State(channel): State<Arc<InstanceChannel>>) -> Response {
    channel.signal_init(InitSignal::Ready);
    let dispatch = channel.dispatch_rx.lock().await.recv().await;
    let Some(d) = dispatch else {
        // The instance is being shut down.
        return (
            StatusCode::GONE,
            axum::Json(
                json!({"errorMessage": "instance shutting down", "errorType": "Runtime.Shutdown"}),
            ),
        )
            .into_response();
    };
    let mut headers = HeaderMap::new();
    let deadline = d.deadline_ms.to_string();
    let pairs = [
        header("lambda-runtime-aws-request-id", &d.request_id),
        header("lambda-runtime-deadline-ms", &deadline),
        header(
            "lambda-runtime-invoked-function-arn",
            &d.invoked_function_arn,
        ),
        header("lambda-runtime-trace-id", &d.trace_id),
        d.client_context
            .as_deref()
            .and_then(|c| header("lambda-runtime-client-context", c)),
        d.cognito_identity
            .as_deref()
            .and_then(|c| header("lambda-runtime-cognito-identity", c)),
        header("content-type", "application/json"),
    ];
    for (name, value) in pairs.into_iter().flatten() {
        headers.insert(name, value);
    }
    (StatusCode::OK, headers, d.payload).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn unknown_request(id: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"errorMessage": format!("Invalid request ID: {id}"), "errorType": "InvalidRequestID"})),
    )
        .into_response()
}

/// `Lambda-Runtime-Function-Response-Mode: streaming` marks a response the
/// runtime streams (chunked, errors as trailers).
const RESPONSE_MODE_HEADER: &str = "lambda-runtime-function-response-mode";
const ERROR_TYPE_HEADER: &str = "lambda-runtime-function-error-type";
/// A streamed response's error body, base64, in a trailer.
const ERROR_BODY_TRAILER: &str = "lambda-runtime-function-error-body";

fn response_too_large(size: usize, limit: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        axum::Json(json!({
            "errorMessage": format!("Response payload size ({size} bytes) exceeded maximum allowed payload size ({limit} bytes)."),
            "errorType": "RequestEntityTooLarge"
        })),
    )
        .into_response()
}

async fn response(
    State(channel): State<Arc<InstanceChannel>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let streamed = headers
        .get(RESPONSE_MODE_HEADER)
        .is_some_and(|mode| mode.as_bytes().eq_ignore_ascii_case(b"streaming"));
    if streamed {
        return streamed_response(&channel, &id, &headers, body).await;
    }
    // Read a little past the limit, so a response just over it is reported
    // as Function.ResponseSizeTooLarge with its size.
    let body = match axum::body::to_bytes(body, MAX_SYNC_PAYLOAD_BYTES + 1024 * 1024).await {
        Ok(body) => body,
        Err(_) => {
            let size = MAX_SYNC_PAYLOAD_BYTES + 1024 * 1024;
            return if channel.complete(&id, Outcome::ResponseTooLarge { size }) {
                response_too_large(size, MAX_RESPONSE_BYTES)
            } else {
                unknown_request(&id)
            };
        }
    };
    if body.len() > MAX_RESPONSE_BYTES {
        let size = body.len();
        if channel.complete(&id, Outcome::ResponseTooLarge { size }) {
            return response_too_large(size, MAX_RESPONSE_BYTES);
        }
        return unknown_request(&id);
    }
    if channel.complete(&id, Outcome::Response(body)) {
        accepted()
    } else {
        unknown_request(&id)
    }
}

/// `/response` followed by `/invocation/next` in one exchange: a response that
/// is not accepted gets `/response`'s answer (413, 400) and no event, and
/// the runtime then asks for the next one on the standard route.
async fn response_then_next(
    State(channel): State<Arc<InstanceChannel>>,
    id: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = response(State(channel.clone()), id, headers, body).await;
    if answer.status() != StatusCode::ACCEPTED {
        return answer;
    }
    next(State(channel)).await
}

/// Where the chunks of a streamed response go.
enum ChunkDestination {
    /// The caller streams: each chunk is handed on as it arrives.
    Caller(StreamSink),
    /// The caller takes the response whole (Invoke of a streaming function).
    Buffer(Vec<Bytes>),
    /// The caller went away; the function still runs to its end.
    Discard,
}

/// A response the runtime streams: chunks go to the caller as they arrive
/// (waiting while the caller is behind), an error arrives as trailers, and
/// the size is held to [`MAX_STREAMED_RESPONSE_BYTES`] (or to the buffered
/// limit when the caller does not stream).
async fn streamed_response(
    channel: &InstanceChannel,
    id: &str,
    headers: &HeaderMap,
    mut body: Body,
) -> Response {
    let Some(sink) = channel.stream_of(id) else {
        return unknown_request(id);
    };
    let (mut destination, limit) = match sink {
        Some(sink) => {
            let content_type = headers
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let destination = match sink.send(StreamedPart::Started { content_type }).await {
                Ok(()) => ChunkDestination::Caller(sink),
                Err(_) => ChunkDestination::Discard,
            };
            (destination, MAX_STREAMED_RESPONSE_BYTES)
        }
        None => (ChunkDestination::Buffer(Vec::new()), MAX_RESPONSE_BYTES),
    };
    let mut size = 0usize;
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        // A body that breaks off means the runtime went away (killed at the
        // deadline, or crashed): the instance's watcher reports how.
        let Ok(frame) = frame else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        let chunk = match frame.into_data() {
            Ok(chunk) => chunk,
            Err(frame) => {
                trailers = frame.into_trailers().ok();
                continue;
            }
        };
        size = size.saturating_add(chunk.len());
        if size > limit {
            let outcome = match destination {
                ChunkDestination::Buffer(_) => Outcome::ResponseTooLarge { size },
                ChunkDestination::Caller(_) | ChunkDestination::Discard => {
                    streamed_too_large_error()
                }
            };
            return if channel.complete(id, outcome) {
                response_too_large(size, limit)
            } else {
                unknown_request(id)
            };
        }
        match &mut destination {
            ChunkDestination::Caller(sink) => {
                if sink.send(StreamedPart::Chunk(chunk)).await.is_err() {
                    destination = ChunkDestination::Discard;
                }
            }
            ChunkDestination::Buffer(chunks) => chunks.push(chunk),
            ChunkDestination::Discard => {}
        }
    }
    let outcome = match trailers.as_ref().and_then(streamed_error) {
        Some(error) => error,
        None => match destination {
            ChunkDestination::Buffer(chunks) => Outcome::Response(Bytes::from(chunks.concat())),
            ChunkDestination::Caller(_) | ChunkDestination::Discard => {
                Outcome::Response(Bytes::new())
            }
        },
    };
    if channel.complete(id, outcome) {
        accepted()
    } else {
        unknown_request(id)
    }
}

/// The error a streamed response ended with, from its trailers: the type,
/// and the body (base64 in the trailer; taken as it is when not base64).
fn streamed_error(trailers: &HeaderMap) -> Option<Outcome> {
    let error_type = error_type(trailers);
    let body = trailers.get(ERROR_BODY_TRAILER).map(|raw| {
        base64::engine::general_purpose::STANDARD
            .decode(raw.as_bytes())
            .map(Bytes::from)
            .unwrap_or_else(|_| Bytes::copy_from_slice(raw.as_bytes()))
    });
    if error_type.is_none() && body.is_none() {
        return None;
    }
    let body = body.unwrap_or_else(|| {
        Bytes::from(
            json!({
                "errorType": error_type.as_deref().unwrap_or("Runtime.Unknown"),
                "errorMessage": "",
            })
            .to_string(),
        )
    });
    Some(Outcome::Error { error_type, body })
}

/// How a stream that grew past [`MAX_STREAMED_RESPONSE_BYTES`] ends.
fn streamed_too_large_error() -> Outcome {
    Outcome::Error {
        error_type: Some("Function.ResponseSizeTooLarge".to_string()),
        body: Bytes::from(
            json!({
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": format!(
                    "Response payload size exceeded maximum allowed payload size ({MAX_STREAMED_RESPONSE_BYTES} bytes)."
                ),
            })
            .to_string(),
        ),
    }
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(ERROR_TYPE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn error(
    State(channel): State<Arc<InstanceChannel>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if channel.complete(
        &id,
        Outcome::Error {
            error_type: error_type(&headers),
            body,
        },
    ) {
        accepted()
    } else {
        unknown_request(&id)
    }
}

async fn init_error(
    State(channel): State<Arc<InstanceChannel>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    channel.signal_init(InitSignal::Failed {
        error_type: error_type(&headers),
        body,
    });
    accepted()
}

async fn assignment(State(channel): State<Arc<InstanceChannel>>) -> Response {
    let pending = channel.assignment.lock().take();
    match pending {
        Some(rx) => {
            channel
                .awaiting_assignment
                .store(true, std::sync::atomic::Ordering::Release);
            match rx.await {
                Ok(assignment) => (StatusCode::OK, axum::Json(assignment)).into_response(),
                Err(_) => StatusCode::GONE.into_response(),
            }
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"errorMessage": "this instance is not a stem cell", "errorType": "InvalidRequest"})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Serves one instance's Runtime API on a loopback port.
    async fn serve(channel: Arc<InstanceChannel>) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(channel)).await });
        addr
    }

    /// Opens a streamed `/response` for `id`: the request line and headers.
    async fn open_stream(addr: std::net::SocketAddr, id: &str) -> TcpStream {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: x\r\n\
             Content-Type: text/plain\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n\
             Transfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp
    }

    async fn chunk(tcp: &mut TcpStream, data: &[u8]) {
        tcp.write_all(format!("{:x}\r\n", data.len()).as_bytes())
            .await
            .unwrap();
        tcp.write_all(data).await.unwrap();
        tcp.write_all(b"\r\n").await.unwrap();
    }

    async fn status_line(tcp: &mut TcpStream) -> String {
        let mut buf = vec![0u8; 1024];
        let n = tcp.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap()
            .to_string()
    }

    fn expecting(
        channel: &InstanceChannel,
        id: &str,
        stream: Option<StreamSink>,
    ) -> oneshot::Receiver<Outcome> {
        let (reply, outcome) = oneshot::channel();
        channel.expect(id, reply, stream);
        outcome
    }

    #[tokio::test]
    async fn each_chunk_reaches_the_caller_before_the_next_is_written() {
        let ends = InstanceChannel::open(None);
        let addr = serve(ends.channel.clone()).await;
        let (sink, mut parts) = mpsc::channel(STREAM_CHUNKS_IN_FLIGHT);
        let outcome = expecting(&ends.channel, "r1", Some(sink));
        let mut tcp = open_stream(addr, "r1").await;
        chunk(&mut tcp, b"first").await;
        match parts.recv().await.unwrap() {
            StreamedPart::Started { content_type } => {
                assert_eq!(content_type.as_deref(), Some("text/plain"))
            }
            other => panic!("expected the start, got {other:?}"),
        }
        // The runtime has not written its second chunk yet.
        assert!(matches!(parts.recv().await.unwrap(), StreamedPart::Chunk(c) if c == "first"));
        chunk(&mut tcp, b"second").await;
        assert!(matches!(parts.recv().await.unwrap(), StreamedPart::Chunk(c) if c == "second"));
        tcp.write_all(b"0\r\n\r\n").await.unwrap();
        assert!(status_line(&mut tcp).await.contains("202"));
        assert!(matches!(outcome.await.unwrap(), Outcome::Response(body) if body.is_empty()));
    }

    #[tokio::test]
    async fn error_trailers_end_the_stream_with_the_function_error() {
        let ends = InstanceChannel::open(None);
        let addr = serve(ends.channel.clone()).await;
        let (sink, mut parts) = mpsc::channel(STREAM_CHUNKS_IN_FLIGHT);
        let outcome = expecting(&ends.channel, "r2", Some(sink));
        let mut tcp = open_stream(addr, "r2").await;
        chunk(&mut tcp, b"partial").await;
        let body = r#"{"errorType":"TypeError","errorMessage":"broke"}"#;
        let trailers = format!(
            "0\r\nLambda-Runtime-Function-Error-Type: TypeError\r\n\
             Lambda-Runtime-Function-Error-Body: {}\r\n\r\n",
            base64::engine::general_purpose::STANDARD.encode(body)
        );
        tcp.write_all(trailers.as_bytes()).await.unwrap();
        assert!(status_line(&mut tcp).await.contains("202"));
        match outcome.await.unwrap() {
            Outcome::Error {
                error_type,
                body: got,
            } => {
                assert_eq!(error_type.as_deref(), Some("TypeError"));
                assert_eq!(got, body);
            }
            other => panic!("expected the function's error, got {other:?}"),
        }
        assert!(matches!(
            parts.recv().await.unwrap(),
            StreamedPart::Started { .. }
        ));
        assert!(matches!(parts.recv().await.unwrap(), StreamedPart::Chunk(c) if c == "partial"));
    }

    #[tokio::test]
    async fn a_caller_that_does_not_stream_gets_the_stream_whole() {
        let ends = InstanceChannel::open(None);
        let addr = serve(ends.channel.clone()).await;
        let outcome = expecting(&ends.channel, "r3", None);
        let mut tcp = open_stream(addr, "r3").await;
        chunk(&mut tcp, b"hello ").await;
        chunk(&mut tcp, b"world").await;
        tcp.write_all(b"0\r\n\r\n").await.unwrap();
        assert!(status_line(&mut tcp).await.contains("202"));
        assert!(matches!(outcome.await.unwrap(), Outcome::Response(body) if body == "hello world"));
    }

    /// Sends one whole-body request and reads its answer's status line and
    /// headers (lower-cased) and body.
    async fn exchange(
        tcp: &mut TcpStream,
        head: &str,
        body: &[u8],
    ) -> (String, Vec<(String, String)>, Vec<u8>) {
        let request = format!("{head}Content-Length: {}\r\n\r\n", body.len());
        tcp.write_all(request.as_bytes()).await.unwrap();
        tcp.write_all(body).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed mid-answer");
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let text = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut lines = text.split("\r\n");
            let status = lines.next().unwrap().to_string();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let length: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return (status, headers, buf[end + 4..end + 4 + length].to_vec());
            }
        }
    }

    fn dispatch(request_id: &str, payload: &'static str) -> Dispatch {
        Dispatch {
            request_id: request_id.into(),
            payload: Bytes::from_static(payload.as_bytes()),
            deadline_ms: 1,
            invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            trace_id: "Root=1-0-0".into(),
            client_context: None,
            cognito_identity: None,
        }
    }

    #[tokio::test]
    async fn response_then_next_completes_the_invocation_and_answers_the_next_event() {
        let ends = InstanceChannel::open(None);
        let addr = serve(ends.channel.clone()).await;
        let outcome = expecting(&ends.channel, "first", None);
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let head =
            "POST /2018-06-01/runtime/strato/invocation/first/response-then-next HTTP/1.1\r\n\
                    Host: x\r\nContent-Type: application/json\r\n";
        let sent = tokio::spawn(async move {
            let answer = exchange(&mut tcp, head, b"\"done\"").await;
            (tcp, answer)
        });
        // The response reaches the caller before any next event exists.
        assert!(matches!(outcome.await.unwrap(), Outcome::Response(body) if body == "\"done\""));
        let _second = expecting(&ends.channel, "second", None);
        ends.dispatch_tx
            .send(dispatch("second", "{\"n\":2}"))
            .await
            .unwrap();
        let (mut tcp, (status, headers, body)) = sent.await.unwrap();
        assert!(status.contains("200"), "{status}");
        assert!(headers.contains(&("lambda-runtime-aws-request-id".into(), "second".into())));
        assert_eq!(body, b"{\"n\":2}");

        // A response for an invocation that is not in flight is refused as
        // `/response` refuses it, and no event is taken.
        let stale =
            "POST /2018-06-01/runtime/strato/invocation/gone/response-then-next HTTP/1.1\r\n\
                     Host: x\r\n";
        let (status, _, body) = exchange(&mut tcp, stale, b"{}").await;
        assert!(status.contains("400"), "{status}");
        assert!(String::from_utf8_lossy(&body).contains("InvalidRequestID"));
    }

    #[tokio::test]
    async fn response_then_next_over_the_limit_answers_413_without_an_event() {
        let ends = InstanceChannel::open(None);
        let addr = serve(ends.channel.clone()).await;
        let outcome = expecting(&ends.channel, "big", None);
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let head = "POST /2018-06-01/runtime/strato/invocation/big/response-then-next HTTP/1.1\r\n\
                    Host: x\r\n";
        let body = vec![b'a'; MAX_RESPONSE_BYTES + 1];
        let (status, _, _) = exchange(&mut tcp, head, &body).await;
        assert!(status.contains("413"), "{status}");
        assert!(matches!(
            outcome.await.unwrap(),
            Outcome::ResponseTooLarge { size } if size == MAX_RESPONSE_BYTES + 1
        ));
    }

    #[tokio::test]
    async fn a_stream_for_another_invocation_is_refused() {
        let ends = InstanceChannel::open(None);
        let addr = serve(ends.channel.clone()).await;
        let _outcome = expecting(&ends.channel, "current", None);
        let mut tcp = open_stream(addr, "stale").await;
        tcp.write_all(b"0\r\n\r\n").await.unwrap();
        assert!(status_line(&mut tcp).await.contains("400"));
    }
}
