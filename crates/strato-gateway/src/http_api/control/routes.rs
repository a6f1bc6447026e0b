//! Routes: their keys, targets and authorization.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::children::{self, Child};
use super::{answer, mutate, not_found, patch, to_value, Service};
use crate::extract::{ApiRequest, Authenticated, ChildRequest, RestJson};
use crate::http_api::live::parse_route_path;
use crate::http_api::model::{new_id, HttpApi, ProtocolType, Route, RouteAuthorization};
use crate::http_api::HttpApiService;
use crate::rest_api::error::{RestError, RestResult};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RouteInput {
    route_key: Option<String>,
    api_key_required: Option<bool>,
    authorization_scopes: Option<Vec<String>>,
    authorization_type: Option<String>,
    authorizer_id: Option<String>,
    operation_name: Option<String>,
    request_parameters: Option<BTreeMap<String, Value>>,
    target: Option<String>,
    route_response_selection_expression: Option<String>,
    model_selection_expression: Option<String>,
}

/// A route key of an API of `protocol`.
fn check_key_for(protocol: ProtocolType, key: &str) -> RestResult<()> {
    match protocol {
        ProtocolType::Http => check_route_key(key),
        ProtocolType::WebSocket => check_websocket_route_key(key),
    }
}

/// WebSocket route keys: `$connect`, `$disconnect`, `$default`, or a
/// custom key (what the route selection expression yields) not starting
/// with `$`.
fn check_websocket_route_key(key: &str) -> RestResult<()> {
    let valid = matches!(key, "$connect" | "$disconnect" | "$default")
        || (!key.is_empty() && key.len() <= 128 && !key.starts_with('$'));
    if valid {
        Ok(())
    } else {
        Err(RestError::bad_request(format!(
            "Unable to create Route with RouteKey '{key}'. Route keys starting with '$' are reserved; use $connect, $disconnect, $default or a custom key."
        )))
    }
}

/// What only WebSocket routes have, and where: authorization and API keys
/// on `$connect` alone, route responses selected by `$default`.
fn check_websocket_route(api: &HttpApi, route: &Route) -> RestResult<()> {
    if api.protocol_type != ProtocolType::WebSocket {
        if route.route_response_selection_expression.is_some() {
            return Err(RestError::bad_request(
                "RouteResponseSelectionExpression is supported only for WEBSOCKET APIs",
            ));
        }
        return Ok(());
    }
    if route.route_key != "$connect" {
        if route.authorization_type != RouteAuthorization::None {
            return Err(RestError::bad_request(
                "Currently, authorization is restricted to the $connect route only",
            ));
        }
        if route.api_key_required {
            return Err(RestError::bad_request(
                "Currently, API keys are restricted to the $connect route only",
            ));
        }
    }
    if route.authorization_type == RouteAuthorization::Jwt {
        return Err(RestError::bad_request(
            "AuthorizationType JWT is not supported for WEBSOCKET APIs",
        ));
    }
    match route.route_response_selection_expression.as_deref() {
        None | Some("$default") => Ok(()),
        Some(other) => Err(RestError::bad_request(format!(
            "Invalid RouteResponseSelectionExpression {other}: only $default is supported"
        ))),
    }
}

pub(super) fn check_route_key(key: &str) -> RestResult<()> {
    if key == "$default" {
        return Ok(());
    }
    let valid = key.split_once(' ').is_some_and(|(method, path)| {
        matches!(
            method,
            "ANY" | "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS"
        ) && parse_route_path(path).is_some()
    });
    if valid {
        Ok(())
    } else {
        Err(RestError::bad_request(format!(
            "Unable to create Route with RouteKey '{key}'. The RouteKey must be '$default' or of the form 'METHOD /path', where METHOD is an HTTP method or ANY and path is a resource path."
        )))
    }
}

/// Checks what a route refers to, in AWS's order: its target, then its
/// authorization type (the request's `raw_authorization`, parsed here) and
/// the authorizer that type needs.
fn check_route_refs(
    api: &HttpApi,
    route: &Route,
    raw_authorization: Option<&str>,
) -> RestResult<RouteAuthorization> {
    if let Some(target) = &route.target {
        let id = target.strip_prefix("integrations/").unwrap_or("");
        if !api.integrations.contains_key(id) {
            return Err(RestError::bad_request(format!(
                "Invalid target: {target}. The target must be of the form integrations/{{integration-id}} with an existing integration."
            )));
        }
    }
    let authorization = match raw_authorization {
        Some(raw) => RouteAuthorization::from_wire(raw)?,
        None => route.authorization_type,
    };
    if let Some(expected) = authorization.authorizer_type() {
        let id = route.authorizer_id.as_deref().unwrap_or("");
        let authorizer = api.authorizers.get(id).ok_or_else(|| {
            RestError::bad_request(format!(
                "Unable to find authorizer with id '{id}' for route '{}'",
                route.route_key
            ))
        })?;
        if authorizer.authorizer_type != expected {
            return Err(RestError::bad_request(format!(
                "AuthorizationType {} does not match the authorizer's type {}",
                authorization.as_str(),
                authorizer.authorizer_type.as_str()
            )));
        }
    }
    Ok(authorization)
}

pub async fn create_route(
    on: ApiRequest<HttpApiService>,
    RestJson(input): RestJson<RouteInput>,
) -> RestResult<Response> {
    let route_key = input
        .route_key
        .ok_or_else(|| RestError::bad_request("RouteKey is required"))?;
    let route = Route {
        route_id: new_id(7),
        route_key,
        api_key_required: input.api_key_required.unwrap_or(false),
        authorization_scopes: input.authorization_scopes.unwrap_or_default(),
        authorization_type: RouteAuthorization::None,
        authorizer_id: input.authorizer_id,
        operation_name: input.operation_name,
        request_parameters: input.request_parameters.unwrap_or_default(),
        target: input.target,
        api_gateway_managed: false,
        route_response_selection_expression: input.route_response_selection_expression,
        model_selection_expression: input.model_selection_expression,
    };
    let raw_authorization = input.authorization_type;
    let (_, route) = mutate(&on.service, &on.caller, &on.api_id, move |api| {
        let mut route = route;
        check_key_for(api.protocol_type, &route.route_key)?;
        if api.routes.values().any(|r| r.route_key == route.route_key) {
            return Err(RestError::conflict(format!(
                "Route with key {} already exists for this API",
                route.route_key
            )));
        }
        route.authorization_type = check_route_refs(api, &route, raw_authorization.as_deref())?;
        check_websocket_route(api, &route)?;
        api.routes.insert(route.route_id.clone(), route.clone());
        Ok(route)
    })
    .await?;
    Ok(answer(StatusCode::CREATED, to_value(&route)))
}

pub async fn update_route(
    on: ChildRequest<HttpApiService>,
    RestJson(input): RestJson<RouteInput>,
) -> RestResult<Response> {
    let route_id = on.id.clone();
    children::update(on, move |api, mut route: Route| {
        if let Some(key) = input.route_key {
            check_key_for(api.protocol_type, &key)?;
            if api
                .routes
                .values()
                .any(|r| r.route_key == key && r.route_id != route_id)
            {
                return Err(RestError::conflict(format!(
                    "Route with key {key} already exists for this API"
                )));
            }
            route.route_key = key;
        }
        patch(&mut route.api_key_required, input.api_key_required);
        patch(&mut route.authorization_scopes, input.authorization_scopes);
        let authorizer_given = input.authorizer_id.is_some();
        patch(&mut route.authorizer_id, input.authorizer_id.map(Some));
        patch(&mut route.operation_name, input.operation_name.map(Some));
        patch(&mut route.request_parameters, input.request_parameters);
        patch(
            &mut route.route_response_selection_expression,
            input.route_response_selection_expression.map(Some),
        );
        patch(
            &mut route.model_selection_expression,
            input.model_selection_expression.map(Some),
        );
        if let Some(v) = input.target {
            route.target = (!v.is_empty()).then_some(v);
        }
        route.authorization_type =
            check_route_refs(api, &route, input.authorization_type.as_deref())?;
        // A route changed to NONE or AWS_IAM drops its authorizer unless
        // the same request names one.
        if input.authorization_type.is_some()
            && route.authorization_type.authorizer_type().is_none()
            && !authorizer_given
        {
            route.authorizer_id = None;
        }
        check_websocket_route(api, &route)?;
        Ok(route)
    })
    .await
}

impl Child for Route {
    const KIND: &'static str = "Route";

    fn remove_dependents(api: &mut HttpApi, id: &str) {
        api.route_responses.remove(id);
    }

    fn collection(api: &HttpApi) -> &BTreeMap<String, Self> {
        &api.routes
    }

    fn collection_mut(api: &mut HttpApi) -> &mut BTreeMap<String, Self> {
        &mut api.routes
    }

    fn to_wire(&self) -> Value {
        to_value(self)
    }
}

pub async fn delete_route_request_parameter(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, route_id, key)): Path<(String, String, String)>,
) -> RestResult<Response> {
    let missing = not_found("Route", &caller, &route_id);
    mutate(&svc, &caller, &api_id, move |api| {
        let route = api.routes.get_mut(&route_id).ok_or(missing)?;
        route.request_parameters.remove(&key);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
