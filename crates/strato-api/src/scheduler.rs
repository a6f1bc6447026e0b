//! EventBridge Scheduler's REST-JSON routes (`aws scheduler`): each route
//! becomes an operation of `strato-events`, with the path's and query's
//! members merged into the body under their model names. `/tags/{arn}`,
//! which API Gateway shares, reaches [`tags`] through
//! `protocol::dispatch_signed_rest` when signed for `scheduler`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use strato_gateway::extract::Authenticated;
use strato_model::wire::{Doc, OpResult};

use crate::protocol::Wire;
use crate::ApiState;

const WIRE: Wire = Wire::Json("application/json");

/// `/schedules[/{Name}]` and `/schedule-groups[/{Name}]`.
pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/schedules", get(list_schedules))
        .route(
            "/schedules/{name}",
            get(schedule).post(schedule).put(schedule).delete(schedule),
        )
        .route("/schedule-groups", get(list_groups))
        .route(
            "/schedule-groups/{name}",
            get(group).post(group).delete(group),
        )
}

/// Query parameters under the members they fill.
fn with_query(mut input: Doc, query: &HashMap<String, String>, names: &[(&str, &str)]) -> Doc {
    for (param, member) in names {
        if let Some(value) = query.get(*param) {
            input = input.with(member, Doc::Form(value.clone()));
        }
    }
    input
}

async fn run(state: &ApiState, caller: &strato_model::Caller, op: &str, input: Doc) -> Response {
    let result: OpResult = state.events.scheduler_operation(caller, op, input).await;
    match result {
        Ok(doc) => WIRE.respond(Ok(doc)),
        Err(e) => error_response(&e),
    }
}

/// Scheduler's error shapes carry their text as a `Message` member (AWS
/// sends it so), the code in `x-amzn-ErrorType`.
fn error_response(e: &strato_model::wire::ServiceError) -> Response {
    let body = serde_json::json!({ "Message": e.message }).to_string();
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(code) = HeaderValue::from_str(e.code) {
        headers.insert("x-amzn-ErrorType", code);
    }
    response
}

async fn schedule(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    method: Method,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    bytes: Bytes,
) -> Response {
    let input = match WIRE.decode(&bytes) {
        Ok(doc) => doc.with("Name", name.as_str()),
        Err(e) => return WIRE.respond(Err(e)),
    };
    let input = with_query(input, &query, &[("groupName", "GroupName")]);
    let op = match method {
        Method::POST => "CreateSchedule",
        Method::PUT => "UpdateSchedule",
        Method::DELETE => "DeleteSchedule",
        _ => "GetSchedule",
    };
    run(&state, &caller, op, input).await
}

async fn list_schedules(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let input = with_query(
        Doc::map(),
        &query,
        &[
            ("NamePrefix", "NamePrefix"),
            ("ScheduleGroup", "GroupName"),
            ("State", "State"),
            ("MaxResults", "MaxResults"),
            ("NextToken", "NextToken"),
        ],
    );
    run(&state, &caller, "ListSchedules", input).await
}

async fn group(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    method: Method,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Response {
    let input = match WIRE.decode(&bytes) {
        Ok(doc) => doc.with("Name", name.as_str()),
        Err(e) => return WIRE.respond(Err(e)),
    };
    let op = match method {
        Method::POST => "CreateScheduleGroup",
        Method::DELETE => "DeleteScheduleGroup",
        _ => "GetScheduleGroup",
    };
    run(&state, &caller, op, input).await
}

async fn list_groups(
    State(state): State<Arc<ApiState>>,
    Authenticated(caller): Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let input = with_query(
        Doc::map(),
        &query,
        &[
            ("NamePrefix", "NamePrefix"),
            ("MaxResults", "MaxResults"),
            ("NextToken", "NextToken"),
        ],
    );
    run(&state, &caller, "ListScheduleGroups", input).await
}

/// `/tags/{ResourceArn}` signed for `scheduler`: TagResource (`POST`),
/// UntagResource (`DELETE`, `?TagKeys=`), ListTagsForResource (`GET`).
pub async fn tags(
    state: &ApiState,
    caller: &strato_model::Caller,
    method: &Method,
    uri: &axum::http::Uri,
    body: &[u8],
) -> Response {
    let encoded = uri.path().trim_start_matches("/tags/");
    let arn = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
    let input = match WIRE.decode(body) {
        Ok(doc) => doc.with("ResourceArn", arn.as_ref()),
        Err(e) => return error_response(&e),
    };
    let keys: Vec<Doc> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| *name == "TagKeys")
        .map(|(_, value)| {
            let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            Doc::Text(value)
        })
        .collect();
    let op = match *method {
        Method::POST => "TagResource",
        Method::DELETE => "UntagResource",
        Method::GET => "ListTagsForResource",
        _ => {
            return error_response(&strato_model::wire::ServiceError::new(
                "UnknownOperationException",
                format!("Unknown operation {method} {}", uri.path()),
            ))
        }
    };
    let input = if op == "UntagResource" {
        input.with("TagKeys", Doc::List(keys))
    } else {
        input
    };
    run(state, caller, op, input).await
}
