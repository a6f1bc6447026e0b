//! Amazon S3 on the `s3s` crate: `s3s` speaks the wire protocol (routing,
//! XML, SigV4 including streaming `aws-chunked` bodies, trailers and
//! presigned URLs) and calls the [`s3s::S3`] trait, which [`ObjectStore`]
//! implements with metadata in SQLite ([`meta`]) and content on disk
//! ([`blob`]). SigV4 is verified by `s3s` with Strato's own accounts and
//! keys ([`StratoAuth`]): Strato's front-end verifier buffers bodies, which
//! an object store must never do, so S3 requests bypass it.

mod access;
pub mod blob;
pub mod checksum;
pub mod cors;
mod md5;
pub mod meta;
pub mod names;
pub mod notify;
mod ops;
pub mod source;

use std::path::Path;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use s3s::auth::{S3Auth, SecretKey};
use s3s::host::{S3Host, VirtualHost};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3Error, S3ErrorCode, S3Result};
use strato_engine::async_invoke::{EventSinks, ServiceEvents};
use strato_model::durability::Durability;
use strato_sigv4::CredentialLookup;

pub use blob::OpenContent;
pub use ops::ObjectStore;

/// The signing name clients use for S3.
pub const SIGNING_NAME: &str = "s3";

/// Why S3 could not start.
#[derive(Debug, thiserror::Error)]
pub enum S3StartError {
    #[error("S3 content directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Meta(#[from] meta::MetaError),
}

/// Access keys to accounts, as the rest of Strato knows them.
pub type Accounts = Arc<dyn CredentialLookup + Send + Sync>;

/// S3 as one HTTP service: hand it requests, it answers them.
pub struct S3Server {
    service: S3Service,
    store: Arc<ObjectStore>,
}

impl S3Server {
    /// Opens the store under `data_dir/s3`, removing what a crash left.
    pub fn open(
        data_dir: &Path,
        accounts: Accounts,
        iam: Arc<strato_iam::Iam>,
        sinks: Arc<EventSinks>,
        events: Arc<dyn ServiceEvents>,
        durability: Durability,
    ) -> Result<S3Server, S3StartError> {
        let root = data_dir.join("s3");
        std::fs::create_dir_all(&root)?;
        let meta = meta::Meta::open(&root.join("meta.db"), durability)?;
        let blobs = blob::BlobStore::open(&root, durability)?;
        let removed = blobs.remove_orphans(&meta.referenced_blobs()?)?;
        if removed > 0 {
            tracing::info!(removed, "removed S3 content no object refers to");
        }
        let seq = AtomicI64::new(meta.max_seq()?);
        let owners = access::BucketOwners::load(&meta)?;
        let store = Arc::new(ObjectStore {
            meta,
            owners,
            blobs,
            notifier: notify::Notifier::new(sinks, events),
            accounts: accounts.clone(),
            seq,
        });
        let mut builder = S3ServiceBuilder::new(SharedStore(store.clone()));
        builder.set_auth(StratoAuth {
            accounts: accounts.clone(),
        });
        builder.set_access(access::StratoAccess {
            iam,
            accounts,
            store: store.clone(),
        });
        builder.set_host(LocalHost);
        builder.set_validation(AnyBucketName);
        Ok(S3Server {
            service: builder.build(),
            store,
        })
    }

    /// Answers one S3 request: preflight `OPTIONS` here, the rest through
    /// `s3s`, with the bucket's CORS headers when the request has an
    /// `Origin`, and the extra members AWS puts in some errors.
    pub async fn call(&self, request: s3s::HttpRequest) -> s3s::HttpResponse {
        let target = request_bucket(&request);
        // `s3s` refuses a key over S3's limit before any operation runs;
        // answered here with the members AWS adds.
        if let Some((_, len)) = target
            .as_ref()
            .filter(|(_, len)| *len > names::MAX_KEY_BYTES)
        {
            return xml_error(
                http::StatusCode::BAD_REQUEST,
                &[
                    ("Code", "KeyTooLongError".to_string()),
                    ("Message", "Your key is too long".to_string()),
                    ("Size", len.to_string()),
                    ("MaxSizeAllowed", names::MAX_KEY_BYTES.to_string()),
                ],
            );
        }
        if request.method() == http::Method::OPTIONS {
            let (bucket, key_len) = target.unzip();
            let has_key = key_len.map(|len| len > 0);
            let config = bucket.and_then(|b| self.store.cors_config(&b));
            return match cors::preflight(
                config.as_ref(),
                request.headers(),
                has_key.unwrap_or(false),
            ) {
                Ok(headers) => {
                    let mut response = http::Response::new(s3s::Body::empty());
                    *response.headers_mut() = headers;
                    response
                }
                Err(refusal) => {
                    let mut members = vec![("Code", refusal.code.to_string())];
                    members.push(("Message", refusal.message));
                    members.extend(refusal.members);
                    xml_error(refusal.status, &members)
                }
            };
        }
        let cors = request
            .headers()
            .contains_key(http::header::ORIGIN)
            .then(|| target.and_then(|(b, _)| self.store.cors_config(&b)))
            .flatten()
            .map(|config| (config, request.method().clone(), request.headers().clone()));
        let mut response = match self.service.call(request).await {
            Ok(response) => add_members(response).await,
            Err(err) => {
                tracing::warn!(error = ?err, "S3 request failed below the protocol");
                let mut response = http::Response::new(s3s::Body::empty());
                *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                response
            }
        };
        if let Some((config, method, headers)) = cors {
            cors::decorate(&config, &method, &headers, response.headers_mut());
        }
        response
    }

    /// Whether an unsigned request is a CORS preflight for an existing
    /// bucket (browsers send those without credentials).
    pub fn is_preflight<B>(&self, request: &http::Request<B>) -> bool {
        request.method() == http::Method::OPTIONS
            && request.headers().contains_key(http::header::ORIGIN)
            && request_bucket(request).is_some_and(|(b, _)| self.store.owners.get(&b).is_some())
    }

    /// The object store itself (Lambda reads function code from it).
    pub fn store(&self) -> &Arc<ObjectStore> {
        &self.store
    }
}

/// The bucket a request names (virtual-hosted or path style) and how
/// many bytes long its key is (0 when it names none).
fn request_bucket<B>(request: &http::Request<B>) -> Option<(String, usize)> {
    let path = request.uri().path().trim_start_matches('/');
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let key_len = |key: &str| percent_encoding::percent_decode_str(key).count();
    if let Some((bucket, _)) = host.and_then(virtual_bucket) {
        return Some((bucket.to_string(), key_len(path)));
    }
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let bucket = percent_encoding::percent_decode_str(bucket)
        .decode_utf8()
        .ok()?;
    (!bucket.is_empty()).then(|| (bucket.into_owned(), key_len(key)))
}

/// The header an `S3Error` carries its extra XML members in (`s3s`
/// writes only `Code` and `Message`), one `Name:percent-encoded value` per
/// member; [`S3Server::call`] moves them into the body.
const MEMBER_HEADER: &str = "x-strato-error-member";

/// An error with the members AWS adds to it (`BucketName`, `Key`, ...).
pub(crate) fn with_members(mut err: S3Error, members: &[(&str, &str)]) -> S3Error {
    let mut headers = err.headers().cloned().unwrap_or_default();
    for (name, value) in members {
        let encoded =
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC);
        if let Ok(value) = http::HeaderValue::from_str(&format!("{name}:{encoded}")) {
            headers.append(MEMBER_HEADER, value);
        }
    }
    err.set_headers(headers);
    err
}

/// An error with its message and the members AWS adds to it.
pub(crate) fn error_with(
    code: S3ErrorCode,
    message: &'static str,
    members: &[(&str, &str)],
) -> S3Error {
    with_members(S3Error::with_message(code, message), members)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An S3 XML error of `members` (Code and Message first).
fn xml_error(status: http::StatusCode, members: &[(&str, String)]) -> s3s::HttpResponse {
    let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
    for (name, value) in members {
        body.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
    }
    let request_id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    body.push_str(&format!("<RequestId>{request_id}</RequestId></Error>"));
    let mut response = http::Response::new(s3s::Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    response
}

/// Moves the members [`with_members`] put in headers into the error body.
async fn add_members(mut response: s3s::HttpResponse) -> s3s::HttpResponse {
    let values: Vec<http::HeaderValue> = response
        .headers()
        .get_all(MEMBER_HEADER)
        .iter()
        .cloned()
        .collect();
    response.headers_mut().remove(MEMBER_HEADER);
    if values.is_empty() {
        return response;
    }
    let mut extra = String::new();
    for value in &values {
        let Some((name, encoded)) = value.to_str().ok().and_then(|v| v.split_once(':')) else {
            continue;
        };
        let value = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
        extra.push_str(&format!("<{name}>{}</{name}>", xml_escape(&value)));
    }
    let Ok(body) = response.body_mut().store_all_limited(64 * 1024).await else {
        return response;
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let Some(at) = text.rfind("</Error>") else {
        *response.body_mut() = s3s::Body::from(body);
        return response;
    };
    let (head, tail) = text.split_at(at);
    let text = format!("{head}{extra}{tail}");
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    response.headers_mut().remove(http::header::CONTENT_LENGTH);
    *response.body_mut() = s3s::Body::from(text);
    response
}

/// `s3s` takes its implementation by value; the server keeps a handle too.
pub(crate) struct SharedStore(pub(crate) Arc<ObjectStore>);

/// Secret keys come from Strato's accounts.
struct StratoAuth {
    accounts: Accounts,
}

#[async_trait::async_trait]
impl S3Auth for StratoAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        self.accounts
            .lookup(access_key)
            .map(|c| SecretKey::from(c.secret_access_key))
            .ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::InvalidAccessKeyId,
                    "The AWS Access Key Id you provided does not exist in our records.",
                )
            })
    }
}

/// Bucket names are checked by CreateBucket, which answers AWS's message;
/// any other operation on a name that cannot exist finds no such bucket.
struct AnyBucketName;

impl s3s::validation::NameValidation for AnyBucketName {
    fn validate_bucket_name(&self, name: &str) -> bool {
        !name.is_empty()
    }
}

/// Virtual-hosted style under any `*.s3.<domain>` host
/// (`bucket.s3.localhost:9000`); every other host is path style.
struct LocalHost;

impl S3Host for LocalHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        Ok(match virtual_bucket(host) {
            Some((bucket, domain)) => VirtualHost::new(domain).with_bucket(bucket),
            None => VirtualHost::new(host),
        })
    }
}

/// The bucket and base domain of a virtual-hosted-style host.
pub fn virtual_bucket(host: &str) -> Option<(&str, &str)> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let at = name.find(".s3.")?;
    let bucket = name.get(..at)?;
    let domain = name.get(at + 1..)?;
    (!bucket.is_empty()).then_some((bucket, domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosts_name_their_bucket() {
        assert_eq!(
            virtual_bucket("photos.s3.localhost:9000"),
            Some(("photos", "s3.localhost"))
        );
        assert_eq!(
            virtual_bucket("a.b.s3.localhost"),
            Some(("a.b", "s3.localhost"))
        );
        assert_eq!(virtual_bucket("localhost:9000"), None);
        assert_eq!(virtual_bucket("127.0.0.1:9000"), None);
        assert_eq!(virtual_bucket("s3.localhost"), None);
    }
}
