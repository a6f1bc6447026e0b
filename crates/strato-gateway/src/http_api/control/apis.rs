//! APIs: create (with quick create), get, list, update, delete, and the
//! API's CORS configuration.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strato_store::StoreExt;

use super::routes::check_route_key;
use super::{
    answer, api_not_found, auto_deploy, doc_key, load, mutate, page, patch, to_value, PageQuery,
    Service,
};
use crate::extract::{ApiRequest, Authenticated, RestJson};
use crate::http_api::model::{
    new_id, timestamp_now, Cors, HttpApi, Integration, IntegrationType, ProtocolType, Route,
    RouteSettings, Stage, HTTP_API_KIND,
};
use crate::http_api::HttpApiService;
use crate::invoker::function_arn_of_integration_uri;
use crate::rest_api::error::{RestError, RestResult};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApiInput {
    name: Option<String>,
    protocol_type: Option<String>,
    description: Option<String>,
    version: Option<String>,
    route_selection_expression: Option<String>,
    api_key_selection_expression: Option<String>,
    cors_configuration: Option<Cors>,
    disable_execute_api_endpoint: Option<bool>,
    disable_schema_validation: Option<bool>,
    ip_address_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    target: Option<String>,
    route_key: Option<String>,
    credentials_arn: Option<String>,
}

/// What AWS refuses on a WebSocket API: no route selection expression,
/// CORS, or quick create's target and route key.
fn check_websocket_input(input: &ApiInput) -> RestResult<()> {
    match input.route_selection_expression.as_deref() {
        None | Some("") => {
            return Err(RestError::bad_request(
                "RouteSelectionExpression is required for WEBSOCKET APIs",
            ))
        }
        Some(expression) => check_route_selection_expression(expression)?,
    }
    if input.cors_configuration.is_some() {
        return Err(RestError::bad_request(
            "CorsConfiguration is not supported for WEBSOCKET APIs",
        ));
    }
    if input.target.is_some() || input.route_key.is_some() {
        return Err(RestError::bad_request(
            "Quick create (Target, RouteKey) is not supported for WEBSOCKET APIs",
        ));
    }
    Ok(())
}

/// A WebSocket route selection expression: `$request.body.{path}` (a
/// JSON path into the message) or the constant `${request.body.x}` form.
fn check_route_selection_expression(expression: &str) -> RestResult<()> {
    if crate::websocket::SelectionExpression::parse(expression).is_some() {
        Ok(())
    } else {
        Err(RestError::bad_request(format!(
            "Invalid RouteSelectionExpression {expression}: it must select from $request.body"
        )))
    }
}

/// `$request.header.x-api-key` or `$context.authorizer.usageIdentifierKey`,
/// the two AWS accepts.
fn check_api_key_selection_expression(expression: &str) -> RestResult<()> {
    match expression {
        "$request.header.x-api-key" | "$context.authorizer.usageIdentifierKey" => Ok(()),
        other => Err(RestError::bad_request(format!(
            "Invalid ApiKeySelectionExpression {other}: must be $request.header.x-api-key or $context.authorizer.usageIdentifierKey"
        ))),
    }
}

fn check_cors(cors: &Cors) -> RestResult<()> {
    if cors.allow_credentials == Some(true)
        && cors
            .allow_origins
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o == "*"))
    {
        return Err(RestError::bad_request(
            "allow-credentials is not supported when allow-origins is '*'",
        ));
    }
    Ok(())
}

/// The integration quick create makes for a target: a function ARN becomes
/// AWS_PROXY (payload 2.0), an URL HTTP_PROXY.
fn quick_integration(target: &str) -> RestResult<Integration> {
    let lambda = function_arn_of_integration_uri(target).is_some();
    let http = target.starts_with("http://") || target.starts_with("https://");
    if !lambda && !http {
        return Err(RestError::bad_request(format!(
            "Invalid target {target}: must be a Lambda function ARN or an HTTP URL"
        )));
    }
    Ok(Integration {
        integration_id: new_id(7),
        integration_type: if lambda {
            IntegrationType::AwsProxy
        } else {
            IntegrationType::HttpProxy
        },
        integration_uri: Some(target.to_string()),
        integration_method: Some(if lambda { "POST" } else { "ANY" }.into()),
        payload_format_version: Some(if lambda { "2.0" } else { "1.0" }.into()),
        timeout_in_millis: 30_000,
        connection_type: "INTERNET".into(),
        description: None,
        credentials_arn: None,
        request_parameters: BTreeMap::new(),
        response_parameters: BTreeMap::new(),
        api_gateway_managed: true,
        request_templates: BTreeMap::new(),
        template_selection_expression: None,
        passthrough_behavior: None,
        content_handling_strategy: None,
    })
}

pub async fn create_api(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    RestJson(input): RestJson<ApiInput>,
) -> RestResult<Response> {
    let name = input
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| RestError::bad_request("Name is required"))?;
    let protocol_type = match input.protocol_type.as_deref() {
        Some("HTTP") => ProtocolType::Http,
        Some("WEBSOCKET") => ProtocolType::WebSocket,
        Some(other) => {
            return Err(RestError::bad_request(format!(
                "Invalid protocol type {other}; must be HTTP or WEBSOCKET"
            )))
        }
        None => return Err(RestError::bad_request("ProtocolType is required")),
    };
    if let Some(cors) = &input.cors_configuration {
        check_cors(cors)?;
    }
    if protocol_type == ProtocolType::WebSocket {
        check_websocket_input(&input)?;
    }
    if let Some(expression) = &input.api_key_selection_expression {
        check_api_key_selection_expression(expression)?;
    }
    let now = timestamp_now();
    let mut api = HttpApi {
        api_id: new_id(10),
        account: caller.account_id.clone(),
        region: caller.region.clone(),
        name,
        protocol_type,
        description: input.description,
        version: input.version,
        route_selection_expression: input
            .route_selection_expression
            .unwrap_or_else(|| "$request.method $request.path".into()),
        api_key_selection_expression: input
            .api_key_selection_expression
            .unwrap_or_else(|| "$request.header.x-api-key".into()),
        cors: input.cors_configuration,
        disable_execute_api_endpoint: input.disable_execute_api_endpoint.unwrap_or(false),
        disable_schema_validation: input.disable_schema_validation.unwrap_or(false),
        ip_address_type: input.ip_address_type.unwrap_or_else(|| "ipv4".into()),
        created_date: now.clone(),
        tags: input.tags.unwrap_or_default(),
        routes: BTreeMap::new(),
        integrations: BTreeMap::new(),
        authorizers: BTreeMap::new(),
        deployments: BTreeMap::new(),
        stages: BTreeMap::new(),
        route_responses: BTreeMap::new(),
        integration_responses: BTreeMap::new(),
    };
    if let Some(target) = &input.target {
        let mut integration = quick_integration(target)?;
        integration.credentials_arn = input.credentials_arn.clone();
        let route_key = input.route_key.unwrap_or_else(|| "$default".into());
        check_route_key(&route_key)?;
        let route = Route {
            target: Some(format!("integrations/{}", integration.integration_id)),
            api_gateway_managed: true,
            ..Route::new(new_id(7), route_key)
        };
        api.integrations
            .insert(integration.integration_id.clone(), integration);
        api.routes.insert(route.route_id.clone(), route);
        api.stages.insert(
            "$default".into(),
            Stage {
                stage_name: "$default".into(),
                auto_deploy: true,
                deployment_id: None,
                description: None,
                created_date: now.clone(),
                last_updated_date: now,
                default_route_settings: RouteSettings::default(),
                route_settings: BTreeMap::new(),
                stage_variables: BTreeMap::new(),
                access_log_settings: None,
                tags: BTreeMap::new(),
                api_gateway_managed: true,
                last_deployment_status_message: None,
            },
        );
        auto_deploy(&mut api);
    }
    svc.store
        .insert_document(&doc_key(&caller, &api.api_id), &to_value(&api))
        .await?;
    svc.live.publish(&api);
    Ok(answer(
        StatusCode::CREATED,
        api.to_wire(&svc.public_urls.for_request(&headers)),
    ))
}

pub async fn get_api(on: ApiRequest<HttpApiService>, headers: HeaderMap) -> RestResult<Response> {
    let api = load(&on.service, &on.caller, &on.api_id).await?;
    Ok(answer(
        StatusCode::OK,
        api.to_wire(&on.service.public_urls.for_request(&headers)),
    ))
}

pub async fn get_apis(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let base = svc.public_urls.for_request(&headers);
    let apis: Vec<(String, HttpApi)> = svc
        .store
        .list_typed(&caller.account_id, &caller.region, HTTP_API_KIND, "")
        .await?;
    let items = apis
        .into_iter()
        .map(|(_, api)| (api.api_id.clone(), api.to_wire(&base)))
        .collect();
    Ok(answer(StatusCode::OK, page(items, &query)?))
}

pub async fn update_api(
    on: ApiRequest<HttpApiService>,
    headers: HeaderMap,
    RestJson(input): RestJson<ApiInput>,
) -> RestResult<Response> {
    if let Some(cors) = &input.cors_configuration {
        check_cors(cors)?;
    }
    if let Some(expression) = &input.api_key_selection_expression {
        check_api_key_selection_expression(expression)?;
    }
    let (api, ()) = mutate(&on.service, &on.caller, &on.api_id, move |api| {
        if api.protocol_type == ProtocolType::WebSocket {
            if let Some(expression) = &input.route_selection_expression {
                check_route_selection_expression(expression)?;
            }
            if input.cors_configuration.is_some() {
                return Err(RestError::bad_request(
                    "CorsConfiguration is not supported for WEBSOCKET APIs",
                ));
            }
        }
        patch(&mut api.name, input.name);
        patch(&mut api.description, input.description.map(Some));
        patch(&mut api.version, input.version.map(Some));
        patch(
            &mut api.route_selection_expression,
            input.route_selection_expression,
        );
        patch(
            &mut api.api_key_selection_expression,
            input.api_key_selection_expression,
        );
        patch(&mut api.cors, input.cors_configuration.map(Some));
        patch(
            &mut api.disable_execute_api_endpoint,
            input.disable_execute_api_endpoint,
        );
        patch(
            &mut api.disable_schema_validation,
            input.disable_schema_validation,
        );
        patch(&mut api.ip_address_type, input.ip_address_type);
        if let Some(target) = input.target {
            // Quick update: the managed integration points at the new target.
            let managed = api
                .integrations
                .values_mut()
                .find(|i| i.api_gateway_managed)
                .ok_or_else(|| {
                    RestError::bad_request("Target can only be updated on a quick-created API")
                })?;
            let fresh = quick_integration(&target)?;
            managed.integration_type = fresh.integration_type;
            managed.integration_uri = fresh.integration_uri;
            managed.integration_method = fresh.integration_method;
            managed.payload_format_version = fresh.payload_format_version;
        }
        Ok(())
    })
    .await?;
    Ok(answer(
        StatusCode::OK,
        api.to_wire(&on.service.public_urls.for_request(&headers)),
    ))
}

pub async fn delete_api(on: ApiRequest<HttpApiService>) -> RestResult<Response> {
    if !on
        .service
        .store
        .delete_document(&doc_key(&on.caller, &on.api_id))
        .await?
    {
        return Err(api_not_found(&on.caller, &on.api_id));
    }
    on.service.live.remove(&on.api_id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn delete_cors_configuration(on: ApiRequest<HttpApiService>) -> RestResult<Response> {
    mutate(&on.service, &on.caller, &on.api_id, move |api| {
        api.cors = None;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
