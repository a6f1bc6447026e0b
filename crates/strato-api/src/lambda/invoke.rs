//! Invoke: `POST /2015-03-31/functions/{name}/invocations`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use strato_engine::async_invoke::QueuedEvent;
use strato_engine::{InvokeRequest, InvokeTarget};
use strato_model::arn::qualified_function_arn;
use strato_model::limits::{MAX_ASYNC_PAYLOAD_BYTES, MAX_SYNC_PAYLOAD_BYTES};
use strato_model::recursion::{next_hop, Hop};
use strato_model::{AwsError, ErrorCode, FunctionRef, FunctionState, RecursiveLoop, Resolved};

use super::functions::QualifierQuery;
use super::{function_ref, load, unqualified_arn};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::ApiState;
use strato_gateway::extract::Authenticated;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

fn invocation_type(headers: &HeaderMap) -> ApiResult<InvocationType> {
    match headers.get("x-amz-invocation-type").map(|v| v.to_str().unwrap_or("")) {
        None | Some("RequestResponse") => Ok(InvocationType::RequestResponse),
        Some("Event") => Ok(InvocationType::Event),
        Some("DryRun") => Ok(InvocationType::DryRun),
        Some(other) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
        ))
        .into()),
    }
}

pub(super) fn tail_requested(headers: &HeaderMap) -> ApiResult<bool> {
    match headers.get("x-amz-log-type").map(|v| v.to_str().unwrap_or("")) {
        None | Some("None") => Ok(false),
        Some("Tail") => Ok(true),
        Some(other) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]"
        ))
        .into()),
    }
}

/// `X-Amz-Client-Context` is base64 of a JSON object; the runtime gets the JSON.
pub(super) fn client_context(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(raw) = headers.get("x-amz-client-context") else {
        return Ok(None);
    };
    let invalid = || {
        AwsError::new(
            ErrorCode::InvalidRequestContentException,
            "Client context must be a valid Base64-encoded JSON object.",
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(decoded).map_err(|_| invalid())?;
    if !serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.is_object()) {
        return Err(invalid().into());
    }
    Ok(Some(text))
}

/// The event as the function gets it: an empty (or blank) body is `{}`;
/// anything else must be JSON.
pub(super) fn json_payload(body: Bytes) -> ApiResult<Bytes> {
    let payload = if body.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
        return Err(AwsError::new(
            ErrorCode::InvalidRequestContentException,
            format!(
                "Could not parse request body into json: Could not parse payload into json: {e}"
            ),
        )
        .into());
    }
    Ok(payload)
}

/// The version an invocation of `r` runs, as Invoke resolves it: a weighted
/// alias picks its version per invocation, at random; only an `Active`
/// version runs. Shared with the gateway's invoker.
pub(crate) fn invocation_target(
    record: &strato_model::FunctionRecord,
    account: &str,
    region: &str,
    r: &strato_model::FunctionRef,
) -> Result<InvokeTarget, AwsError> {
    let not_found = || {
        AwsError::function_not_found(&qualified_function_arn(
            region,
            account,
            &r.name,
            r.qualifier.as_ref(),
        ))
    };
    let config = match record.resolve(r.qualifier.as_ref()) {
        Some(Resolved::Version(config)) => config,
        Some(Resolved::Alias(alias)) => record
            .version(alias.pick(rand::random::<f64>()))
            .ok_or_else(not_found)?,
        None => return Err(not_found()),
    };
    match config.state {
        FunctionState::Active => {}
        FunctionState::Pending => {
            return Err(AwsError::conflict(
                "The operation cannot be performed at this time. The function is currently in the following state: Pending",
            ))
        }
        FunctionState::Inactive | FunctionState::Failed => {
            return Err(AwsError::new(
                ErrorCode::ResourceNotReadyException,
                format!(
                    "The function {} is in state {:?} and cannot be invoked: {}",
                    config.name,
                    config.state,
                    config.state_reason.as_deref().unwrap_or("no reason recorded")
                ),
            ))
        }
    }
    Ok(InvokeTarget {
        account: account.to_string(),
        region: region.to_string(),
        config: Arc::new(config.clone()),
        invoked_arn: qualified_function_arn(region, account, &r.name, r.qualifier.as_ref()),
    })
}

/// What every form of Invoke resolves before it runs anything: the JSON
/// payload, the function's record, and the version the call runs.
pub(super) async fn prepare(
    state: &ApiState,
    caller: &Caller,
    r: &FunctionRef,
    body: Bytes,
) -> ApiResult<(Bytes, Arc<strato_model::FunctionRecord>, InvokeTarget)> {
    let payload = json_payload(body)?;
    let record = load(state, caller, r).await?;
    let target = invocation_target(&record, &caller.account_id, &caller.region, r)?;
    Ok((payload, record, target))
}

/// This invocation's place in a chain of calls, from the caller's trace
/// header (recursive loop detection).
pub(super) fn trace_hop(headers: &HeaderMap, caller: &Caller, r: &FunctionRef) -> Hop {
    next_hop(
        headers.get("x-amzn-trace-id").and_then(|v| v.to_str().ok()),
        &unqualified_arn(caller, &r.name),
    )
}

/// AWS's answer to a synchronous payload over the limit, worded per operation.
pub(super) fn sync_too_large(operation: &str) -> AwsError {
    AwsError::new(
        ErrorCode::RequestTooLargeException,
        format!(
            "Request must be smaller than {MAX_SYNC_PAYLOAD_BYTES} bytes for the {operation} operation"
        ),
    )
}

/// AWS's answer to an event payload over the limit.
fn event_too_large(len: usize) -> AwsError {
    AwsError::new(
        ErrorCode::RequestEntityTooLargeException,
        format!(
            "{len} byte payload is too large for the Event invocation type (limit {MAX_ASYNC_PAYLOAD_BYTES} bytes)"
        ),
    )
}

/// AWS's answer to an event whose payload fits but whose serialized request
/// (payload and client context) does not.
fn serialized_too_large(len: usize) -> AwsError {
    AwsError::new(
        ErrorCode::SerializedRequestEntityTooLargeException,
        format!(
            "{len} byte serialized request is too large for the Event invocation type (limit {MAX_ASYNC_PAYLOAD_BYTES} bytes)"
        ),
    )
}

pub async fn invoke(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path(name): Path<String>,
    Query(q): Query<QualifierQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let kind = invocation_type(&headers)?;
    let tail_log = tail_requested(&headers)?;
    let client_context = client_context(&headers)?;
    let r = function_ref(&caller, &name, q.qualifier(), "InvokeFunction")?;
    let limit = if kind == InvocationType::Event {
        MAX_ASYNC_PAYLOAD_BYTES
    } else {
        MAX_SYNC_PAYLOAD_BYTES
    };
    if body.len() > limit {
        // AWS words the two limits differently, and answers an oversize
        // event with RequestEntityTooLargeException.
        let error = if kind == InvocationType::Event {
            event_too_large(body.len())
        } else {
            sync_too_large("InvokeFunction")
        };
        return Err(error.into());
    }
    let (payload, record, target) = prepare(&state, &caller, &r, body).await?;
    if kind == InvocationType::DryRun {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let hop = trace_hop(&headers, &caller, &r);
    if kind == InvocationType::Event {
        // The payload is within the limit, but the event is queued with its
        // client context: AWS refuses an event whose request as serialized
        // is over the limit with its own error.
        let serialized = payload.len() + client_context.as_ref().map_or(0, String::len);
        if serialized > MAX_ASYNC_PAYLOAD_BYTES {
            return Err(serialized_too_large(serialized).into());
        }
        let request_id =
            enqueue(&state, &caller, &r, &target, payload, client_context, hop).await?;
        let mut response = StatusCode::ACCEPTED.into_response();
        if let Ok(id) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-amzn-RequestId", id);
        }
        return Ok(response);
    }
    if hop.is_recursive_loop() && record.recursive_loop == RecursiveLoop::Terminate {
        return Err(recursive_loop_stopped().into());
    }
    let request = InvokeRequest {
        payload,
        client_context,
        cognito_identity: None,
        tail_log,
        request_id: None,
        trace_header: Some(hop.trace_header),
    };
    let function = target.config.name.clone();
    let result = state
        .engine
        .invoke(target, request)
        .await
        .map_err(|e| super::concurrency::invoke_error(&function, e))?;
    let mut response = (StatusCode::OK, result.payload).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    // The invocation's own id (its START/END/REPORT lines, the context's
    // request id), so a client can find its invocation's logs.
    if let Ok(v) = HeaderValue::from_str(&result.request_id) {
        headers.insert("x-amzn-RequestId", v);
    }
    if let Ok(v) = HeaderValue::from_str(&result.executed_version) {
        headers.insert("x-amz-executed-version", v);
    }
    if let Some(error) = result.function_error {
        headers.insert("x-amz-function-error", HeaderValue::from_static(error));
    }
    if let Some(tail) = result
        .log_result
        .and_then(|t| HeaderValue::from_str(&t).ok())
    {
        headers.insert("x-amz-log-result", tail);
    }
    Ok(response)
}

/// The answer to a synchronous invocation stopped as part of a recursive
/// loop (AWS's `RecursiveInvocationException`).
pub(super) fn recursive_loop_stopped() -> AwsError {
    AwsError::new(
        ErrorCode::RecursiveInvocationException,
        "Lambda has detected your function being invoked in a recursive loop with other AWS resources and stopped your function's invocation.",
    )
}

/// Queues an asynchronous invocation of `target` durably and answers with
/// its request id once it is on disk: accepted whatever the concurrency
/// (the event waits for a slot). An event that is a recursive loop is
/// queued too: the dispatcher drops it to the function's on-failure
/// destination, as AWS does, when the function's `RecursiveLoop` says
/// `Terminate`.
async fn enqueue(
    state: &ApiState,
    caller: &Caller,
    r: &FunctionRef,
    target: &InvokeTarget,
    payload: Bytes,
    client_context: Option<String>,
    hop: Hop,
) -> ApiResult<String> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let event = QueuedEvent {
        request_id: request_id.clone(),
        account: caller.account_id.clone(),
        region: caller.region.clone(),
        function: target.config.name.clone(),
        qualifier: r.qualifier.as_ref().map(|q| q.as_string()),
        client_context,
        invocations: 0,
        backoff_ms: 0,
        trace_header: Some(hop.trace_header),
        lineage_count: hop.count,
    };
    state
        .engine
        .enqueue_event(event, payload)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "an event invocation could not be queued");
            AwsError::new(
                ErrorCode::ServiceException,
                "The event could not be stored; it was not accepted.",
            )
        })?;
    Ok(request_id)
}

/// InvokeAsync (`POST /2014-11-13/functions/{name}/invoke-async`), AWS's
/// deprecated form of an `Event` invocation: the same durable queue, the
/// answer `202 {"Status": 202}`.
pub async fn invoke_async(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let r = function_ref(&caller, &name, None, "InvokeAsync")?;
    if body.len() > MAX_ASYNC_PAYLOAD_BYTES {
        return Err(event_too_large(body.len()).into());
    }
    let (payload, _, target) = prepare(&state, &caller, &r, body).await?;
    let hop = trace_hop(&headers, &caller, &r);
    let request_id = enqueue(&state, &caller, &r, &target, payload, None, hop).await?;
    let mut response = (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "Status": 202 })),
    )
        .into_response();
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-RequestId", id);
    }
    Ok(response)
}
