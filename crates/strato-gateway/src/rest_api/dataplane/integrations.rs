//! The AWS_PROXY (Lambda, payload 1.0) and HTTP_PROXY integrations.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderValue, Method as HttpMethod};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;

use super::{
    gateway_answer, header_text, IntegrationCall, BAD_GATEWAY, INTERNAL_ERROR, THROTTLED, TIMED_OUT,
};
use crate::http_backend::{
    fill_template, substitute_stage_variables, BackendError, BackendRequest,
};
use crate::invoker::{
    function_arn_of_integration_uri, GatewayInvocation, InvokeAction, InvokeFailure,
    InvokePrincipal, APIGATEWAY_PRINCIPAL,
};
use crate::proxy::{self, EventBody, ProxyResponse};
use crate::rest_api::live::LiveApi;
use crate::rest_api::model::Integration;
use crate::rest_api::RestApiService;

/// Whether `content_type` is one of the API's binary media types
/// (`image/png`, `image/*`, `*/*`).
fn is_binary(api: &LiveApi, content_type: Option<&str>) -> bool {
    let Some(essence) = proxy::media_type_essence(content_type) else {
        return false;
    };
    api.binary_media_types.iter().any(|t| {
        let t = t.to_ascii_lowercase();
        if t == "*/*" {
            return true;
        }
        match t.strip_suffix("/*") {
            Some(major) => essence.split('/').next() == Some(major),
            None => t == essence,
        }
    })
}

fn proxy_answer(answer: ProxyResponse) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = answer.status;
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        headers.append(name, value);
    }
    if !headers.contains_key(http::header::CONTENT_TYPE) {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}

/// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{resource path}`.
fn source_arn(call: &IntegrationCall<'_>) -> String {
    format!(
        "arn:aws:execute-api:{}:{}:{}/{}/{}/{}",
        call.api.region,
        call.api.account,
        call.api.id,
        call.stage.name,
        call.method.as_str(),
        call.route.resource.path.trim_start_matches('/'),
    )
}

/// The Lambda proxy (payload 1.0) event of `call`; its `requestContext` is
/// also the `$context` of the request's mapping templates.
pub(super) fn v1_event(call: &IntegrationCall<'_>) -> serde_json::Value {
    let content_type = header_text(call.headers, &http::header::CONTENT_TYPE);
    let body = EventBody::new(&call.body, is_binary(call.api, content_type));
    let domain_name = call.client.domain_name.as_str();
    let context_path = format!("/{}", call.stage_path.trim_start_matches('/'));
    let mut event = proxy::v1::event(&proxy::v1::V1EventInput {
        request: proxy::EventRequest {
            method: call.method.as_str(),
            headers: call.headers,
            raw_query: call.raw_query,
            path_parameters: &call.route.path_parameters,
            stage_variables: &call.stage.variables,
            body: &body,
            account_id: &call.api.account,
            api_id: &call.api.id,
            stage: &call.stage.name,
            request_id: &call.ids.request_id,
            domain_name,
            source_ip: &call.client.source_ip,
            received_at: call.received_at,
            authorizer: None,
        },
        version: None,
        resource: &call.route.resource.path,
        path: call.resource_raw_path,
        context_path: &context_path,
        header_case: call.header_case,
        resource_id: &call.route.resource.id,
        extended_request_id: &call.ids.extended_id,
        api_key: call.api_key.map(|(value, _)| value),
        api_key_id: call.api_key.map(|(_, id)| id),
    });
    if let (Some(caller), Some(identity)) = (
        call.iam_caller,
        event
            .get_mut("requestContext")
            .and_then(|c| c.get_mut("identity"))
            .and_then(serde_json::Value::as_object_mut),
    ) {
        identity.insert("accessKey".into(), caller.access_key_id.clone().into());
        identity.insert("accountId".into(), caller.account_id.clone().into());
        identity.insert("caller".into(), caller.account_id.clone().into());
        identity.insert("user".into(), caller.account_id.clone().into());
        identity.insert(
            "userArn".into(),
            format!("arn:aws:iam::{}:root", caller.account_id).into(),
        );
    }
    event
}

/// API Gateway invoking `function_arn` for `call`'s method.
pub(super) fn invocation(
    call: &IntegrationCall<'_>,
    function_arn: String,
    payload: Bytes,
) -> GatewayInvocation {
    GatewayInvocation {
        function_arn,
        principal: InvokePrincipal::Service(APIGATEWAY_PRINCIPAL.to_string()),
        action: InvokeAction::InvokeFunction,
        source_arn: Some(source_arn(call)),
        source_account: Some(call.api.account.clone()),
        payload,
    }
}

pub(super) async fn lambda_proxy(
    service: &RestApiService,
    integration: &Integration,
    call: &IntegrationCall<'_>,
) -> Response {
    let uri = substitute_stage_variables(
        integration.uri.as_deref().unwrap_or_default(),
        &call.stage.variables,
    );
    let Some(function_arn) = function_arn_of_integration_uri(&uri) else {
        tracing::warn!(api_id = %call.api.id, uri, "AWS_PROXY integration URI names no function");
        return gateway_answer(&INTERNAL_ERROR, call.ids);
    };
    let invocation = invocation(call, function_arn, Bytes::from(v1_event(call).to_string()));
    let timeout = std::time::Duration::from_millis(integration.timeout_in_millis);
    let outcome = match tokio::time::timeout(timeout, service.invoker.invoke(invocation)).await {
        Err(_) => return gateway_answer(&TIMED_OUT, call.ids),
        Ok(outcome) => outcome,
    };
    match outcome {
        Ok(outcome) if outcome.function_error.is_none() => {
            match proxy::v1::rest_response(&outcome.payload) {
                Ok(mut answer) => {
                    // A base64 answer reaches the client decoded only when
                    // the API declares the type binary; otherwise as text.
                    let answer_type = answer
                        .headers
                        .iter()
                        .find(|(n, _)| n == http::header::CONTENT_TYPE)
                        .and_then(|(_, v)| v.to_str().ok());
                    let accept = header_text(call.headers, &http::header::ACCEPT);
                    let declared_base64 =
                        serde_json::from_slice::<serde_json::Value>(&outcome.payload)
                            .ok()
                            .and_then(|v| v.get("isBase64Encoded").and_then(|b| b.as_bool()))
                            .unwrap_or(false);
                    if declared_base64
                        && !is_binary(call.api, answer_type)
                        && !is_binary(call.api, accept)
                    {
                        answer.body = Bytes::from(
                            base64::engine::general_purpose::STANDARD.encode(&answer.body),
                        );
                    }
                    proxy_answer(answer)
                }
                Err(err) => {
                    tracing::info!(api_id = %call.api.id, error = %err, "malformed Lambda proxy response");
                    gateway_answer(&BAD_GATEWAY, call.ids)
                }
            }
        }
        Ok(_) => gateway_answer(&BAD_GATEWAY, call.ids),
        Err(InvokeFailure::Throttled(_)) => gateway_answer(&THROTTLED, call.ids),
        Err(InvokeFailure::NotReady(_)) | Err(InvokeFailure::Service(_)) => {
            gateway_answer(&BAD_GATEWAY, call.ids)
        }
        Err(failure) => {
            tracing::info!(api_id = %call.api.id, error = %failure, "Lambda integration refused");
            gateway_answer(&INTERNAL_ERROR, call.ids)
        }
    }
}

/// The value of a path placeholder in an HTTP integration URI: mapped by
/// `integration.request.path.NAME = method.request.path.OTHER`, else the
/// method's path parameter of the same name.
pub(super) fn path_placeholder(
    integration: &Integration,
    params: &BTreeMap<String, String>,
    name: &str,
) -> Option<String> {
    let name = name.strip_suffix('+').unwrap_or(name);
    let mapped = integration
        .request_parameters
        .get(&format!("integration.request.path.{name}"))
        .and_then(|source| source.strip_prefix("method.request.path."));
    params.get(mapped.unwrap_or(name)).cloned()
}

pub(super) async fn http_proxy(
    service: &RestApiService,
    integration: &Integration,
    call: &IntegrationCall<'_>,
) -> Response {
    let template = substitute_stage_variables(
        integration.uri.as_deref().unwrap_or_default(),
        &call.stage.variables,
    );
    let mut url = fill_template(&template, &|name| {
        path_placeholder(integration, &call.route.path_parameters, name)
    });
    if !call.raw_query.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(call.raw_query);
    }
    let method = match integration.http_method.as_deref() {
        None | Some("ANY") => call.method.clone(),
        Some(other) => {
            HttpMethod::from_bytes(other.as_bytes()).unwrap_or_else(|_| call.method.clone())
        }
    };
    let mut headers = call.headers.clone();
    if let Ok(value) = HeaderValue::from_str(&call.client.source_ip) {
        headers.append("x-forwarded-for", value);
    }
    let request = BackendRequest {
        method,
        url,
        headers,
        body: call.body.clone(),
        timeout: std::time::Duration::from_millis(integration.timeout_in_millis),
    };
    match service.http.forward(request).await {
        Ok(answer) => {
            let mut response = Response::new(Body::from(answer.body));
            *response.status_mut() = answer.status;
            for (name, value) in answer.headers {
                response.headers_mut().append(name, value);
            }
            response
        }
        Err(BackendError::Timeout(_)) => gateway_answer(&TIMED_OUT, call.ids),
        Err(err) => {
            tracing::info!(api_id = %call.api.id, error = %err, "HTTP integration failed");
            gateway_answer(&INTERNAL_ERROR, call.ids)
        }
    }
}
