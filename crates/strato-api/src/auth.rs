//! SigV4 authentication of every AWS request, and the caller it yields.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::{Mutex, RwLock};
use strato_model::{AccessKey, AwsError, ErrorCode};
use strato_sigv4::{Credential, CredentialLookup, RequestParts};
use strato_store::{Store, StoreError};

use crate::error::aws_error_response;
use crate::ApiState;

/// Who is calling: the account owning the signing key and the region the
/// request was signed for. Handlers take it as an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    pub region: String,
    pub access_key_id: String,
}

/// The access keys the server knows, held in memory for the verifier.
/// An unknown key triggers a reload from the store (at most once a second),
/// so keys created by `strato accounts` in another process become usable
/// without a restart.
pub struct AccountDirectory {
    keys: RwLock<HashMap<String, Credential>>,
    store: Arc<dyn Store>,
    last_reload: Mutex<Option<Instant>>,
}

const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

impl AccountDirectory {
    pub async fn load(store: Arc<dyn Store>) -> Result<AccountDirectory, StoreError> {
        let dir = AccountDirectory {
            keys: RwLock::new(HashMap::new()),
            store,
            last_reload: Mutex::new(None),
        };
        dir.reload().await?;
        Ok(dir)
    }

    /// Replaces the known keys with the store's (keys created or revoked by
    /// `strato accounts` in another process take effect here).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let keys = self.store.list_access_keys().await?;
        let map = keys
            .into_iter()
            .map(
                |AccessKey {
                     access_key_id,
                     secret_access_key,
                     account_id,
                 }| {
                    (
                        access_key_id,
                        Credential {
                            secret_access_key,
                            account_id,
                        },
                    )
                },
            )
            .collect();
        *self.keys.write() = map;
        Ok(())
    }

    /// Makes sure `access_key_id` is known if the store knows it.
    async fn ensure_known(&self, access_key_id: &str) {
        if self.keys.read().contains_key(access_key_id) {
            return;
        }
        {
            let mut last = self.last_reload.lock();
            if last.is_some_and(|t| t.elapsed() < RELOAD_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(err) = self.reload().await {
            tracing::warn!(error = %err, "could not reload access keys");
        }
    }

    /// Forgets every key of an account at once (the account was deleted).
    pub fn revoke_account(&self, account_id: &str) {
        self.keys.write().retain(|_, c| c.account_id != account_id);
    }

    pub fn insert(&self, key: &AccessKey) {
        self.keys.write().insert(
            key.access_key_id.clone(),
            Credential {
                secret_access_key: key.secret_access_key.clone(),
                account_id: key.account_id.clone(),
            },
        );
    }
}

impl CredentialLookup for AccountDirectory {
    fn lookup(&self, access_key_id: &str) -> Option<Credential> {
        self.keys.read().get(access_key_id).cloned()
    }
}

/// The largest body any operation accepts (CreateFunction's limit); larger
/// requests are refused before they are read.
pub const MAX_REQUEST_BODY: usize = strato_model::limits::MAX_CREATE_REQUEST_BYTES;

/// Middleware: buffers the body, verifies the signature, and hands the
/// handler a [`Caller`].
pub async fn authenticate(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return aws_error_response(&AwsError::new(
                ErrorCode::RequestEntityTooLargeException,
                format!("Request must be smaller than {MAX_REQUEST_BODY} bytes for the CreateFunction operation"),
            ))
        }
    };
    let request_parts = RequestParts {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
    };
    if let Some(scope) = strato_sigv4::credential_scope(&request_parts) {
        state.accounts.ensure_known(&scope.access_key_id).await;
    }
    let verified =
        match strato_sigv4::verify(&request_parts, &bytes, chrono::Utc::now(), &*state.accounts) {
            Ok(v) => v,
            Err(err) => {
                let code = sigv4_code(err.aws_error_code());
                return aws_error_response(&AwsError::new(code, err.message())).into_response();
            }
        };
    parts.extensions.insert(Caller {
        account_id: verified.account_id,
        region: verified.region,
        access_key_id: verified.access_key_id,
    });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn sigv4_code(code: &str) -> ErrorCode {
    match code {
        "UnrecognizedClientException" => ErrorCode::UnrecognizedClientException,
        "MissingAuthenticationTokenException" => ErrorCode::MissingAuthenticationTokenException,
        "IncompleteSignatureException" => ErrorCode::IncompleteSignatureException,
        "AccessDeniedException" => ErrorCode::AccessDeniedException,
        _ => ErrorCode::InvalidSignatureException,
    }
}
