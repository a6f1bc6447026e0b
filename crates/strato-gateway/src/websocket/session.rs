//! One connection's life: `$connect` (authorizer, API key, then the
//! route's integration; a refusal answers the handshake instead of
//! upgrading), the session task that owns the socket (messages in,
//! PostToConnection frames out, idle and maximum-duration timers), and
//! `$disconnect`. Integrations themselves run in [`super::integration`].
//!
//! Why over 800 lines: the handshake's checks (throttle, authorizer, API
//! key and plan, required parameters, `$connect`), the socket loop and
//! each message's admission share the session's state and its access-log
//! turn; split apart, each piece would pass most of that state around.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use super::events::{connect_event, disconnect_event, message_event, EventContext, EventType};
use super::integration::{integrate, missing_required_parameters};
use super::{new_id, refusal, Connection, Outbound, MAX_FRAME, MAX_MESSAGE, OUTBOX};
use crate::access_log::{render, AccessLogContext};
use crate::authorizer::{
    invoke_authorizer, may_invoke, read_lambda_answer, AuthorizerRef, Decision,
};
use crate::http_api::live::{CompiledRoute, LiveApi, LiveStage};
use crate::http_api::model::{Authorizer, RouteAuthorization};
use crate::http_api::HttpApiService;
use crate::invoker::function_arn_of_integration_uri;
use crate::rest_api::dataplane::api_keys::{plan_usage, KeyScope, KeyVerdict, PlanUsage};
use crate::rest_api::RestApiService;

/// The read buffer a connection starts with.
const READ_BUFFER: usize = 4 * 1024;

/// What every event of one connection shares.
pub(super) struct Session {
    pub id: String,
    pub api: Arc<LiveApi>,
    pub stage: String,
    pub domain_name: String,
    pub host: String,
    pub source_ip: String,
    pub user_agent: Option<String>,
    pub connected_at: DateTime<Utc>,
    /// `requestContext.authorizer` of every event after `$connect`.
    pub authorizer: Option<Value>,
    /// The API key `$connect` admitted, and its id.
    pub api_key: Option<(String, String)>,
    /// That key's usage plan, which counts every message too.
    pub plan: Option<PlanUsage>,
}

/// One event being served: its ids, time and access-log values.
pub(super) struct Turn {
    request_id: String,
    message_id: Option<String>,
    received_at: DateTime<Utc>,
    log: AccessLogContext,
}

impl Turn {
    /// The integration's latency and status, for the access log.
    pub(super) fn record_integration(&mut self, started: Instant, status: u16) {
        self.log.set(
            "integrationLatency",
            started.elapsed().as_millis().to_string(),
        );
        self.log.set("integration.status", status.to_string());
    }

    fn new(message: bool) -> Turn {
        Turn {
            request_id: new_id(),
            message_id: message.then(new_id),
            received_at: Utc::now(),
            log: AccessLogContext::default(),
        }
    }
}

impl Session {
    fn context<'a>(
        &'a self,
        turn: &'a Turn,
        route_key: &'a str,
        event_type: EventType,
        authorizer: Option<&'a Value>,
        disconnect: Option<(u16, &'a str)>,
    ) -> EventContext<'a> {
        EventContext {
            route_key,
            event_type,
            connection_id: &self.id,
            connected_at: self.connected_at.timestamp_millis(),
            message_id: turn.message_id.as_deref(),
            domain_name: &self.domain_name,
            stage: &self.stage,
            api_id: &self.api.api_id,
            request_id: &turn.request_id,
            received_at: turn.received_at,
            source_ip: &self.source_ip,
            user_agent: self.user_agent.as_deref(),
            authorizer: authorizer.or(self.authorizer.as_ref()),
            disconnect,
            api_key: self
                .api_key
                .as_ref()
                .map(|(key, id)| (key.as_str(), id.as_str())),
        }
    }

    /// `arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{route-key}`.
    pub(super) fn route_arn(&self, route_key: &str) -> String {
        format!(
            "arn:aws:execute-api:{}:{}:{}/{}/{route_key}",
            self.api.region, self.api.account, self.api.api_id, self.stage
        )
    }

    /// The stage as deployed now (a redeployment applies to open
    /// connections), or as it was at `$connect` if it is gone.
    fn current_stage(&self, svc: &HttpApiService, fallback: &Arc<LiveStage>) -> Arc<LiveStage> {
        svc.live
            .get(&self.api.api_id)
            .and_then(|api| api.stages.get(&self.stage).cloned())
            .unwrap_or_else(|| fallback.clone())
    }

    /// Seeds the `$context` variables of an access-log line.
    fn seed_log(&self, turn: &mut Turn, route_key: &str, event_type: EventType) {
        let log = &mut turn.log;
        log.set("connectionId", self.id.clone());
        log.set(
            "connectedAt",
            self.connected_at.timestamp_millis().to_string(),
        );
        log.set("eventType", event_type.as_str());
        log.set("routeKey", route_key.to_string());
        log.set("requestId", turn.request_id.clone());
        log.set("extendedRequestId", turn.request_id.clone());
        if let Some(id) = &turn.message_id {
            log.set("messageId", id.clone());
        }
        log.set("apiId", self.api.api_id.clone());
        log.set("accountId", self.api.account.clone());
        log.set("stage", self.stage.clone());
        log.set("domainName", self.domain_name.clone());
        log.set("messageDirection", "IN");
        log.set("requestTime", crate::proxy::request_time(turn.received_at));
        log.set(
            "requestTimeEpoch",
            turn.received_at.timestamp_millis().to_string(),
        );
        log.set("identity.sourceIp", self.source_ip.clone());
        log.set(
            "identity.userAgent",
            self.user_agent.clone().unwrap_or_default(),
        );
        if let Some((key, id)) = &self.api_key {
            log.set("identity.apiKey", key.clone());
            log.set("identity.apiKeyId", id.clone());
        }
    }

    /// Writes the turn's access-log line if the stage has access logs.
    fn write_log(&self, svc: &HttpApiService, stage: &LiveStage, turn: &mut Turn, status: u16) {
        let Some(settings) = &stage.access_log else {
            return;
        };
        turn.log.set("status", status.to_string());
        turn.log.set(
            "responseLatency",
            (Utc::now() - turn.received_at)
                .num_milliseconds()
                .to_string(),
        );
        svc.access_logs.write(
            &self.api.account,
            &self.api.region,
            &settings.log_group,
            &format!("{}_{}", self.api.api_id, self.stage),
            render(&settings.format, &turn.log),
        );
    }
}

/// The frame API Gateway sends when it cannot serve a message, as AWS
/// spells it (`{"message": "Forbidden", "connectionId":"…", "requestId":"…"}`).
pub fn error_frame(message: &str, connection_id: &str, request_id: &str) -> String {
    format!(
        r#"{{"message": "{message}", "connectionId":"{connection_id}", "requestId":"{request_id}"}}"#
    )
}

/// The identity values an authorizer names, in order; `None` if one is
/// missing (the handshake is answered 401 without calling it).
fn identity_values(
    authorizer: &Authorizer,
    parts: &Parts,
    stage: &LiveStage,
) -> Option<Vec<String>> {
    let query = crate::proxy::query_pairs(parts.uri.query().unwrap_or(""));
    authorizer
        .identity_source
        .iter()
        .map(|source| {
            let value = if let Some(name) = source.strip_prefix("route.request.header.") {
                parts
                    .headers
                    .get(name)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            } else if let Some(name) = source.strip_prefix("route.request.querystring.") {
                query
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            } else if let Some(name) = source.strip_prefix("stageVariables.") {
                stage.variables.get(name).cloned()
            } else {
                None
            };
            value.filter(|v| !v.is_empty())
        })
        .collect()
}

/// `$connect`'s authorization: the decision, with what later events carry
/// in `requestContext.authorizer` when allowed.
async fn authorize(
    svc: &HttpApiService,
    session: &Session,
    stage: &LiveStage,
    route: &CompiledRoute,
    parts: &Parts,
    turn: &mut Turn,
) -> Decision {
    match route.route.authorization_type {
        RouteAuthorization::None | RouteAuthorization::Jwt => Decision::Allow {
            context: Value::Null,
        },
        RouteAuthorization::AwsIam => iam_authorize(svc, session, stage, parts, turn),
        RouteAuthorization::Custom => {
            let Some(authorizer) = route
                .route
                .authorizer_id
                .as_ref()
                .and_then(|id| stage.authorizers.get(id))
            else {
                return Decision::Failed;
            };
            let Some(identity) = identity_values(authorizer, parts, stage) else {
                return Decision::Unauthorized;
            };
            let cache_key = identity.join("\u{1f}");
            let ttl = Duration::from_secs(
                u64::try_from(authorizer.authorizer_result_ttl_in_seconds.unwrap_or(0))
                    .unwrap_or(0),
            );
            let api_id = &session.api.api_id;
            if !ttl.is_zero() && !identity.is_empty() {
                if let Some(decision) =
                    svc.decisions
                        .get(api_id, &authorizer.authorizer_id, &cache_key)
                {
                    return decision;
                }
            }
            let decision = lambda_authorize(svc, session, stage, authorizer, parts, turn).await;
            if !ttl.is_zero() && !identity.is_empty() && decision != Decision::Failed {
                svc.decisions.put(
                    api_id,
                    &authorizer.authorizer_id,
                    &cache_key,
                    ttl,
                    decision.clone(),
                );
            }
            decision
        }
    }
}

/// SigV4 for `execute-api` in the API's account and region, then the
/// signer's permission to invoke the stage's `$connect`.
fn iam_authorize(
    svc: &HttpApiService,
    session: &Session,
    stage: &LiveStage,
    parts: &Parts,
    turn: &mut Turn,
) -> Decision {
    let request = strato_sigv4::RequestParts {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
    };
    if strato_sigv4::credential_scope(&request).is_none() {
        turn.log
            .set("error.message", "Missing Authentication Token");
        return Decision::Forbidden;
    }
    match strato_sigv4::verify(&request, b"", Utc::now(), &*svc.credentials) {
        Ok(v)
            if v.service == "execute-api"
                && v.region == session.api.region
                && v.account_id == session.api.account =>
        {
            let arn = format!(
                "arn:aws:execute-api:{}:{}:{}/{}/$connect",
                session.api.region, session.api.account, session.api.api_id, stage.name
            );
            if let Err(denied) = may_invoke(&svc.iam, &v.access_key_id, &arn) {
                turn.log.set("error.message", denied.message);
                return Decision::Forbidden;
            }
            Decision::Allow {
                context: Value::Null,
            }
        }
        Ok(_) => Decision::Forbidden,
        Err(e) => {
            turn.log.set("error.message", e.message());
            Decision::Forbidden
        }
    }
}

async fn lambda_authorize(
    svc: &HttpApiService,
    session: &Session,
    stage: &LiveStage,
    authorizer: &Authorizer,
    parts: &Parts,
    turn: &mut Turn,
) -> Decision {
    let Some(function_arn) = authorizer
        .authorizer_uri
        .as_deref()
        .and_then(function_arn_of_integration_uri)
    else {
        return Decision::Failed;
    };
    let route_arn = session.route_arn("$connect");
    let context = session.context(turn, "$connect", EventType::Connect, None, None);
    let mut event = connect_event(
        &context,
        &parts.headers,
        parts.extensions.get(),
        parts.uri.query().unwrap_or(""),
        &stage.variables,
    );
    if let Value::Object(map) = &mut event {
        map.insert("type".into(), "REQUEST".into());
        map.insert("methodArn".into(), route_arn.clone().into());
        map.remove("isBase64Encoded");
    }
    let source = AuthorizerRef {
        region: &session.api.region,
        account: &session.api.account,
        api_id: &session.api.api_id,
        authorizer_id: &authorizer.authorizer_id,
    };
    let payload = match invoke_authorizer(&*svc.invoker, source, function_arn, &event).await {
        Ok(payload) => payload,
        Err(e) => {
            turn.log.set("authorizer.error", e);
            return Decision::Failed;
        }
    };
    let Some(verdict) = read_lambda_answer(&payload, false, &route_arn) else {
        turn.log
            .set("authorizer.error", "the authorizer's answer is malformed");
        return Decision::Failed;
    };
    if !verdict.allowed {
        return Decision::Forbidden;
    }
    // WebSocket events carry the context flat, with the principal (and the
    // API key an authorizer-sourced API key selection reads).
    let mut flat = verdict.context;
    if let Some(key) = serde_json::from_slice::<Value>(&payload)
        .ok()
        .and_then(|v| v.get("usageIdentifierKey")?.as_str().map(str::to_string))
    {
        flat.insert("usageIdentifierKey".into(), key.into());
    }
    if let Some(p) = verdict.principal_id {
        turn.log.set("authorizer.principalId", p.clone());
        flat.insert("principalId".into(), p.into());
    }
    Decision::Allow {
        context: Value::Object(flat),
    }
}

/// The handshake: authorize, run `$connect`, then upgrade (or answer 401,
/// 403 or 500 and never upgrade).
pub(super) async fn connect(
    svc: &Arc<HttpApiService>,
    keys: &RestApiService,
    api: Arc<LiveApi>,
    stage: Arc<LiveStage>,
    request: Request,
    source_ip: String,
    domain_name: String,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let header = |name: http::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut session = Session {
        id: new_id(),
        api,
        stage: stage.name.clone(),
        host: header(http::header::HOST).unwrap_or_else(|| domain_name.clone()),
        domain_name,
        source_ip,
        user_agent: header(http::header::USER_AGENT),
        connected_at: Utc::now(),
        authorizer: None,
        api_key: None,
        plan: None,
    };
    let mut turn = Turn::new(false);
    session.seed_log(&mut turn, "$connect", EventType::Connect);
    let refused = |svc: &HttpApiService, session: &Session, turn: &mut Turn, status, text: &str| {
        turn.log.set("error.message", text);
        session.write_log(svc, &stage, turn, status);
        refusal(
            StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
            text,
        )
    };
    let mut protocol = None;
    if let Some(route) = stage.keyed.get("$connect") {
        if route.throttle.as_ref().is_some_and(|b| !b.try_take()) {
            return refused(svc, &session, &mut turn, 429, "Too Many Requests");
        }
        match authorize(svc, &session, &stage, route, &parts, &mut turn).await {
            Decision::Allow { context } => {
                session.authorizer = (!context.is_null()).then_some(context);
            }
            Decision::Unauthorized => {
                return refused(svc, &session, &mut turn, 401, "Unauthorized");
            }
            Decision::Forbidden => return refused(svc, &session, &mut turn, 403, "Forbidden"),
            Decision::Failed => {
                return refused(svc, &session, &mut turn, 500, "Internal Server Error");
            }
        }
        if route.route.api_key_required {
            let presented = presented_api_key(&session, &parts);
            let scope = KeyScope {
                account: &session.api.account,
                region: &session.api.region,
                api_id: &session.api.api_id,
                stage: &session.stage,
            };
            let usage = plan_usage(keys, scope, presented.as_deref());
            match usage
                .as_ref()
                .map_or(KeyVerdict::Forbidden, |u| u.count(Utc::now()))
            {
                KeyVerdict::Admitted { key_id } => {
                    turn.log.set("identity.apiKeyId", key_id.clone());
                    if let Some(value) = &presented {
                        turn.log.set("identity.apiKey", value.clone());
                    }
                    session.api_key = presented.map(|value| (value, key_id));
                    session.plan = usage;
                }
                KeyVerdict::Forbidden => {
                    return refused(svc, &session, &mut turn, 403, "Forbidden")
                }
                KeyVerdict::Throttled => {
                    return refused(svc, &session, &mut turn, 429, "Too Many Requests")
                }
                KeyVerdict::QuotaExceeded => {
                    return refused(svc, &session, &mut turn, 429, "Limit Exceeded")
                }
            }
        }
        let context = session.context(&turn, "$connect", EventType::Connect, None, None);
        let event = connect_event(
            &context,
            &parts.headers,
            parts.extensions.get(),
            parts.uri.query().unwrap_or(""),
            &stage.variables,
        );
        let missing = missing_required_parameters(route, &event);
        if !missing.is_empty() {
            let message = format!(
                "Missing required request parameters: [{}]",
                missing.join(", ")
            );
            return refused(svc, &session, &mut turn, 400, &message);
        }
        match integrate(
            svc,
            &session,
            &stage,
            route,
            &event,
            Bytes::new(),
            &mut turn,
        )
        .await
        {
            Ok(answer) if (200..300).contains(&answer.status) => {
                // The protocol the function chose (API Gateway passes it
                // on whether or not the client offered it).
                protocol = answer
                    .header("sec-websocket-protocol")
                    .and_then(|p| HeaderValue::from_str(p).ok());
            }
            Ok(_) => return refused(svc, &session, &mut turn, 403, "Forbidden"),
            Err(e) => {
                turn.log.set("integrationErrorMessage", e);
                return refused(svc, &session, &mut turn, 403, "Forbidden");
            }
        }
    }
    session.write_log(svc, &stage, &mut turn, 200);
    let (outbox, inbox) = mpsc::channel(OUTBOX);
    let connection = Arc::new(Connection {
        api_id: session.api.api_id.clone(),
        stage: session.stage.clone(),
        connected_at: session.connected_at,
        last_active: session.connected_at.timestamp_millis().into(),
        source_ip: session.source_ip.clone(),
        user_agent: session.user_agent.clone(),
        outbox,
    });
    let id = session.id.clone();
    svc.websocket
        .connections
        .insert(id.clone(), connection.clone());
    let on_fail = svc.clone();
    let run_svc = svc.clone();
    let mut response = upgrade
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_FRAME)
        // tungstenite reserves its whole read buffer up front (128 KiB by
        // default): start small and let a large message grow it, so an
        // idle connection costs a few KiB.
        .read_buffer_size(READ_BUFFER)
        .on_failed_upgrade(move |_| {
            on_fail.websocket.connections.remove(&id);
        })
        .on_upgrade(move |socket| {
            run(run_svc, Arc::new(session), stage, connection, socket, inbox)
        });
    if let Some(protocol) = protocol {
        response
            .headers_mut()
            .insert(http::header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
}

/// The API key the handshake presents, where the API's key selection
/// expression says: the `x-api-key` header, or the `usageIdentifierKey` the
/// `$connect` authorizer returned.
fn presented_api_key(session: &Session, parts: &Parts) -> Option<String> {
    if session.api.api_key_selection_expression == "$context.authorizer.usageIdentifierKey" {
        return session
            .authorizer
            .as_ref()?
            .get("usageIdentifierKey")?
            .as_str()
            .map(str::to_string);
    }
    parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Why the connection ended, as `$disconnect` reports it.
struct Ending {
    code: u16,
    reason: String,
}

impl Ending {
    fn new(code: u16, reason: &str) -> Ending {
        Ending {
            code,
            reason: reason.to_string(),
        }
    }
}

/// The session task: owns the socket until either side closes or a timer
/// ends it, then unregisters the connection and runs `$disconnect`.
async fn run(
    svc: Arc<HttpApiService>,
    session: Arc<Session>,
    stage: Arc<LiveStage>,
    connection: Arc<Connection>,
    mut socket: WebSocket,
    mut inbox: mpsc::Receiver<Outbound>,
) {
    let limits = svc.websocket.limits;
    let ends_at = tokio::time::Instant::now() + limits.max_duration;
    let mut last_active = tokio::time::Instant::now();
    let ending = loop {
        let idle_at = last_active + limits.idle_timeout;
        tokio::select! {
            incoming = socket.recv() => {
                let (payload, binary) = match incoming {
                    Some(Ok(Message::Text(text))) => (Bytes::from(text), false),
                    Some(Ok(Message::Binary(data))) => (data, true),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        last_active = tokio::time::Instant::now();
                        connection.touch();
                        continue;
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break match frame {
                            Some(f) => Ending::new(f.code, f.reason.as_str()),
                            None => Ending::new(1005, "Client-side close frame status not set"),
                        };
                    }
                    Some(Err(e)) => {
                        let text = e.to_string();
                        let too_big = text.contains("too long") || text.contains("too big");
                        let ending = if too_big {
                            Ending::new(1009, "Message too big")
                        } else {
                            Ending::new(1002, "Protocol error")
                        };
                        let _ = socket
                            .send(Message::Close(Some(CloseFrame {
                                code: ending.code,
                                reason: ending.reason.clone().into(),
                            })))
                            .await;
                        break ending;
                    }
                    None => break Ending::new(1006, "Connection closed abnormally"),
                };
                last_active = tokio::time::Instant::now();
                connection.touch();
                tokio::spawn(on_message(
                    svc.clone(),
                    session.clone(),
                    stage.clone(),
                    connection.clone(),
                    payload,
                    binary,
                ));
            }
            outgoing = inbox.recv() => match outgoing {
                Some(Outbound::Frame(frame)) => {
                    last_active = tokio::time::Instant::now();
                    connection.touch();
                    if socket.send(frame).await.is_err() {
                        break Ending::new(1006, "Connection closed abnormally");
                    }
                }
                Some(Outbound::Close) | None => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: 1000,
                            reason: "".into(),
                        })))
                        .await;
                    break Ending::new(1000, "Connection closed by the server");
                }
            },
            _ = tokio::time::sleep_until(idle_at) => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame { code: 1001, reason: "Going away".into() })))
                    .await;
                break Ending::new(1001, "Going away");
            }
            _ = tokio::time::sleep_until(ends_at) => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame { code: 1001, reason: "Going away".into() })))
                    .await;
                break Ending::new(1001, "Going away");
            }
        }
    };
    drop(socket);
    svc.websocket.connections.remove(&session.id);
    disconnect(&svc, &session, &stage, ending).await;
}

/// Routes one message and, on a two-way route, sends the answer back; an
/// unroutable or failed message gets AWS's error frame.
async fn on_message(
    svc: Arc<HttpApiService>,
    session: Arc<Session>,
    stage: Arc<LiveStage>,
    connection: Arc<Connection>,
    payload: Bytes,
    binary: bool,
) {
    let stage = session.current_stage(&svc, &stage);
    let mut turn = Turn::new(true);
    let selected = if binary {
        None
    } else {
        session
            .api
            .route_selection
            .as_ref()
            .and_then(|e| e.select(&payload))
    };
    let route = selected
        .filter(|key| key != "$connect" && key != "$disconnect")
        .and_then(|key| stage.keyed.get(&key))
        .or_else(|| stage.keyed.get("$default"));
    let reply = |text: String| {
        // A full outbox drops the frame, as a client that does not read
        // loses what API Gateway cannot deliver.
        let _ = connection
            .outbox
            .try_send(Outbound::Frame(Message::Text(text.into())));
    };
    let Some(route) = route else {
        session.seed_log(&mut turn, "$default", EventType::Message);
        reply(error_frame("Forbidden", &session.id, &turn.request_id));
        turn.log.set("error.message", "Forbidden");
        session.write_log(&svc, &stage, &mut turn, 403);
        return;
    };
    let route_key = route.route.route_key.clone();
    session.seed_log(&mut turn, &route_key, EventType::Message);
    if route.throttle.as_ref().is_some_and(|b| !b.try_take()) {
        reply(error_frame(
            "Too Many Requests",
            &session.id,
            &turn.request_id,
        ));
        turn.log.set("error.message", "Too Many Requests");
        session.write_log(&svc, &stage, &mut turn, 429);
        return;
    }
    let plan = session.plan.as_ref().map(|p| p.count(Utc::now()));
    let over_plan = match plan {
        Some(KeyVerdict::Throttled) => Some("Too Many Requests"),
        Some(KeyVerdict::QuotaExceeded) => Some("Limit Exceeded"),
        _ => None,
    };
    if let Some(message) = over_plan {
        reply(error_frame(message, &session.id, &turn.request_id));
        turn.log.set("error.message", message);
        session.write_log(&svc, &stage, &mut turn, 429);
        return;
    }
    let context = session.context(&turn, &route_key, EventType::Message, None, None);
    let event = message_event(&context, &payload, binary, &stage.variables);
    match integrate(&svc, &session, &stage, route, &event, payload, &mut turn).await {
        Ok(answer) => {
            if let (true, Some(body)) = (route.two_way, answer.body) {
                reply(body);
            }
            session.write_log(&svc, &stage, &mut turn, answer.status);
        }
        Err(e) => {
            reply(error_frame(
                "Internal server error",
                &session.id,
                &turn.request_id,
            ));
            turn.log.set("error.message", "Internal server error");
            turn.log.set("integrationErrorMessage", e);
            session.write_log(&svc, &stage, &mut turn, 500);
        }
    }
}

/// `$disconnect`, best effort: its answer and failures change nothing.
async fn disconnect(
    svc: &HttpApiService,
    session: &Session,
    stage: &Arc<LiveStage>,
    ending: Ending,
) {
    let stage = session.current_stage(svc, stage);
    let Some(route) = stage.keyed.get("$disconnect") else {
        return;
    };
    let mut turn = Turn::new(false);
    session.seed_log(&mut turn, "$disconnect", EventType::Disconnect);
    turn.log
        .set("disconnectStatusCode", ending.code.to_string());
    turn.log.set("disconnectReason", ending.reason.clone());
    let context = session.context(
        &turn,
        "$disconnect",
        EventType::Disconnect,
        None,
        Some((ending.code, &ending.reason)),
    );
    let event = disconnect_event(&context, &session.host, &stage.variables);
    let status = match integrate(svc, session, &stage, route, &event, Bytes::new(), &mut turn).await
    {
        Ok(answer) => answer.status,
        Err(e) => {
            turn.log.set("integrationErrorMessage", e);
            500
        }
    };
    session.write_log(svc, &stage, &mut turn, status);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_frames_are_spelled_as_aws_spells_them() {
        assert_eq!(
            error_frame("Forbidden", "L0SM9cOFvHcCIhw=", "L0SNkEmOvHcFdqg="),
            r#"{"message": "Forbidden", "connectionId":"L0SM9cOFvHcCIhw=", "requestId":"L0SNkEmOvHcFdqg="}"#
        );
    }
}
