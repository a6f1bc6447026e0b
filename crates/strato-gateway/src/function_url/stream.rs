//! Function URLs in `RESPONSE_STREAM` mode: the HTTP answer is sent chunked
//! as the function writes. A function that gave HTTP metadata
//! (`awslambda.HttpResponseStream.from`, or a Python generator's leading
//! dict) starts its stream with that JSON and eight zero bytes: its
//! `statusCode`, `headers` and `cookies` become the answer's status and
//! headers. Otherwise the answer is `200` with the runtime's content type.
//! A function that fails before streaming answers as a buffered URL does;
//! one that fails mid-stream has its body cut off (the status is sent).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;
use strato_model::response_stream::{
    StreamedPart, HTTP_INTEGRATION_CONTENT_TYPE, HTTP_METADATA_DELIMITER,
};
use tokio::sync::mpsc;

use super::{answer_whole, url_error, UrlAnswer};
use crate::http_api::model::Cors;
use crate::invoker::{GatewayInvocation, InvocationOutcome, InvokeFailure, LambdaInvoker};

/// Chunks that may wait between the function and a slow client.
const CHUNKS_IN_FLIGHT: usize = 8;

type Running = Pin<Box<dyn Future<Output = Result<InvocationOutcome, InvokeFailure>> + Send>>;

/// Why a streamed body was cut off: the function failed after its answer
/// had started.
#[derive(Debug, thiserror::Error)]
#[error("the function failed after its streamed answer began")]
struct FailedMidStream;

pub(super) async fn serve(
    invoker: Arc<dyn LambdaInvoker>,
    invocation: GatewayInvocation,
    cors: Option<Cors>,
    request_headers: &HeaderMap,
) -> UrlAnswer {
    let function_arn = invocation.function_arn.clone();
    let (sink, parts) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let mut stream = FunctionStream {
        parts,
        parts_open: true,
        running: Some(Box::pin(async move {
            invoker.invoke_streaming(invocation, sink).await
        })),
        ended: None,
    };
    let Some(content_type) = stream.started().await else {
        // Ended without streaming: answered as a buffered URL is.
        let outcome = stream.take_outcome();
        return UrlAnswer::Whole(answer_whole(
            &function_arn,
            outcome,
            cors.as_ref(),
            request_headers,
        ));
    };
    let (status, mut headers, first) =
        if content_type.as_deref() == Some(HTTP_INTEGRATION_CONTENT_TYPE) {
            let Some((metadata, rest)) = stream.metadata().await else {
                return UrlAnswer::Whole(match stream.take_outcome() {
                    Ok(outcome) if outcome.function_error.is_none() => {
                        url_error(StatusCode::BAD_GATEWAY, "Internal Server Error")
                    }
                    outcome => answer_whole(&function_arn, outcome, cors.as_ref(), request_headers),
                });
            };
            match http_metadata(&metadata) {
                Some((status, headers)) => (status, headers, rest),
                None => {
                    return UrlAnswer::Whole(url_error(
                        StatusCode::BAD_GATEWAY,
                        "Internal Server Error",
                    ))
                }
            }
        } else {
            let mut headers = HeaderMap::new();
            let content_type = content_type
                .and_then(|t| HeaderValue::from_str(&t).ok())
                .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
            headers.insert(http::header::CONTENT_TYPE, content_type);
            (StatusCode::OK, headers, Bytes::new())
        };
    if let Some(cors) = &cors {
        let mut extra = HeaderMap::new();
        crate::cors::decorate(cors, request_headers, &mut extra);
        if !extra.is_empty() {
            let own: Vec<HeaderName> = headers
                .keys()
                .filter(|name| name.as_str().starts_with("access-control-"))
                .cloned()
                .collect();
            for name in own {
                headers.remove(name);
            }
            headers.extend(extra);
        }
    }
    let body = futures_util::stream::unfold(
        (stream, (!first.is_empty()).then_some(first)),
        |(mut stream, first)| async move {
            if let Some(first) = first {
                return Some((Ok(first), (stream, None)));
            }
            match stream.next_chunk().await {
                Some(chunk) => Some((Ok(chunk), (stream, None))),
                None => match stream.ended.take() {
                    Some(Ok(outcome)) if outcome.function_error.is_none() => None,
                    Some(_) => Some((Err(FailedMidStream), (stream, None))),
                    None => None,
                },
            }
        },
    );
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    UrlAnswer::Streamed(response)
}

/// A streaming invocation seen from the function URL: its chunks, then
/// how it ended.
struct FunctionStream {
    parts: mpsc::Receiver<StreamedPart>,
    parts_open: bool,
    running: Option<Running>,
    ended: Option<Result<InvocationOutcome, InvokeFailure>>,
}

impl FunctionStream {
    /// Waits until the runtime starts streaming (its content type), or
    /// `None` when the invocation ended without streaming.
    async fn started(&mut self) -> Option<Option<String>> {
        loop {
            match self.next_part().await? {
                StreamedPart::Started { content_type } => return Some(content_type),
                StreamedPart::Chunk(_) => {}
            }
        }
    }

    /// The HTTP metadata before the delimiter, and the body bytes already
    /// received after it; `None` when the stream ended first.
    async fn metadata(&mut self) -> Option<(Bytes, Bytes)> {
        let mut head = BytesMut::new();
        loop {
            if let Some(at) = head
                .windows(HTTP_METADATA_DELIMITER.len())
                .position(|w| w == HTTP_METADATA_DELIMITER)
            {
                let rest = head.split_off(at + HTTP_METADATA_DELIMITER.len());
                head.truncate(at);
                return Some((head.freeze(), rest.freeze()));
            }
            head.extend_from_slice(&self.next_chunk().await?);
        }
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            match self.next_part().await? {
                StreamedPart::Chunk(chunk) if !chunk.is_empty() => return Some(chunk),
                StreamedPart::Chunk(_) | StreamedPart::Started { .. } => {}
            }
        }
    }

    /// The next part, `None` once the invocation has ended and every part
    /// sent before its end was taken.
    async fn next_part(&mut self) -> Option<StreamedPart> {
        loop {
            let Some(running) = self.running.as_mut() else {
                return self.parts.try_recv().ok();
            };
            tokio::select! {
                biased;
                part = self.parts.recv(), if self.parts_open => match part {
                    Some(part) => return Some(part),
                    None => self.parts_open = false,
                },
                outcome = running.as_mut() => {
                    self.ended = Some(outcome);
                    self.running = None;
                }
            }
        }
    }

    fn take_outcome(&mut self) -> Result<InvocationOutcome, InvokeFailure> {
        self.ended.take().unwrap_or_else(|| {
            Err(InvokeFailure::Service(
                "the invocation's outcome was already taken".to_string(),
            ))
        })
    }
}

/// The status and headers of a streamed answer's HTTP metadata, `None`
/// when it is not such an object.
fn http_metadata(metadata: &[u8]) -> Option<(StatusCode, HeaderMap)> {
    let value: Value = serde_json::from_slice(metadata).ok()?;
    let object = value.as_object()?;
    let status = match object.get("statusCode") {
        None | Some(Value::Null) => StatusCode::OK,
        Some(code) => code
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .and_then(|c| StatusCode::from_u16(c).ok())?,
    };
    let mut headers = HeaderMap::new();
    if let Some(Value::Object(pairs)) = object.get("headers") {
        for (name, value) in pairs {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&text),
            ) {
                headers.append(name, value);
            }
        }
    }
    if let Some(Value::Array(cookies)) = object.get("cookies") {
        for cookie in cookies.iter().filter_map(Value::as_str) {
            if let Ok(value) = HeaderValue::from_str(cookie) {
                headers.append(http::header::SET_COOKIE, value);
            }
        }
    }
    Some((status, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_metadata_gives_the_status_headers_and_cookies() {
        let (status, headers) = http_metadata(
            br#"{"statusCode":201,"headers":{"x-a":"b","x-n":5},"cookies":["a=1","b=2"]}"#,
        )
        .unwrap();
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(headers["x-a"], "b");
        assert_eq!(headers["x-n"], "5");
        let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(http_metadata(b"{}").unwrap().0, StatusCode::OK);
        assert!(http_metadata(b"not json").is_none());
        assert!(http_metadata(br#"{"statusCode":"nope"}"#).is_none());
    }

    /// A LambdaInvoker whose function streams the given parts.
    struct Streams(Vec<&'static [u8]>, Option<&'static str>);

    #[async_trait::async_trait]
    impl LambdaInvoker for Streams {
        async fn invoke(&self, _: GatewayInvocation) -> Result<InvocationOutcome, InvokeFailure> {
            unreachable!("a RESPONSE_STREAM URL invokes streaming")
        }

        async fn invoke_streaming(
            &self,
            _: GatewayInvocation,
            stream: mpsc::Sender<StreamedPart>,
        ) -> Result<InvocationOutcome, InvokeFailure> {
            let content_type = self.1.map(str::to_string);
            stream
                .send(StreamedPart::Started { content_type })
                .await
                .unwrap();
            for chunk in &self.0 {
                stream
                    .send(StreamedPart::Chunk(Bytes::from_static(chunk)))
                    .await
                    .unwrap();
            }
            Ok(InvocationOutcome {
                payload: Bytes::new(),
                function_error: None,
                executed_version: "$LATEST".into(),
                request_id: "r".into(),
            })
        }
    }

    fn invocation() -> GatewayInvocation {
        GatewayInvocation {
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            principal: crate::invoker::InvokePrincipal::Anonymous,
            action: crate::invoker::InvokeAction::InvokeFunction,
            source_arn: None,
            source_account: None,
            payload: Bytes::from_static(b"{}"),
        }
    }

    async fn streamed(invoker: Streams) -> (StatusCode, HeaderMap, Bytes) {
        let UrlAnswer::Streamed(response) =
            serve(Arc::new(invoker), invocation(), None, &HeaderMap::new()).await
        else {
            panic!("not streamed");
        };
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, body)
    }

    #[tokio::test]
    async fn metadata_split_across_chunks_becomes_the_status_and_headers() {
        let (status, headers, body) = streamed(Streams(
            vec![
                br#"{"statusCode":202,"headers":{"x-a":"b"}}"#,
                b"\0\0\0\0",
                b"\0\0\0\0hel",
                b"lo",
            ],
            Some(HTTP_INTEGRATION_CONTENT_TYPE),
        ))
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(headers["x-a"], "b");
        assert_eq!(body, "hello");
    }

    #[tokio::test]
    async fn a_plain_stream_answers_200_with_the_runtime_content_type() {
        let (status, headers, body) = streamed(Streams(vec![b"a", b"b"], Some("text/plain"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/plain");
        assert_eq!(body, "ab");
    }
}
