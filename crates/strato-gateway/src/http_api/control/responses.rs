//! The responses of WebSocket APIs, kept per parent in the API document:
//! route responses (`/v2/apis/{api}/routes/{route}/routeresponses`; a
//! `$default` one makes a route two-way) and integration responses
//! (`/v2/apis/{api}/integrations/{integration}/integrationresponses`; they
//! shape what a non-proxy integration sends back). Both kinds are listed,
//! read and deleted by the same generic handlers ([`Response`]).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::{answer, load, mutate, not_found, page, patch, to_value, PageQuery, Service};
use crate::extract::{Authenticated, RestJson};
use crate::http_api::model::{new_id, HttpApi, IntegrationResponse, ProtocolType, RouteResponse};
use crate::rest_api::error::{RestError, RestResult};

/// One kind of response, kept by parent id, then by its own id.
pub trait Response: Clone + serde::Serialize + Send + Sync + 'static {
    /// `Route` / `Integration`: the parent's word in AWS's messages.
    const PARENT: &'static str;
    /// `RouteResponse` / `IntegrationResponse`.
    const KIND: &'static str;

    fn by_parent(api: &HttpApi) -> &BTreeMap<String, BTreeMap<String, Self>>;

    fn by_parent_mut(api: &mut HttpApi) -> &mut BTreeMap<String, BTreeMap<String, Self>>;

    fn parent_exists(api: &HttpApi, parent_id: &str) -> bool;

    fn key(&self) -> &str;

    fn set_id(&mut self, id: String);

    /// Refuses a key this kind does not accept.
    fn check_key(key: &str) -> RestResult<()>;
}

impl Response for RouteResponse {
    const PARENT: &'static str = "Route";
    const KIND: &'static str = "RouteResponse";

    fn by_parent(api: &HttpApi) -> &BTreeMap<String, BTreeMap<String, Self>> {
        &api.route_responses
    }

    fn by_parent_mut(api: &mut HttpApi) -> &mut BTreeMap<String, BTreeMap<String, Self>> {
        &mut api.route_responses
    }

    fn parent_exists(api: &HttpApi, parent_id: &str) -> bool {
        api.routes.contains_key(parent_id)
    }

    fn key(&self) -> &str {
        &self.route_response_key
    }

    fn set_id(&mut self, id: String) {
        self.route_response_id = id;
    }

    fn check_key(key: &str) -> RestResult<()> {
        if key == "$default" {
            return Ok(());
        }
        Err(RestError::bad_request(format!(
            "Invalid RouteResponseKey {key}: only $default is supported for WEBSOCKET APIs"
        )))
    }
}

impl Response for IntegrationResponse {
    const PARENT: &'static str = "Integration";
    const KIND: &'static str = "IntegrationResponse";

    fn by_parent(api: &HttpApi) -> &BTreeMap<String, BTreeMap<String, Self>> {
        &api.integration_responses
    }

    fn by_parent_mut(api: &mut HttpApi) -> &mut BTreeMap<String, BTreeMap<String, Self>> {
        &mut api.integration_responses
    }

    fn parent_exists(api: &HttpApi, parent_id: &str) -> bool {
        api.integrations.contains_key(parent_id)
    }

    fn key(&self) -> &str {
        &self.integration_response_key
    }

    fn set_id(&mut self, id: String) {
        self.integration_response_id = id;
    }

    /// `$default`, or a status-code pattern between slashes (`/2\d\d/`).
    fn check_key(key: &str) -> RestResult<()> {
        let pattern = key
            .strip_prefix('/')
            .and_then(|k| k.strip_suffix('/'))
            .filter(|p| !p.is_empty());
        if key == "$default" || pattern.is_some() {
            return Ok(());
        }
        Err(RestError::bad_request(format!(
            "Invalid IntegrationResponseKey {key}: must be $default or a /pattern/"
        )))
    }
}

/// The parent must exist on a WebSocket API; `key`, when given, must be
/// one the kind accepts.
fn check<R: Response>(api: &HttpApi, parent_id: &str, key: Option<&str>) -> RestResult<()> {
    if api.protocol_type != ProtocolType::WebSocket {
        return Err(RestError::bad_request(format!(
            "{}s are supported only for WEBSOCKET APIs",
            R::KIND
        )));
    }
    if !R::parent_exists(api, parent_id) {
        return Err(RestError::not_found(format!(
            "Invalid {} identifier specified {}:{parent_id}",
            R::PARENT,
            api.account
        )));
    }
    key.map_or(Ok(()), R::check_key)
}

/// Adds `response` under `parent_id` unless its key is taken; 201.
async fn create<R: Response>(
    svc: Service,
    caller: strato_model::Caller,
    api_id: String,
    parent_id: String,
    mut response: R,
) -> RestResult<HttpResponse> {
    let State(svc) = svc;
    let (_, response) = mutate(&svc, &caller, &api_id, move |api| {
        check::<R>(api, &parent_id, Some(response.key()))?;
        let responses = R::by_parent_mut(api).entry(parent_id).or_default();
        if responses.values().any(|r| r.key() == response.key()) {
            return Err(RestError::conflict(format!(
                "{} with key {} already exists for this {}",
                R::KIND,
                response.key(),
                R::PARENT.to_ascii_lowercase()
            )));
        }
        let id = new_id(6);
        response.set_id(id.clone());
        responses.insert(id, response.clone());
        Ok(response)
    })
    .await?;
    Ok(answer(StatusCode::CREATED, to_value(&response)))
}

/// Changes a response with `change` (which may change its key); 200.
async fn update<R: Response>(
    svc: Service,
    caller: strato_model::Caller,
    (api_id, parent_id, id): (String, String, String),
    change: impl FnOnce(&mut R) + Send + 'static,
) -> RestResult<HttpResponse> {
    let State(svc) = svc;
    let missing = not_found(R::KIND, &caller, &id);
    let (_, response) = mutate(&svc, &caller, &api_id, move |api| {
        check::<R>(api, &parent_id, None)?;
        let response = R::by_parent_mut(api)
            .get_mut(&parent_id)
            .and_then(|r| r.get_mut(&id))
            .ok_or(missing)?;
        change(response);
        R::check_key(response.key())?;
        Ok(response.clone())
    })
    .await?;
    Ok(answer(StatusCode::OK, to_value(&response)))
}

/// `GET .../{parent}/{responses}`: a page of them.
pub async fn list<R: Response>(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, parent_id)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> RestResult<HttpResponse> {
    let api = load(&svc, &caller, &api_id).await?;
    check::<R>(&api, &parent_id, None)?;
    let items = R::by_parent(&api)
        .get(&parent_id)
        .map(|r| r.iter().map(|(id, r)| (id.clone(), to_value(r))).collect())
        .unwrap_or_default();
    Ok(answer(StatusCode::OK, page(items, &query)?))
}

/// `GET .../{parent}/{responses}/{id}`.
pub async fn get<R: Response>(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, parent_id, id)): Path<(String, String, String)>,
) -> RestResult<HttpResponse> {
    let api = load(&svc, &caller, &api_id).await?;
    check::<R>(&api, &parent_id, None)?;
    let response = R::by_parent(&api)
        .get(&parent_id)
        .and_then(|r| r.get(&id))
        .ok_or_else(|| not_found(R::KIND, &caller, &id))?;
    Ok(answer(StatusCode::OK, to_value(response)))
}

/// `DELETE .../{parent}/{responses}/{id}`: 204.
pub async fn delete<R: Response>(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, parent_id, id)): Path<(String, String, String)>,
) -> RestResult<HttpResponse> {
    let missing = not_found(R::KIND, &caller, &id);
    mutate(&svc, &caller, &api_id, move |api| {
        check::<R>(api, &parent_id, None)?;
        let all = R::by_parent_mut(api);
        let responses = all.get_mut(&parent_id).ok_or(missing.clone())?;
        responses.remove(&id).ok_or(missing)?;
        if responses.is_empty() {
            all.remove(&parent_id);
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RouteResponseInput {
    route_response_key: Option<String>,
    model_selection_expression: Option<String>,
    response_models: Option<BTreeMap<String, String>>,
    response_parameters: Option<BTreeMap<String, Value>>,
}

pub async fn create_route_response(
    svc: Service,
    Authenticated(caller): Authenticated,
    Path((api_id, route_id)): Path<(String, String)>,
    RestJson(input): RestJson<RouteResponseInput>,
) -> RestResult<HttpResponse> {
    let key = input
        .route_response_key
        .ok_or_else(|| RestError::bad_request("RouteResponseKey is required"))?;
    let response = RouteResponse {
        route_response_id: String::new(),
        route_response_key: key,
        model_selection_expression: input.model_selection_expression,
        response_models: input.response_models.unwrap_or_default(),
        response_parameters: input.response_parameters.unwrap_or_default(),
    };
    create(svc, caller, api_id, route_id, response).await
}

pub async fn update_route_response(
    svc: Service,
    Authenticated(caller): Authenticated,
    Path(ids): Path<(String, String, String)>,
    RestJson(input): RestJson<RouteResponseInput>,
) -> RestResult<HttpResponse> {
    update(svc, caller, ids, move |response: &mut RouteResponse| {
        patch(&mut response.route_response_key, input.route_response_key);
        patch(
            &mut response.model_selection_expression,
            input.model_selection_expression.map(Some),
        );
        patch(&mut response.response_models, input.response_models);
        patch(&mut response.response_parameters, input.response_parameters);
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationResponseInput {
    integration_response_key: Option<String>,
    content_handling_strategy: Option<String>,
    response_parameters: Option<BTreeMap<String, String>>,
    response_templates: Option<BTreeMap<String, String>>,
    template_selection_expression: Option<String>,
}

fn check_content_handling(strategy: Option<&str>) -> RestResult<()> {
    match strategy {
        None | Some("CONVERT_TO_BINARY" | "CONVERT_TO_TEXT") => Ok(()),
        Some(other) => Err(RestError::bad_request(format!(
            "Invalid ContentHandlingStrategy {other}; must be CONVERT_TO_BINARY or CONVERT_TO_TEXT"
        ))),
    }
}

pub async fn create_integration_response(
    svc: Service,
    Authenticated(caller): Authenticated,
    Path((api_id, integration_id)): Path<(String, String)>,
    RestJson(input): RestJson<IntegrationResponseInput>,
) -> RestResult<HttpResponse> {
    let key = input
        .integration_response_key
        .ok_or_else(|| RestError::bad_request("IntegrationResponseKey is required"))?;
    check_content_handling(input.content_handling_strategy.as_deref())?;
    let response = IntegrationResponse {
        integration_response_id: String::new(),
        integration_response_key: key,
        content_handling_strategy: input.content_handling_strategy,
        response_parameters: input.response_parameters.unwrap_or_default(),
        response_templates: input.response_templates.unwrap_or_default(),
        template_selection_expression: input.template_selection_expression,
    };
    create(svc, caller, api_id, integration_id, response).await
}

pub async fn update_integration_response(
    svc: Service,
    Authenticated(caller): Authenticated,
    Path(ids): Path<(String, String, String)>,
    RestJson(input): RestJson<IntegrationResponseInput>,
) -> RestResult<HttpResponse> {
    check_content_handling(input.content_handling_strategy.as_deref())?;
    update(
        svc,
        caller,
        ids,
        move |response: &mut IntegrationResponse| {
            patch(
                &mut response.integration_response_key,
                input.integration_response_key,
            );
            patch(
                &mut response.content_handling_strategy,
                input.content_handling_strategy.map(Some),
            );
            patch(&mut response.response_parameters, input.response_parameters);
            patch(&mut response.response_templates, input.response_templates);
            patch(
                &mut response.template_selection_expression,
                input.template_selection_expression.map(Some),
            );
        },
    )
    .await
}
