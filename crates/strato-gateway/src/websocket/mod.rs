//! WebSocket APIs' data plane: the upgrade at `/{stage}` (host-style
//! `{api-id}.execute-api.localhost` or path-style
//! `/_strato/execute-api/{api-id}/{stage}`), `$connect` with its authorizer,
//! messages routed by the API's route selection expression, `$disconnect`,
//! and the `@connections` management API functions push through.
//!
//! Connections live in memory only ([`Hub`]): one task per connection
//! owns the socket; the registry holds a small [`Connection`] record with
//! the sending half of a bounded outbox, so a PostToConnection is a map
//! lookup and a channel send (no database, no global lock).

mod events;
mod integration;
mod management;
mod selection;
mod session;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use http::{HeaderValue, StatusCode};
use tokio::sync::mpsc;

use crate::http_api::live::LiveApi;
use crate::http_api::HttpApiService;
use crate::rest_api::RestApiService;

pub use events::{
    connect_event, disconnect_event, message_event, request_context, EventContext, EventType,
};
pub use integration::is_request_parameter_target;
pub use selection::{identity_source_kind, SelectionExpression};

/// The largest message API Gateway accepts (128 KB)...
pub const MAX_MESSAGE: usize = 128 * 1024;
/// ...and the largest frame of one (32 KB).
pub const MAX_FRAME: usize = 32 * 1024;
/// Frames waiting to be written to one client; a PostToConnection beyond
/// it is refused (`LimitExceededException`) rather than buffered.
const OUTBOX: usize = 32;
/// API Gateway's idle timeout.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// API Gateway's maximum connection duration.
pub const MAX_DURATION: Duration = Duration::from_secs(2 * 60 * 60);

/// How long connections may idle and last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub idle_timeout: Duration,
    pub max_duration: Duration,
}

impl Limits {
    /// AWS's limits divided by `time_scale` (tests run minutes in seconds).
    pub fn scaled(time_scale: u32) -> Limits {
        let scale = time_scale.max(1);
        Limits {
            idle_timeout: IDLE_TIMEOUT / scale,
            max_duration: MAX_DURATION / scale,
        }
    }
}

/// What the session task is told to do.
#[derive(Debug)]
pub enum Outbound {
    /// Write a frame.
    Frame(Message),
    /// Close the connection (DeleteConnection), with status 1000.
    Close,
}

/// A live connection, as the management API sees it.
#[derive(Debug)]
pub struct Connection {
    pub api_id: String,
    pub stage: String,
    pub connected_at: DateTime<Utc>,
    /// Epoch milliseconds of the last frame in either direction.
    last_active: AtomicI64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    outbox: mpsc::Sender<Outbound>,
}

impl Connection {
    fn touch(&self) {
        self.last_active
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    pub fn last_active(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.last_active.load(Ordering::Relaxed))
            .unwrap_or(self.connected_at)
    }
}

/// Every open connection, by id.
pub struct Hub {
    pub connections: DashMap<String, Arc<Connection>>,
    pub limits: Limits,
}

impl Hub {
    pub fn new(limits: Limits) -> Hub {
        Hub {
            connections: DashMap::new(),
            limits,
        }
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }
}

/// A connection, message or request id as API Gateway makes them:
/// 15 characters and `=` (`L0SM9cOFvHcCIhw=`).
pub fn new_id() -> String {
    crate::http_api::dataplane::new_request_id()
}

/// `{"message": text}` with a status, as the gateway answers requests it
/// refuses.
fn refusal(status: StatusCode, text: &str) -> Response {
    let mut response = (status, serde_json::json!({ "message": text }).to_string()).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// What the part of the path after the API's address asks for.
#[derive(Debug, PartialEq, Eq)]
enum Addressed<'a> {
    /// `/{stage}`: the upgrade.
    Stage(&'a str),
    /// `/{stage}/@connections/{id}`: the management API.
    Connection {
        stage: &'a str,
        id: String,
    },
    Nothing,
}

fn addressed(path: &str) -> Addressed<'_> {
    let trimmed = path.trim_start_matches('/');
    let (stage, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    if stage.is_empty() {
        return Addressed::Nothing;
    }
    if rest.is_empty() {
        return Addressed::Stage(stage);
    }
    match rest.strip_prefix("@connections/") {
        Some(id) if !id.is_empty() && !id.contains('/') => Addressed::Connection {
            stage,
            id: crate::proxy::path_decode(id),
        },
        _ => Addressed::Nothing,
    }
}

/// Serves a request to WebSocket API `api`; `path` is what follows the
/// API's address.
pub async fn handle(
    svc: &Arc<HttpApiService>,
    keys: &RestApiService,
    api: Arc<LiveApi>,
    path: &str,
    request: Request,
    source_ip: String,
    domain_name: String,
) -> Response {
    match addressed(path) {
        Addressed::Stage(stage) => {
            let Some(stage) = api.stages.get(stage).cloned() else {
                return refusal(StatusCode::FORBIDDEN, "Forbidden");
            };
            session::connect(svc, keys, api, stage, request, source_ip, domain_name).await
        }
        Addressed::Connection { stage, id } => {
            if !api.stages.contains_key(stage) {
                return refusal(StatusCode::FORBIDDEN, "Forbidden");
            }
            management::serve(svc, &api, stage, &id, request).await
        }
        Addressed::Nothing => refusal(StatusCode::FORBIDDEN, "Forbidden"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_address_a_stage_or_a_connection() {
        assert_eq!(addressed("/prod"), Addressed::Stage("prod"));
        assert_eq!(
            addressed("/prod/@connections/L0SM9cOFvHcCIhw%3D"),
            Addressed::Connection {
                stage: "prod",
                id: "L0SM9cOFvHcCIhw=".into()
            }
        );
        assert_eq!(addressed("/"), Addressed::Nothing);
        assert_eq!(addressed("/prod/other"), Addressed::Nothing);
        assert_eq!(addressed("/prod/@connections/"), Addressed::Nothing);
    }

    #[test]
    fn limits_scale_down_for_tests() {
        assert_eq!(Limits::scaled(1).idle_timeout, IDLE_TIMEOUT);
        assert_eq!(Limits::scaled(1).max_duration, MAX_DURATION);
        assert_eq!(Limits::scaled(600).idle_timeout, Duration::from_secs(1));
        assert_eq!(Limits::scaled(600).max_duration, Duration::from_secs(12));
    }

    #[test]
    fn ids_look_like_api_gateway_ids() {
        let id = new_id();
        assert_eq!(id.len(), 16);
        assert!(id.ends_with('='));
    }
}
