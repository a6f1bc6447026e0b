//! Route responses of WebSocket routes (`/v2/apis/{api}/routes/{route}/routeresponses`):
//! a `$default` one makes a route two-way.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{answer, load, mutate, not_found, page, patch, to_value, PageQuery, Service};
use crate::extract::{Authenticated, RestJson};
use crate::http_api::model::{new_id, HttpApi, ProtocolType, RouteResponse};
use crate::rest_api::error::{RestError, RestResult};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RouteResponseInput {
    route_response_key: Option<String>,
    model_selection_expression: Option<String>,
    response_models: Option<BTreeMap<String, String>>,
    response_parameters: Option<BTreeMap<String, Value>>,
}

/// The route must exist on a WebSocket API; only `$default` keys exist.
fn check(api: &HttpApi, route_id: &str, key: Option<&str>) -> RestResult<()> {
    if api.protocol_type != ProtocolType::WebSocket {
        return Err(RestError::bad_request(
            "Route responses are supported only for WEBSOCKET APIs",
        ));
    }
    if !api.routes.contains_key(route_id) {
        return Err(RestError::not_found(format!(
            "Invalid Route identifier specified {}:{route_id}",
            api.account
        )));
    }
    match key {
        None | Some("$default") => Ok(()),
        Some(other) => Err(RestError::bad_request(format!(
            "Invalid RouteResponseKey {other}: only $default is supported for WEBSOCKET APIs"
        ))),
    }
}

pub async fn create_route_response(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, route_id)): Path<(String, String)>,
    RestJson(input): RestJson<RouteResponseInput>,
) -> RestResult<Response> {
    let key = input
        .route_response_key
        .ok_or_else(|| RestError::bad_request("RouteResponseKey is required"))?;
    let (_, response) = mutate(&svc, &caller, &api_id, move |api| {
        check(api, &route_id, Some(&key))?;
        let responses = api.route_responses.entry(route_id).or_default();
        if responses.values().any(|r| r.route_response_key == key) {
            return Err(RestError::conflict(format!(
                "RouteResponse with key {key} already exists for this route"
            )));
        }
        let response = RouteResponse {
            route_response_id: new_id(6),
            route_response_key: key,
            model_selection_expression: input.model_selection_expression,
            response_models: input.response_models.unwrap_or_default(),
            response_parameters: input.response_parameters.unwrap_or_default(),
        };
        responses.insert(response.route_response_id.clone(), response.clone());
        Ok(response)
    })
    .await?;
    Ok(answer(StatusCode::CREATED, to_value(&response)))
}

pub async fn get_route_responses(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, route_id)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> RestResult<Response> {
    let api = load(&svc, &caller, &api_id).await?;
    check(&api, &route_id, None)?;
    let items = api
        .route_responses
        .get(&route_id)
        .map(|r| r.iter().map(|(id, r)| (id.clone(), to_value(r))).collect())
        .unwrap_or_default();
    Ok(answer(StatusCode::OK, page(items, &query)?))
}

pub async fn get_route_response(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, route_id, id)): Path<(String, String, String)>,
) -> RestResult<Response> {
    let api = load(&svc, &caller, &api_id).await?;
    check(&api, &route_id, None)?;
    let response = api
        .route_responses
        .get(&route_id)
        .and_then(|r| r.get(&id))
        .ok_or_else(|| not_found("RouteResponse", &caller, &id))?;
    Ok(answer(StatusCode::OK, to_value(response)))
}

pub async fn update_route_response(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, route_id, id)): Path<(String, String, String)>,
    RestJson(input): RestJson<RouteResponseInput>,
) -> RestResult<Response> {
    let missing = not_found("RouteResponse", &caller, &id);
    let (_, response) = mutate(&svc, &caller, &api_id, move |api| {
        check(api, &route_id, input.route_response_key.as_deref())?;
        let response = api
            .route_responses
            .get_mut(&route_id)
            .and_then(|r| r.get_mut(&id))
            .ok_or(missing)?;
        patch(&mut response.route_response_key, input.route_response_key);
        patch(
            &mut response.model_selection_expression,
            input.model_selection_expression.map(Some),
        );
        patch(&mut response.response_models, input.response_models);
        patch(&mut response.response_parameters, input.response_parameters);
        Ok(response.clone())
    })
    .await?;
    Ok(answer(StatusCode::OK, to_value(&response)))
}

pub async fn delete_route_response(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, route_id, id)): Path<(String, String, String)>,
) -> RestResult<Response> {
    let missing = not_found("RouteResponse", &caller, &id);
    mutate(&svc, &caller, &api_id, move |api| {
        check(api, &route_id, None)?;
        let responses = api
            .route_responses
            .get_mut(&route_id)
            .ok_or(missing.clone())?;
        responses.remove(&id).ok_or(missing)?;
        if responses.is_empty() {
            api.route_responses.remove(&route_id);
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
