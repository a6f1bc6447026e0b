//! Authorizers: Lambda (REQUEST) and JWT.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{answer, load, mutate, not_found, page, to_value, PageQuery, Service};
use crate::extract::{Authenticated, RestJson};
use crate::http_api::model::{new_id, Authorizer, AuthorizerType, JwtConfiguration};
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

fn check_authorizer(a: &Authorizer) -> RestResult<()> {
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
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path(api_id): Path<String>,
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
            .or(is_request.then_some(false)),
        identity_source: input.identity_source.unwrap_or_default(),
        jwt_configuration: input.jwt_configuration,
        authorizer_credentials_arn: input.authorizer_credentials_arn,
        authorizer_type,
    };
    check_authorizer(&authorizer)?;
    let (_, authorizer) = mutate(&svc, &caller, &api_id, move |api| {
        api.authorizers
            .insert(authorizer.authorizer_id.clone(), authorizer.clone());
        Ok(authorizer)
    })
    .await?;
    Ok(answer(StatusCode::CREATED, to_value(&authorizer)))
}

pub async fn get_authorizers(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path(api_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> RestResult<Response> {
    let api = load(&svc, &caller, &api_id).await?;
    let items = api
        .authorizers
        .iter()
        .map(|(id, a)| (id.clone(), to_value(a)))
        .collect();
    Ok(answer(StatusCode::OK, page(items, &query)?))
}

pub async fn get_authorizer(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, authorizer_id)): Path<(String, String)>,
) -> RestResult<Response> {
    let api = load(&svc, &caller, &api_id).await?;
    let a = api
        .authorizers
        .get(&authorizer_id)
        .ok_or_else(|| not_found("Authorizer", &caller, &authorizer_id))?;
    Ok(answer(StatusCode::OK, to_value(a)))
}

pub async fn update_authorizer(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, authorizer_id)): Path<(String, String)>,
    RestJson(input): RestJson<AuthorizerInput>,
) -> RestResult<Response> {
    let missing = not_found("Authorizer", &caller, &authorizer_id);
    let (_, a) = mutate(&svc, &caller, &api_id, move |api| {
        let mut a = api
            .authorizers
            .get(&authorizer_id)
            .cloned()
            .ok_or(missing)?;
        if let Some(v) = input.name {
            a.name = v;
        }
        if let Some(v) = input.authorizer_type {
            a.authorizer_type = AuthorizerType::from_wire(&v)?;
        }
        if let Some(v) = input.authorizer_uri {
            a.authorizer_uri = Some(v);
        }
        if let Some(v) = input.authorizer_payload_format_version {
            a.authorizer_payload_format_version = Some(v);
        }
        if let Some(v) = input.authorizer_result_ttl_in_seconds {
            a.authorizer_result_ttl_in_seconds = Some(v);
        }
        if let Some(v) = input.enable_simple_responses {
            a.enable_simple_responses = Some(v);
        }
        if let Some(v) = input.identity_source {
            a.identity_source = v;
        }
        if let Some(v) = input.jwt_configuration {
            a.jwt_configuration = Some(v);
        }
        if let Some(v) = input.authorizer_credentials_arn {
            a.authorizer_credentials_arn = Some(v);
        }
        check_authorizer(&a)?;
        api.authorizers.insert(authorizer_id, a.clone());
        Ok(a)
    })
    .await?;
    Ok(answer(StatusCode::OK, to_value(&a)))
}

pub async fn delete_authorizer(
    State(svc): Service,
    Authenticated(caller): Authenticated,
    Path((api_id, authorizer_id)): Path<(String, String)>,
) -> RestResult<Response> {
    let missing = not_found("Authorizer", &caller, &authorizer_id);
    mutate(&svc, &caller, &api_id, move |api| {
        if api
            .routes
            .values()
            .any(|r| r.authorizer_id.as_deref() == Some(authorizer_id.as_str()))
        {
            return Err(RestError::conflict(format!(
                "Authorizer {authorizer_id} is in use by a route and cannot be deleted"
            )));
        }
        api.authorizers
            .remove(&authorizer_id)
            .map(|_| ())
            .ok_or(missing)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
