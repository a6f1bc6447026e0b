//! InvokeWithResponseStream:
//! `POST /2021-11-15/functions/{name}/response-streaming-invocations`.
//!
//! The answer is `200` with an event stream (`event_stream`): a
//! `PayloadChunk` per chunk the function streams, sent while it runs, then
//! one `InvokeComplete` with the error the function ended with (if any) and
//! the log tail (when asked for). A function that answers whole (no
//! `streamifyResponse`) answers in one `PayloadChunk`. Errors before the
//! function starts (validation, not found, throttling) are ordinary AWS
//! error answers, which is why the headers wait until the runtime starts
//! its response or the invocation ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use strato_engine::runtime_api::{StreamSink, StreamedPart, STREAM_CHUNKS_IN_FLIGHT};
use strato_engine::{EngineError, InvokeRequest, InvokeResponse};
use strato_model::limits::MAX_SYNC_PAYLOAD_BYTES;
use strato_model::{AwsError, RecursiveLoop};
use tokio::sync::mpsc;

use super::event_stream::{self, EventStreamError};
use super::function_ref;
use super::functions::QualifierQuery;
use super::invoke::{
    client_context, prepare, recursive_loop_stopped, sync_too_large, tail_requested, trace_hop,
};
use crate::error::ApiResult;
use crate::ApiState;
use strato_gateway::extract::Authenticated;

/// InvokeWithResponseStream's `InvocationType`: no `Event`.
fn dry_run(headers: &HeaderMap) -> ApiResult<bool> {
    match headers.get("x-amz-invocation-type").map(|v| v.to_str().unwrap_or("")) {
        None | Some("RequestResponse") => Ok(false),
        Some("DryRun") => Ok(true),
        Some(other) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [RequestResponse, DryRun]"
        ))
        .into()),
    }
}

type Invocation = Pin<Box<dyn Future<Output = Result<InvokeResponse, EngineError>> + Send>>;

pub async fn invoke_with_response_stream(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path(name): Path<String>,
    Query(q): Query<QualifierQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let dry_run = dry_run(&headers)?;
    let tail_log = tail_requested(&headers)?;
    let client_context = client_context(&headers)?;
    let r = function_ref(&caller, &name, q.qualifier(), "InvokeWithResponseStream")?;
    if body.len() > MAX_SYNC_PAYLOAD_BYTES {
        return Err(sync_too_large("InvokeWithResponseStream").into());
    }
    let (payload, record, target) = prepare(&state, &caller, &r, body).await?;
    if dry_run {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let hop = trace_hop(&headers, &caller, &r);
    if hop.is_recursive_loop() && record.recursive_loop == RecursiveLoop::Terminate {
        return Err(recursive_loop_stopped().into());
    }
    // Chosen here so the answer's headers (sent before the function ends)
    // carry the invocation's own id.
    let request_id = uuid::Uuid::new_v4().to_string();
    let executed_version = target.config.version.clone();
    let function = target.config.name.clone();
    let request = InvokeRequest {
        payload,
        client_context,
        cognito_identity: None,
        tail_log,
        request_id: Some(request_id.clone()),
        trace_header: Some(hop.trace_header),
    };
    let (sink, parts): (StreamSink, _) = mpsc::channel(STREAM_CHUNKS_IN_FLIGHT);
    let engine = state.engine.clone();
    let mut invocation: Invocation =
        Box::pin(async move { engine.invoke_streaming(target, request, sink).await });
    let mut pump = Pump {
        parts,
        parts_open: true,
        first: None,
        invocation: None,
    };
    // Wait until the function starts its response (or ends), so a refusal
    // is an error answer rather than a stream.
    tokio::select! {
        biased;
        part = pump.parts.recv() => {
            match part {
                Some(StreamedPart::Chunk(chunk)) => pump.first = Some(chunk),
                Some(StreamedPart::Started { .. }) => {}
                None => pump.parts_open = false,
            }
            pump.invocation = Some(invocation);
        }
        result = &mut invocation => {
            let result = result.map_err(|e| super::concurrency::invoke_error(&function, e))?;
            let frames = pump.finish(Ok(result));
            return Ok(answer(&request_id, &executed_version, Body::from(frames)));
        }
    }
    let frames = futures_util::stream::unfold(pump, |mut pump| async move {
        pump.next_frames()
            .await
            .map(|frames| (Ok::<_, std::convert::Infallible>(frames), pump))
    });
    Ok(answer(
        &request_id,
        &executed_version,
        Body::from_stream(frames),
    ))
}

fn answer(request_id: &str, executed_version: &str, body: Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-RequestId", v);
    }
    if let Ok(v) = HeaderValue::from_str(executed_version) {
        headers.insert("x-amz-executed-version", v);
    }
    response
}

/// Turns what the engine streams into event-stream frames, ending with
/// `InvokeComplete` once the invocation has ended. Dropped when the client
/// goes away, which closes the engine's sink: the function then runs to its
/// end with its output discarded.
struct Pump {
    parts: mpsc::Receiver<StreamedPart>,
    /// False once the engine dropped its sink.
    parts_open: bool,
    /// A chunk taken while waiting for the stream to begin.
    first: Option<Bytes>,
    /// `None` once the invocation's end has been framed.
    invocation: Option<Invocation>,
}

impl Pump {
    /// The next frames to send, `None` after `InvokeComplete`.
    async fn next_frames(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.first.take() {
            return Some(chunk_frame(&chunk));
        }
        let invocation = self.invocation.as_mut()?;
        let result = loop {
            tokio::select! {
                biased;
                part = self.parts.recv(), if self.parts_open => match part {
                    Some(StreamedPart::Chunk(chunk)) if !chunk.is_empty() => {
                        return Some(chunk_frame(&chunk));
                    }
                    Some(_) => {}
                    None => self.parts_open = false,
                },
                result = invocation.as_mut() => break result,
            }
        };
        self.invocation = None;
        Some(self.finish(result))
    }

    /// The chunks still waiting, the payload of a runtime that answered
    /// whole, and `InvokeComplete`.
    fn finish(&mut self, result: Result<InvokeResponse, EngineError>) -> Bytes {
        let mut frames = Vec::new();
        while let Ok(part) = self.parts.try_recv() {
            if let StreamedPart::Chunk(chunk) = part {
                if !chunk.is_empty() {
                    frames.push(chunk_frame(&chunk));
                }
            }
        }
        let complete = match result {
            Ok(response) if response.function_error.is_some() => {
                let (code, details) = error_of(&response.payload);
                event_stream::invoke_complete(
                    Some((&code, &details)),
                    response.log_result.as_deref(),
                )
            }
            Ok(response) => {
                if !response.payload.is_empty() {
                    frames.push(chunk_frame(&response.payload));
                }
                event_stream::invoke_complete(None, response.log_result.as_deref())
            }
            Err(e) => {
                tracing::error!(error = %e, "a streamed invocation failed");
                event_stream::invoke_complete(Some(("ServiceException", &e.to_string())), None)
            }
        };
        frames.push(framed(complete));
        Bytes::from(frames.concat())
    }
}

fn chunk_frame(chunk: &[u8]) -> Bytes {
    framed(event_stream::payload_chunk(chunk))
}

/// A frame, or nothing when it cannot be framed (a header beyond the
/// format's lengths, which Strato's fixed headers never are).
fn framed(frame: Result<Bytes, EventStreamError>) -> Bytes {
    frame.unwrap_or_else(|e| {
        tracing::error!(error = %e, "an event-stream frame could not be encoded");
        Bytes::new()
    })
}

/// `InvokeComplete`'s `ErrorCode` and `ErrorDetails` for a function error:
/// the runtime's `errorType` and `errorMessage` (the raw body when it is not
/// such an object).
fn error_of(payload: &[u8]) -> (String, String) {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    (
        field("errorType").unwrap_or_else(|| "Unhandled".to_string()),
        field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(payload).into_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_error_names_its_type_and_message() {
        assert_eq!(
            error_of(br#"{"errorType":"TypeError","errorMessage":"x is undefined","trace":[]}"#),
            ("TypeError".to_string(), "x is undefined".to_string())
        );
        assert_eq!(
            error_of(b"not json"),
            ("Unhandled".to_string(), "not json".to_string())
        );
    }
}
