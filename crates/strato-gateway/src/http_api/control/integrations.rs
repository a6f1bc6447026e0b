//! Integrations: AWS_PROXY (Lambda) and HTTP_PROXY; WebSocket APIs also
//! HTTP and MOCK.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::children::{self, Child};
use super::{answer, mutate, patch, to_value};
use crate::extract::{ApiRequest, ChildRequest, RestJson};
use crate::http_api::model::{new_id, HttpApi, Integration, IntegrationType, ProtocolType};
use crate::http_api::HttpApiService;
use crate::invoker::function_arn_of_integration_uri;
use crate::rest_api::error::{RestError, RestResult};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationInput {
    integration_type: Option<String>,
    integration_uri: Option<String>,
    integration_method: Option<String>,
    payload_format_version: Option<String>,
    timeout_in_millis: Option<i64>,
    connection_type: Option<String>,
    description: Option<String>,
    credentials_arn: Option<String>,
    request_parameters: Option<BTreeMap<String, String>>,
    response_parameters: Option<BTreeMap<String, BTreeMap<String, String>>>,
    integration_subtype: Option<String>,
    request_templates: Option<BTreeMap<String, String>>,
    template_selection_expression: Option<String>,
    passthrough_behavior: Option<String>,
    content_handling_strategy: Option<String>,
}

fn check_integration(i: &Integration, protocol: ProtocolType) -> RestResult<()> {
    if protocol == ProtocolType::Http
        && (!i.request_templates.is_empty()
            || i.template_selection_expression.is_some()
            || i.passthrough_behavior.is_some()
            || i.content_handling_strategy.is_some())
    {
        return Err(RestError::bad_request(
            "RequestTemplates, TemplateSelectionExpression, PassthroughBehavior and ContentHandlingStrategy are supported only for WEBSOCKET APIs",
        ));
    }
    if let Some(p) = &i.passthrough_behavior {
        if !matches!(p.as_str(), "WHEN_NO_MATCH" | "NEVER" | "WHEN_NO_TEMPLATES") {
            return Err(RestError::bad_request(format!(
                "Invalid PassthroughBehavior {p}; must be WHEN_NO_MATCH, NEVER or WHEN_NO_TEMPLATES"
            )));
        }
    }
    if let Some(c) = &i.content_handling_strategy {
        if !matches!(c.as_str(), "CONVERT_TO_BINARY" | "CONVERT_TO_TEXT") {
            return Err(RestError::bad_request(format!(
                "Invalid ContentHandlingStrategy {c}; must be CONVERT_TO_BINARY or CONVERT_TO_TEXT"
            )));
        }
    }
    match i.integration_type {
        IntegrationType::AwsProxy => {
            let uri = i.integration_uri.as_deref().unwrap_or("");
            let resolved_later = uri.contains("${stageVariables.");
            if function_arn_of_integration_uri(uri).is_none() && !resolved_later {
                return Err(RestError::bad_request(format!(
                    "Invalid integration URI specified: {uri}. The URI must be a Lambda function ARN."
                )));
            }
            match (i.payload_format_version.as_deref(), protocol) {
                (Some("1.0"), _) | (Some("2.0"), ProtocolType::Http) => {}
                (_, ProtocolType::WebSocket) => {
                    return Err(RestError::bad_request(
                        "PayloadFormatVersion must be 1.0 for WEBSOCKET APIs",
                    ))
                }
                (_, ProtocolType::Http) => {
                    return Err(RestError::bad_request(
                        "PayloadFormatVersion must be 1.0 or 2.0 for AWS_PROXY integrations",
                    ))
                }
            }
        }
        IntegrationType::Mock => {
            if i.integration_uri.is_some() {
                return Err(RestError::bad_request(
                    "IntegrationUri must not be specified for MOCK integrations",
                ));
            }
        }
        IntegrationType::HttpProxy | IntegrationType::Http => {
            let uri = i.integration_uri.as_deref().unwrap_or("");
            if !(uri.starts_with("http://")
                || uri.starts_with("https://")
                || uri.starts_with("${stageVariables."))
            {
                return Err(RestError::bad_request(format!(
                    "Invalid integration URI specified: {uri}. The URI must be an HTTP URL."
                )));
            }
            if i.integration_type == IntegrationType::HttpProxy
                && i.payload_format_version.as_deref() != Some("1.0")
            {
                return Err(RestError::bad_request(
                    "PayloadFormatVersion must be 1.0 for HTTP_PROXY integrations",
                ));
            }
        }
    }
    if !(50..=30_000).contains(&i.timeout_in_millis) {
        return Err(RestError::bad_request(
            "TimeoutInMillis must be between 50 and 30000",
        ));
    }
    for key in i.request_parameters.keys() {
        let valid = match protocol {
            ProtocolType::Http => crate::http_api::dataplane::parse_parameter_target(key).is_some(),
            ProtocolType::WebSocket => crate::websocket::is_request_parameter_target(key),
        };
        if !valid {
            return Err(RestError::bad_request(format!(
                "Invalid mapping expression specified: {key}"
            )));
        }
    }
    Ok(())
}

pub async fn create_integration(
    on: ApiRequest<HttpApiService>,
    RestJson(input): RestJson<IntegrationInput>,
) -> RestResult<Response> {
    if input.integration_subtype.is_some() {
        return Err(RestError::bad_request(
            "AWS service integrations (IntegrationSubtype) are not supported by Strato",
        ));
    }
    let raw_type = input
        .integration_type
        .ok_or_else(|| RestError::bad_request("IntegrationType is required"))?;
    let (_, integration) = mutate(&on.service, &on.caller, &on.api_id, move |api| {
        let protocol = api.protocol_type;
        let integration_type = IntegrationType::from_wire(&raw_type, protocol)?;
        let payload_format_version = input.payload_format_version.or_else(|| {
            let websocket = protocol == ProtocolType::WebSocket;
            let proxy = integration_type == IntegrationType::HttpProxy;
            let lambda = integration_type == IntegrationType::AwsProxy;
            (proxy || (websocket && lambda)).then(|| "1.0".to_string())
        });
        let integration = Integration {
            integration_id: new_id(7),
            integration_method: input.integration_method.or_else(|| {
                (integration_type == IntegrationType::AwsProxy).then(|| "POST".to_string())
            }),
            integration_type,
            integration_uri: input.integration_uri,
            payload_format_version,
            timeout_in_millis: input.timeout_in_millis.unwrap_or(30_000),
            connection_type: input.connection_type.unwrap_or_else(|| "INTERNET".into()),
            description: input.description,
            credentials_arn: input.credentials_arn,
            request_parameters: input.request_parameters.unwrap_or_default(),
            response_parameters: input.response_parameters.unwrap_or_default(),
            api_gateway_managed: false,
            request_templates: input.request_templates.unwrap_or_default(),
            template_selection_expression: input.template_selection_expression,
            passthrough_behavior: input.passthrough_behavior,
            content_handling_strategy: input.content_handling_strategy,
        };
        check_integration(&integration, protocol)?;
        api.integrations
            .insert(integration.integration_id.clone(), integration.clone());
        Ok(integration)
    })
    .await?;
    Ok(answer(StatusCode::CREATED, to_value(&integration)))
}

pub async fn update_integration(
    on: ChildRequest<HttpApiService>,
    RestJson(input): RestJson<IntegrationInput>,
) -> RestResult<Response> {
    children::update(on, move |api, mut i: Integration| {
        let protocol = api.protocol_type;
        if let Some(v) = input.integration_type {
            i.integration_type = IntegrationType::from_wire(&v, protocol)?;
        }
        patch(&mut i.integration_uri, input.integration_uri.map(Some));
        patch(
            &mut i.integration_method,
            input.integration_method.map(Some),
        );
        patch(
            &mut i.payload_format_version,
            input.payload_format_version.map(Some),
        );
        patch(&mut i.timeout_in_millis, input.timeout_in_millis);
        patch(&mut i.connection_type, input.connection_type);
        patch(&mut i.description, input.description.map(Some));
        patch(&mut i.credentials_arn, input.credentials_arn.map(Some));
        patch(&mut i.request_parameters, input.request_parameters);
        patch(&mut i.response_parameters, input.response_parameters);
        patch(&mut i.request_templates, input.request_templates);
        patch(
            &mut i.template_selection_expression,
            input.template_selection_expression.map(Some),
        );
        patch(
            &mut i.passthrough_behavior,
            input.passthrough_behavior.map(Some),
        );
        patch(
            &mut i.content_handling_strategy,
            input.content_handling_strategy.map(Some),
        );
        check_integration(&i, protocol)?;
        Ok(i)
    })
    .await
}

impl Child for Integration {
    const KIND: &'static str = "Integration";

    fn remove_dependents(api: &mut HttpApi, id: &str) {
        api.integration_responses.remove(id);
    }

    fn collection(api: &HttpApi) -> &BTreeMap<String, Self> {
        &api.integrations
    }

    fn collection_mut(api: &mut HttpApi) -> &mut BTreeMap<String, Self> {
        &mut api.integrations
    }

    fn to_wire(&self) -> Value {
        to_value(self)
    }

    fn check_unreferenced(api: &HttpApi, id: &str) -> RestResult<()> {
        let target = format!("integrations/{id}");
        if api
            .routes
            .values()
            .any(|r| r.target.as_deref() == Some(target.as_str()))
        {
            return Err(RestError::conflict(format!(
                "Integration {id} is in use by a route and cannot be deleted"
            )));
        }
        Ok(())
    }
}
