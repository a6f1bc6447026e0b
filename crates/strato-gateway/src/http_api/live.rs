//! The data plane's view of HTTP and WebSocket APIs: compiled route tables per stage,
//! throttles and settings, held in memory and replaced whole on every
//! control-plane write, so a request takes no database round trip and no
//! global lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dashmap::DashMap;

use super::model::{
    Authorizer, Cors, HttpApi, Integration, IntegrationResponse, ProtocolType, Route,
    RouteSettings, Snapshot,
};
use crate::throttle::TokenBucket;
use crate::websocket::SelectionExpression;

/// One segment of a route path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// `{name}`: one segment.
    Param(String),
    /// `{name+}`: the rest of the path (one or more segments); last only.
    Greedy(String),
}

impl Segment {
    /// Literal beats parameter beats greedy, segment by segment.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 0,
        }
    }
}

/// Splits `/items/{id}` into segments; `None` if the path is not valid.
pub fn parse_route_path(path: &str) -> Option<Vec<Segment>> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if let Some(name) = inner.strip_suffix('+') {
                if i + 1 != parts.len() || name.is_empty() {
                    return None;
                }
                segments.push(Segment::Greedy(name.to_string()));
            } else {
                if inner.is_empty() {
                    return None;
                }
                segments.push(Segment::Param(inner.to_string()));
            }
        } else if part.contains('{') || part.contains('}') {
            return None;
        } else {
            segments.push(Segment::Literal(part.to_string()));
        }
    }
    Some(segments)
}

/// A route ready for matching.
pub struct CompiledRoute {
    pub route: Route,
    /// `None` for `ANY`.
    pub method: Option<String>,
    pub segments: Vec<Segment>,
    /// Per-route throttle (the route's settings, or the stage's defaults).
    pub throttle: Option<Arc<TokenBucket>>,
    /// WebSocket routes: the integration's answer goes back to the client
    /// (a `$default` route response selected by `$default`).
    pub two_way: bool,
}

impl CompiledRoute {
    /// The path parameters if `path_segments` match this route's path.
    fn match_path(&self, path_segments: &[&str]) -> Option<BTreeMap<String, String>> {
        let mut params = BTreeMap::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(literal) => {
                    if path_segments.get(i) != Some(&literal.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let value = path_segments.get(i).filter(|v| !v.is_empty())?;
                    params.insert(name.clone(), crate::proxy::path_decode(value));
                }
                Segment::Greedy(name) => {
                    let rest = path_segments.get(i..).filter(|r| !r.is_empty())?;
                    let joined = rest.join("/");
                    if joined.is_empty() {
                        return None;
                    }
                    params.insert(name.clone(), crate::proxy::path_decode(&joined));
                    return Some(params);
                }
            }
        }
        (self.segments.len() == path_segments.len()).then_some(params)
    }

    /// How specific the route is: segment ranks left to right, then an
    /// explicit method over `ANY`.
    fn specificity(&self) -> (Vec<u8>, u8) {
        (
            self.segments.iter().map(Segment::rank).collect(),
            u8::from(self.method.is_some()),
        )
    }
}

/// Where the access log of a stage goes.
#[derive(Debug, Clone)]
pub struct AccessLog {
    pub log_group: String,
    pub format: String,
}

/// A stage as the data plane serves it.
pub struct LiveStage {
    pub name: String,
    pub variables: BTreeMap<String, String>,
    pub routes: Vec<CompiledRoute>,
    pub default_route: Option<CompiledRoute>,
    pub integrations: HashMap<String, Integration>,
    pub authorizers: HashMap<String, Authorizer>,
    pub cors: Option<Cors>,
    pub access_log: Option<AccessLog>,
    /// WebSocket APIs: every route by its key (`$connect`, `$default`, ...).
    pub keyed: HashMap<String, CompiledRoute>,
    /// WebSocket APIs: each integration's responses.
    pub integration_responses: HashMap<String, Vec<IntegrationResponse>>,
}

impl LiveStage {
    /// The most specific route for a method and a path (relative to the
    /// stage), with its path parameters; `$default` when no other matches.
    pub fn select(
        &self,
        method: &str,
        path: &str,
    ) -> Option<(&CompiledRoute, BTreeMap<String, String>)> {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let segments: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        let mut best: Option<(&CompiledRoute, BTreeMap<String, String>)> = None;
        for route in &self.routes {
            if route.method.as_deref().is_some_and(|m| m != method) {
                continue;
            }
            let Some(params) = route.match_path(&segments) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((current, _)) => route.specificity() > current.specificity(),
            };
            if better {
                best = Some((route, params));
            }
        }
        best.or_else(|| self.default_route.as_ref().map(|r| (r, BTreeMap::new())))
    }
}

/// An HTTP API as the data plane serves it.
pub struct LiveApi {
    pub api_id: String,
    pub account: String,
    pub region: String,
    pub name: String,
    pub disable_execute_api_endpoint: bool,
    pub stages: HashMap<String, Arc<LiveStage>>,
    pub protocol: ProtocolType,
    /// WebSocket APIs: how a message picks its route.
    pub route_selection: Option<SelectionExpression>,
    /// WebSocket APIs: where `$connect` finds the API key
    /// (`$request.header.x-api-key` or `$context.authorizer.usageIdentifierKey`).
    pub api_key_selection_expression: String,
}

fn bucket(settings: &RouteSettings) -> Option<Arc<TokenBucket>> {
    match (
        settings.throttling_rate_limit,
        settings.throttling_burst_limit,
    ) {
        (None, None) => None,
        (rate, burst) => Some(Arc::new(TokenBucket::new(
            rate.unwrap_or(10_000.0),
            u32::try_from(burst.unwrap_or(5_000).max(0)).unwrap_or(u32::MAX),
        ))),
    }
}

fn compile_route(route: &Route, settings: &RouteSettings) -> Option<CompiledRoute> {
    let throttle = bucket(settings);
    if route.route_key == "$default" {
        return Some(CompiledRoute {
            route: route.clone(),
            method: None,
            segments: Vec::new(),
            throttle,
            two_way: false,
        });
    }
    let (method, path) = route.route_key.split_once(' ')?;
    Some(CompiledRoute {
        route: route.clone(),
        method: (method != "ANY").then(|| method.to_string()),
        segments: parse_route_path(path)?,
        throttle,
        two_way: false,
    })
}

/// A WebSocket route: matched by its key alone.
fn compile_websocket_route(
    route: &Route,
    settings: &RouteSettings,
    snapshot: &Snapshot,
) -> CompiledRoute {
    let two_way = route.route_response_selection_expression.as_deref() == Some("$default")
        && snapshot
            .route_responses
            .get(&route.route_id)
            .is_some_and(|r| r.values().any(|r| r.route_response_key == "$default"));
    CompiledRoute {
        route: route.clone(),
        method: None,
        segments: Vec::new(),
        throttle: bucket(settings),
        two_way,
    }
}

/// Compiles an API's deployed stages.
pub fn compile(api: &HttpApi) -> LiveApi {
    let mut stages = HashMap::new();
    for stage in api.stages.values() {
        let Some(deployment) = stage
            .deployment_id
            .as_ref()
            .and_then(|id| api.deployments.get(id))
        else {
            continue;
        };
        let snapshot = &deployment.snapshot;
        let mut routes = Vec::new();
        let mut default_route = None;
        let mut keyed = HashMap::new();
        for route in snapshot.routes.values() {
            let settings = stage
                .route_settings
                .get(&route.route_key)
                .map(|own| merged(own, &stage.default_route_settings))
                .unwrap_or_else(|| stage.default_route_settings.clone());
            if api.protocol_type == ProtocolType::WebSocket {
                keyed.insert(
                    route.route_key.clone(),
                    compile_websocket_route(route, &settings, snapshot),
                );
                continue;
            }
            let Some(compiled) = compile_route(route, &settings) else {
                continue;
            };
            if route.route_key == "$default" {
                default_route = Some(compiled);
            } else {
                routes.push(compiled);
            }
        }
        let access_log = stage.access_log_settings.as_ref().and_then(|s| {
            let arn = s.destination_arn.as_deref()?;
            Some(AccessLog {
                log_group: log_group_of(arn)?,
                format: s.format.clone()?,
            })
        });
        stages.insert(
            stage.stage_name.clone(),
            Arc::new(LiveStage {
                name: stage.stage_name.clone(),
                variables: stage.stage_variables.clone(),
                routes,
                default_route,
                integrations: snapshot
                    .integrations
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                authorizers: snapshot
                    .authorizers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                cors: snapshot.cors.clone(),
                access_log,
                keyed,
                integration_responses: snapshot
                    .integration_responses
                    .iter()
                    .map(|(id, responses)| (id.clone(), responses.values().cloned().collect()))
                    .collect(),
            }),
        );
    }
    LiveApi {
        api_id: api.api_id.clone(),
        account: api.account.clone(),
        region: api.region.clone(),
        name: api.name.clone(),
        disable_execute_api_endpoint: api.disable_execute_api_endpoint,
        stages,
        protocol: api.protocol_type,
        api_key_selection_expression: api.api_key_selection_expression.clone(),
        route_selection: match api.protocol_type {
            ProtocolType::Http => None,
            ProtocolType::WebSocket => SelectionExpression::parse(&api.route_selection_expression),
        },
    }
}

/// A route's own settings with the stage's defaults under them.
fn merged(own: &RouteSettings, defaults: &RouteSettings) -> RouteSettings {
    RouteSettings {
        data_trace_enabled: own.data_trace_enabled.or(defaults.data_trace_enabled),
        detailed_metrics_enabled: own
            .detailed_metrics_enabled
            .or(defaults.detailed_metrics_enabled),
        logging_level: own.logging_level.clone().or(defaults.logging_level.clone()),
        throttling_burst_limit: own
            .throttling_burst_limit
            .or(defaults.throttling_burst_limit),
        throttling_rate_limit: own.throttling_rate_limit.or(defaults.throttling_rate_limit),
    }
}

/// The log group of `arn:aws:logs:{region}:{account}:log-group:{name}[:*]`.
pub fn log_group_of(arn: &str) -> Option<String> {
    let (_, rest) = arn.split_once(":log-group:")?;
    let name = rest.strip_suffix(":*").unwrap_or(rest);
    (!name.is_empty()).then(|| name.to_string())
}

/// Every HTTP API by id.
#[derive(Default)]
pub struct LiveIndex {
    pub apis: DashMap<String, Arc<LiveApi>>,
}

impl LiveIndex {
    pub fn publish(&self, api: &HttpApi) {
        self.apis.insert(api.api_id.clone(), Arc::new(compile(api)));
    }

    pub fn remove(&self, api_id: &str) {
        self.apis.remove(api_id);
    }

    pub fn get(&self, api_id: &str) -> Option<Arc<LiveApi>> {
        self.apis.get(api_id).map(|a| a.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(key: &str) -> Route {
        Route::new(key.into(), key.into())
    }

    fn stage(keys: &[&str]) -> LiveStage {
        let mut routes = Vec::new();
        let mut default_route = None;
        for key in keys {
            let compiled = compile_route(&route(key), &RouteSettings::default()).unwrap();
            if *key == "$default" {
                default_route = Some(compiled);
            } else {
                routes.push(compiled);
            }
        }
        LiveStage {
            name: "$default".into(),
            variables: BTreeMap::new(),
            routes,
            default_route,
            integrations: HashMap::new(),
            authorizers: HashMap::new(),
            cors: None,
            access_log: None,
            keyed: HashMap::new(),
            integration_responses: HashMap::new(),
        }
    }

    fn selected(stage: &LiveStage, method: &str, path: &str) -> String {
        stage
            .select(method, path)
            .map(|(r, _)| r.route.route_key.clone())
            .unwrap_or_default()
    }

    #[test]
    fn the_most_specific_route_wins_as_aws_orders_it() {
        let s = stage(&[
            "GET /pets/dog/1",
            "GET /pets/dog/{id}",
            "GET /pets/{proxy+}",
            "ANY /{proxy+}",
            "$default",
        ]);
        assert_eq!(selected(&s, "GET", "/pets/dog/1"), "GET /pets/dog/1");
        assert_eq!(selected(&s, "GET", "/pets/dog/2"), "GET /pets/dog/{id}");
        assert_eq!(selected(&s, "GET", "/pets/cat/1"), "GET /pets/{proxy+}");
        assert_eq!(selected(&s, "POST", "/pets/dog/1"), "ANY /{proxy+}");
        assert_eq!(selected(&s, "GET", "/"), "$default");
    }

    #[test]
    fn path_parameters_are_captured() {
        let s = stage(&["GET /items/{id}", "ANY /files/{path+}"]);
        let (_, params) = s.select("GET", "/items/42").unwrap();
        assert_eq!(params["id"], "42");
        let (_, params) = s.select("PUT", "/files/a/b%20c").unwrap();
        assert_eq!(params["path"], "a/b c");
        assert!(s.select("GET", "/items").is_none());
    }

    #[test]
    fn bad_route_paths_are_refused() {
        assert!(parse_route_path("/a/{proxy+}/b").is_none());
        assert!(parse_route_path("no-slash").is_none());
        assert!(parse_route_path("/a{b}").is_none());
        assert_eq!(parse_route_path("/").unwrap(), Vec::<Segment>::new());
    }
}
