//! Authorizers: Lambda (REQUEST) and JWT.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::children::{self, Child};
use super::{answer, mutate, patch, to_value};
use crate::extract::{ApiRequest, ChildRequest, RestJson};
use crate::http_api::model::{
    new_id, Authorizer, AuthorizerType, HttpApi, JwtConfiguration, ProtocolType,
};
use crate::http_api::HttpApiService;
use crate::invoker::function_arn_of_integration_uri;
use crate::rest_api::error::{RestError, RestResult};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerInput {
    name: Option<String>,
    authorizer_type: Option<String>,
    authorizer_uri: Option<String>,
    authorizer_payload_format_version: Option<String>,
    authorizer_result_ttl_in_seconds: Option<i64>,
    enable_simple_responses: Option<bool>,
    identity_source: Option<Vec<String>>,
    jwt_configuration: Option<JwtConfiguration>,
    authorizer_credentials_arn: Option<String>,
    identity_validation_expression: Option<String>,
}

/// A WebSocket API's authorizers: Lambda `REQUEST` ones without payload
/// versions or simple responses, whose identity sources are
/// `route.request.header.X`, `route.request.querystring.X`,
/// `stageVariables.X` or `context.X`.
fn check_websocket_authorizer(a: &Authorizer) -> RestResult<()> {
    if a.authorizer_type != AuthorizerType::Request {
        return Err(RestError::bad_request(
            "Only REQUEST authorizers are supported for WEBSOCKET APIs",
        ));
    }
    if function_arn_of_integration_uri(a.authorizer_uri.as_deref().unwrap_or("")).is_none() {
        return Err(RestError::bad_request(format!(
            "Invalid authorizer URI {}: must be a Lambda function invocation URI",
            a.authorizer_uri.as_deref().unwrap_or("")
        )));
    }
    if a.authorizer_payload_format_version.is_some() || a.enable_simple_responses.is_some() {
        return Err(RestError::bad_request(
            "AuthorizerPayloadFormatVersion and EnableSimpleResponses are not supported for WEBSOCKET APIs",
        ));
    }
    for source in &a.identity_source {
        if crate::websocket::identity_source_kind(source).is_none() {
            return Err(RestError::bad_request(format!(
                "Invalid identity source {source}: use route.request.header.NAME, route.request.querystring.NAME, stageVariables.NAME or context.NAME"
            )));
        }
    }
    Ok(())
}

fn check_authorizer(a: &Authorizer, protocol: ProtocolType) -> RestResult<()> {
    if protocol == ProtocolType::WebSocket {
        return check_websocket_authorizer(a);
    }
    match a.authorizer_type {
        AuthorizerType::Request => {
            let uri = a.authorizer_uri.as_deref().unwrap_or("");
            if function_arn_of_integration_uri(uri).is_none() {
                return Err(RestError::bad_request(format!(
                    "Invalid authorizer URI {uri}: must be a Lambda function invocation URI"
                )));
            }
            match a.authorizer_payload_format_version.as_deref() {
                Some("1.0") | Some("2.0") => {}
                _ => {
                    return Err(RestError::bad_request(
                        "AuthorizerPayloadFormatVersion must be 1.0 or 2.0 for REQUEST authorizers",
                    ))
                }
            }
            if a.enable_simple_responses == Some(true)
                && a.authorizer_payload_format_version.as_deref() != Some("2.0")
            {
                return Err(RestError::bad_request(
                    "Simple responses are only supported with payload format version 2.0",
                ));
            }
        }
        AuthorizerType::Jwt => {
            let config = a.jwt_configuration.as_ref().ok_or_else(|| {
                RestError::bad_request("JwtConfiguration is required for JWT authorizers")
            })?;
            if config.issuer.as_deref().is_none_or(str::is_empty) {
                return Err(RestError::bad_request(
                    "JwtConfiguration.Issuer is required",
                ));
            }
            if config.audience.is_empty() {
                return Err(RestError::bad_request(
                    "JwtConfiguration.Audience is required",
                ));
            }
        }
    }
    for source in &a.identity_source {
        if crate::http_api::dataplane::identity_value_kind(source).is_none() {
            return Err(RestError::bad_request(format!(
                "Invalid identity source {source}"
            )));
        }
    }
    Ok(())
}

pub async fn create_authorizer(
    on: ApiRequest<HttpApiService>,
    RestJson(input): RestJson<AuthorizerInput>,
) -> RestResult<Response> {
    if input.identity_validation_expression.is_some() {
        return Err(RestError::bad_request(
            "IdentityValidationExpression is not supported for HTTP APIs",
        ));
    }
    let authorizer_type = input
        .authorizer_type
        .ok_or_else(|| RestError::bad_request("AuthorizerType is required"))?;
    let is_request = authorizer_type == "REQUEST";
    let name = input
        .name
        .ok_or_else(|| RestError::bad_request("Name is required"))?;
    let authorizer_type = AuthorizerType::from_wire(&authorizer_type)?;
    let (_, authorizer) = mutate(&on.service, &on.caller, &on.api_id, move |api| {
        let websocket = api.protocol_type == ProtocolType::WebSocket;
        let authorizer = Authorizer {
            authorizer_id: new_id(6),
            name,
            authorizer_uri: input.authorizer_uri,
            authorizer_payload_format_version: input.authorizer_payload_format_version,
            authorizer_result_ttl_in_seconds: input
                .authorizer_result_ttl_in_seconds
                .or(is_request.then_some(0)),
            enable_simple_responses: input
                .enable_simple_responses
                .or((is_request && !websocket).then_some(false)),
            identity_source: input.identity_source.unwrap_or_default(),
            jwt_configuration: input.jwt_configuration,
            authorizer_credentials_arn: input.authorizer_credentials_arn,
            authorizer_type,
        };
        check_authorizer(&authorizer, api.protocol_type)?;
        api.authorizers
            .insert(authorizer.authorizer_id.clone(), authorizer.clone());
        Ok(authorizer)
    })
    .await?;
    Ok(answer(StatusCode::CREATED, to_value(&authorizer)))
}

pub async fn update_authorizer(
    on: ChildRequest<HttpApiService>,
    RestJson(input): RestJson<AuthorizerInput>,
) -> RestResult<Response> {
    children::update(on, move |api, mut a: Authorizer| {
        patch(&mut a.name, input.name);
        if let Some(v) = input.authorizer_type {
            a.authorizer_type = AuthorizerType::from_wire(&v)?;
        }
        patch(&mut a.authorizer_uri, input.authorizer_uri.map(Some));
        patch(
            &mut a.authorizer_payload_format_version,
            input.authorizer_payload_format_version.map(Some),
        );
        patch(
            &mut a.authorizer_result_ttl_in_seconds,
            input.authorizer_result_ttl_in_seconds.map(Some),
        );
        patch(
            &mut a.enable_simple_responses,
            input.enable_simple_responses.map(Some),
        );
        patch(&mut a.identity_source, input.identity_source);
        patch(&mut a.jwt_configuration, input.jwt_configuration.map(Some));
        patch(
            &mut a.authorizer_credentials_arn,
            input.authorizer_credentials_arn.map(Some),
        );
        check_authorizer(&a, api.protocol_type)?;
        Ok(a)
    })
    .await
}

impl Child for Authorizer {
    const KIND: &'static str = "Authorizer";

    fn collection(api: &HttpApi) -> &BTreeMap<String, Self> {
        &api.authorizers
    }

    fn collection_mut(api: &mut HttpApi) -> &mut BTreeMap<String, Self> {
        &mut api.authorizers
    }

    fn to_wire(&self) -> Value {
        to_value(self)
    }

    fn check_unreferenced(api: &HttpApi, id: &str) -> RestResult<()> {
        if api
            .routes
            .values()
            .any(|r| r.authorizer_id.as_deref() == Some(id))
        {
            return Err(RestError::conflict(format!(
                "Authorizer {id} is in use by a route and cannot be deleted"
            )));
        }
        Ok(())
    }
}
