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

pub use strato_model::Caller;

/// The access keys the server knows, held in memory for the verifier.
/// An unknown key triggers a reload from the store (at most once a second),
/// so keys created by `strato accounts` in another process become usable
/// without a restart.
pub struct AccountDirectory {
    keys: RwLock<HashMap<String, Credential>>,
    store: Arc<dyn Store>,
    last_reload: Mutex<Option<Instant>>,
    /// Credentials handed to functions (as a role's would be on AWS), so the
    /// AWS SDKs inside them can call Strato as their account. Derived from a
    /// server secret, never stored; issued keys are remembered here.
    function_keys: FunctionKeys,
    issued: RwLock<HashMap<String, Credential>>,
    /// (access key id, secret) by account, role and function, so an
    /// invocation derives nothing and takes no lock shared by every account.
    issued_by_account: dashmap::DashMap<String, (String, String)>,
    /// IAM users' keys and STS sessions; function keys act as a session of
    /// the function's execution role there.
    iam: Arc<strato_iam::Iam>,
}

/// Derives an account's function credentials from a server secret.
pub struct FunctionKeys {
    secret: Vec<u8>,
}

impl FunctionKeys {
    pub fn new(secret: &[u8]) -> FunctionKeys {
        FunctionKeys {
            secret: secret.to_vec(),
        }
    }

    fn derive(&self, purpose: &str, account: &str) -> Vec<u8> {
        use hmac::Mac;
        match hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.secret) {
            Ok(mut mac) => {
                mac.update(purpose.as_bytes());
                mac.update(b"\0");
                mac.update(account.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            // HMAC takes keys of any length.
            Err(_) => Vec::new(),
        }
    }

    /// (access key id, secret access key) for a function of `account`
    /// running as `role` (the key names both, so IAM can tell whose it is).
    fn credentials(&self, account: &str, role: &str, function: &str) -> (String, String) {
        use base64::Engine as _;
        let subject = format!("{account}\0{role}\0{function}");
        let id = hex::encode(self.derive("function-key-id", &subject)).to_uppercase();
        let secret = base64::engine::general_purpose::STANDARD
            .encode(self.derive("function-key-secret", &subject));
        (format!("ASIA{}", &id[..16]), secret[..40].to_string())
    }
}

const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

impl AccountDirectory {
    pub async fn load(
        store: Arc<dyn Store>,
        function_keys: FunctionKeys,
        iam: Arc<strato_iam::Iam>,
    ) -> Result<AccountDirectory, StoreError> {
        let dir = AccountDirectory {
            keys: RwLock::new(HashMap::new()),
            store,
            last_reload: Mutex::new(None),
            function_keys,
            issued: RwLock::new(HashMap::new()),
            issued_by_account: dashmap::DashMap::new(),
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

    /// The credentials function `function` of `account` runs with (as
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`): a session of its
    /// execution role `role`, limited to the role's policies when IAM is
    /// enforced.
    pub fn function_credentials(
        &self,
        account: &str,
        role: &str,
        function: &str,
    ) -> (String, String) {
        let subject = format!("{account}\0{role}\0{function}");
        if let Some(issued) = self.issued_by_account.get(&subject) {
            return issued.clone();
        }
        let (id, secret) = self.function_keys.credentials(account, role, function);
        self.iam.register_role_key(&id, role, function);
        self.issued.write().insert(
            id.clone(),
            Credential {
                secret_access_key: secret.clone(),
                account_id: account.to_string(),
            },
        );
        self.issued_by_account
            .insert(subject, (id.clone(), secret.clone()));
        (id, secret)
    }
}

impl CredentialLookup for AccountDirectory {
    fn lookup(&self, access_key_id: &str) -> Option<Credential> {
        if let Some(found) = self.keys.read().get(access_key_id) {
            return Some(found.clone());
        }
        let issued = match self.issued.read().get(access_key_id).cloned() {
            Some(issued) => issued,
            None => {
                let entry = self.iam.lookup_key(access_key_id)?;
                Credential {
                    secret_access_key: entry.secret,
                    account_id: entry.account,
                }
            }
        };
        // A function key (an IAM key, a session) stops working with its
        // account.
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
    if let Some(refused) = check_session(&state, &verified) {
        return refused;
    }
    let caller = Caller {
        account_id: verified.account_id.clone(),
        region: verified.region.clone(),
        access_key_id: verified.access_key_id.clone(),
    };
    if let Some(refused) = crate::authorize::check(&state, &caller, &verified, &parts, &bytes) {
        return refused;
    }
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// STS session keys need their token, and stop at their expiry.
fn check_session(state: &ApiState, verified: &strato_sigv4::VerifiedRequest) -> Option<Response> {
    let refusal = state
        .iam
        .check_session(&verified.access_key_id, verified.session_token.as_deref())
        .err()?;
    let error = match refusal {
        strato_iam::SessionRefusal::InvalidToken => AwsError::new(
            ErrorCode::UnrecognizedClientException,
            "The security token included in the request is invalid.",
        ),
        strato_iam::SessionRefusal::Expired => AwsError::new(
            ErrorCode::ExpiredTokenException,
            "The security token included in the request is expired",
        ),
    };
    Some(aws_error_response(&error))
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
