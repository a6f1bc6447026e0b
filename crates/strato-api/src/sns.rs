//! SNS's unauthenticated URLs: the signing certificate (`SigningCertURL`)
//! and the `SubscribeURL`/`UnsubscribeURL` of its messages, which HTTP
//! endpoints fetch without credentials, as they do on AWS.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::ApiState;

/// `GET /strato/sns/{file}`: SNS's signing certificate, and the
/// SubscribeURL and UnsubscribeURL of its messages (no credentials, as an
/// HTTP endpoint fetches them).
pub async fn public(
    State(state): State<Arc<ApiState>>,
    Path(file): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    let (action, result) = match file.as_str() {
        "confirm" => (
            "ConfirmSubscription",
            state
                .sns
                .confirm_by_url(param("TopicArn"), param("Token"))
                .await,
        ),
        "unsubscribe" => (
            "Unsubscribe",
            state.sns.unsubscribe_by_url(param("SubscriptionArn")).await,
        ),
        _ => {
            return match state.sns.certificate(&file) {
                Some(pem) => {
                    let mut response = pem.into_response();
                    response.headers_mut().insert(
                        "content-type",
                        HeaderValue::from_static("application/x-pem-file"),
                    );
                    response
                }
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
    };
    crate::protocol::query_response(strato_sns::XML_NAMESPACE, action, result)
}
