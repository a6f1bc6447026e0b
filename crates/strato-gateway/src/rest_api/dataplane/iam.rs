//! SigV4 authentication for `AWS_IAM` methods.

use axum::http::StatusCode;
use chrono::Utc;

use super::RequestContext;
use crate::authorizer::{may_invoke, EXECUTE_API_INVOKE};
use crate::rest_api::live::RouteMatch;
use crate::rest_api::RestApiService;

/// The signer of a request to an `AWS_IAM` method.
#[derive(Debug, Clone)]
pub(super) struct IamCaller {
    pub(super) access_key_id: String,
    pub(super) account_id: String,
}

/// SigV4 (service `execute-api`, the API's region) as AWS checks it for
/// `AWS_IAM` methods, then the signer's permission to
/// `execute-api:Invoke` the method's ARN: an account's root may invoke its
/// own APIs; an IAM user or role session only as its policies allow (under
/// `--iam enforce`; with IAM off every key of the account may). Another
/// account's signer is refused: REST API resource policies, the only way
/// AWS lets one in, are not served.
pub(super) fn authenticate_iam(
    service: &RestApiService,
    context: &RequestContext<'_>,
    parts: &http::request::Parts,
    body: &[u8],
    route: &RouteMatch<'_>,
) -> Result<IamCaller, (StatusCode, String, &'static str)> {
    let request_parts = strato_sigv4::RequestParts {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
    };
    let verified = strato_sigv4::verify(&request_parts, body, Utc::now(), &*service.credentials)
        .map_err(|e| (e.http_status(), e.message(), e.aws_error_code()))?;
    if verified.service != "execute-api" {
        return Err((
            StatusCode::FORBIDDEN,
            "Credential should be scoped to correct service: 'execute-api'. ".to_string(),
            "InvalidSignatureException",
        ));
    }
    if verified.region != context.api.region {
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                verified.region
            ),
            "InvalidSignatureException",
        ));
    }
    let resource = format!(
        "arn:aws:execute-api:{}:{}:{}/{}/{}{}",
        context.api.region,
        context.api.account,
        context.api.id,
        context.stage.name,
        parts.method.as_str(),
        route.resource.path,
    );
    if verified.account_id != context.api.account {
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "User: arn:aws:iam::{}:root is not authorized to perform: {EXECUTE_API_INVOKE} on resource: {resource}",
                verified.account_id
            ),
            "AccessDeniedException",
        ));
    }
    may_invoke(&service.iam, &verified.access_key_id, &resource).map_err(|denied| {
        (
            StatusCode::FORBIDDEN,
            denied.message,
            "AccessDeniedException",
        )
    })?;
    Ok(IamCaller {
        access_key_id: verified.access_key_id,
        account_id: verified.account_id,
    })
}
