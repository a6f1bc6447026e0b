//! GetFunctionRecursionConfig and PutFunctionRecursionConfig: whether an
//! invocation found to be part of a recursive loop is stopped. Detection
//! itself follows the trace header's lineage
//! ([`strato_model::recursion::next_hop`]), in Invoke and the asynchronous
//! dispatcher.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use strato_model::error::ValidationErrors;
use strato_model::{ErrorCode, RecursiveLoop};

use super::{load, update_function, whole_function_ref, ResourceRequest};
use crate::error::ApiResult;
use crate::wire::{json as json_response, AwsJson};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct PutRequest {
    recursive_loop: Option<String>,
}

/// The `RecursiveLoop` of a Put body, validated as AWS validates it.
fn requested(req: &PutRequest) -> ApiResult<RecursiveLoop> {
    let mut errors = ValidationErrors::new();
    let parsed = match req.recursive_loop.as_deref() {
        None => {
            errors.push_raw("null", "recursiveLoop", "Member must not be null");
            None
        }
        Some(value) => {
            let parsed = RecursiveLoop::parse(value);
            if parsed.is_none() {
                errors.push(
                    value,
                    "recursiveLoop",
                    "Member must satisfy enum value set: [Terminate, Allow]",
                );
            }
            parsed
        }
    };
    errors.into_result(ErrorCode::ValidationException)?;
    Ok(parsed.unwrap_or_default())
}

pub async fn get(on: ResourceRequest) -> ApiResult<Response> {
    let r = whole_function_ref(&on.caller, &on.name, "GetFunctionRecursionConfig")?;
    let record = load(&on.state, &on.caller, &r).await?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "RecursiveLoop": record.recursive_loop.as_str() }),
    ))
}

pub async fn put(on: ResourceRequest, AwsJson(req): AwsJson<PutRequest>) -> ApiResult<Response> {
    let setting = requested(&req)?;
    let r = whole_function_ref(&on.caller, &on.name, "PutFunctionRecursionConfig")?;
    let record = update_function(
        &on.state,
        &on.caller,
        &r,
        Box::new(move |record| {
            record.recursive_loop = setting;
            Ok(())
        }),
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "RecursiveLoop": record.recursive_loop.as_str() }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(value: Option<&str>) -> Option<String> {
        requested(&PutRequest {
            recursive_loop: value.map(str::to_string),
        })
        .err()
        .map(|e| e.0.message.to_string())
    }

    #[test]
    fn put_validates_as_aws() {
        assert_eq!(
            message(Some("InvalidValue")).as_deref(),
            Some("1 validation error detected: Value 'InvalidValue' at 'recursiveLoop' failed to satisfy constraint: Member must satisfy enum value set: [Terminate, Allow]")
        );
        assert_eq!(
            message(None).as_deref(),
            Some("1 validation error detected: Value null at 'recursiveLoop' failed to satisfy constraint: Member must not be null")
        );
        assert_eq!(message(Some("Allow")), None);
    }
}
