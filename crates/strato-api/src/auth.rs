//! SigV4 authentication of every AWS request, and the caller it yields.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::{Mutex, RwLock};
use strato_model::{AccessKey, AwsError, ErrorCode};
use strato_sigv4::{Credential, CredentialLookup, RequestParts};
use strato_store::{Store, StoreError};

use crate::error::aws_error_response;
use crate::ApiState;

pub use strato_model::Caller;

/// The access keys the server knows, held in memory for the verifier.
/// An unknown key triggers a reload from the store (at most once a second),
/// so keys created by `strato accounts` in another process become usable
/// without a restart.
pub struct AccountDirectory {
    keys: RwLock<HashMap<String, Credential>>,
    store: Arc<dyn Store>,
    last_reload: Mutex<Option<Instant>>,
    /// IAM users' keys, STS sessions and function instances' sessions of
    /// their execution roles.
    iam: Arc<strato_iam::Iam>,
}

/// Function instances' credentials: STS-style sessions of the execution
/// role, minted by IAM at each cold start.
pub struct FunctionCredentials {
    iam: Arc<strato_iam::Iam>,
}

impl FunctionCredentials {
    pub fn new(iam: Arc<strato_iam::Iam>) -> FunctionCredentials {
        FunctionCredentials { iam }
    }
}

impl strato_engine::CredentialIssuer for FunctionCredentials {
    fn issue(
        &self,
        account: &str,
        role: &str,
        function: &str,
        lifetime: Duration,
    ) -> strato_engine::InstanceCredentials {
        let seconds = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
        let session = self
            .iam
            .issue_function_session(account, role, function, seconds);
        strato_engine::InstanceCredentials {
            access_key_id: session.access_key_id,
            secret_access_key: session.secret_access_key,
            session_token: session.session_token,
        }
    }

    fn role_allows(&self, u: &strato_engine::RoleUse<'_>) -> bool {
        !self.iam.enforcing()
            || self
                .iam
                .service_role_allows(u.service, u.role, u.session, u.action, u.resource)
    }
}

const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

impl AccountDirectory {
    pub async fn load(
        store: Arc<dyn Store>,
        iam: Arc<strato_iam::Iam>,
    ) -> Result<AccountDirectory, StoreError> {
        let dir = AccountDirectory {
            keys: RwLock::new(HashMap::new()),
            store,
            last_reload: Mutex::new(None),
            iam,
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
    pub(crate) async fn ensure_known(&self, access_key_id: &str) {
        if self.keys.read().contains_key(access_key_id)
            || self.iam.lookup_key(access_key_id).is_some()
        {
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
}

impl CredentialLookup for AccountDirectory {
    fn lookup(&self, access_key_id: &str) -> Option<Credential> {
        if let Some(found) = self.keys.read().get(access_key_id) {
            return Some(found.clone());
        }
        let entry = self.iam.lookup_key(access_key_id)?;
        let issued = Credential {
            secret_access_key: entry.secret,
            account_id: entry.account,
        };
        // An IAM key (a session, a function's session) stops working with
        // its account.
        self.keys
            .read()
            .values()
            .any(|c| c.account_id == issued.account_id)
            .then_some(issued)
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
    let scope = strato_sigv4::credential_scope(&request_parts);
    if let Some(scope) = &scope {
        state.accounts.ensure_known(&scope.access_key_id).await;
    }
    let service = scope.as_ref().map(|s| s.service.as_str());
    let verified =
        match strato_sigv4::verify(&request_parts, &bytes, chrono::Utc::now(), &*state.accounts) {
            Ok(v) => v,
            Err(err) => {
                let code = sigv4_code(err.aws_error_code());
                return crate::authorize::refuse_credentials(&parts, service, code, &err.message());
            }
        };
    if let Some(refused) = check_session(&state, &verified, &parts, service) {
        return refused;
    }
    let mut caller = Caller {
        account_id: verified.account_id.clone(),
        region: verified.region.clone(),
        access_key_id: verified.access_key_id.clone(),
    };
    match crate::authorize::check(&state, &caller, &verified, &parts, &bytes).await {
        Ok(admitted) => {
            if let Some(owner) = admitted.act_in {
                caller.account_id = owner;
            }
        }
        Err(refused) => return refused,
    }
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// STS session keys need their token, and stop at their expiry.
fn check_session(
    state: &ApiState,
    verified: &strato_sigv4::VerifiedRequest,
    parts: &axum::http::request::Parts,
    service: Option<&str>,
) -> Option<Response> {
    let refusal = state
        .iam
        .check_session(&verified.access_key_id, verified.session_token.as_deref())
        .err()?;
    let (code, message) = match refusal {
        strato_iam::SessionRefusal::InvalidToken => (
            ErrorCode::UnrecognizedClientException,
            "The security token included in the request is invalid.",
        ),
        strato_iam::SessionRefusal::Expired => (
            ErrorCode::ExpiredTokenException,
            "The security token included in the request is expired",
        ),
    };
    Some(crate::authorize::refuse_credentials(
        parts, service, code, message,
    ))
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
