//! Amazon S3 on the `s3s` crate: `s3s` speaks the wire protocol (routing,
//! XML, SigV4 including streaming `aws-chunked` bodies, trailers and
//! presigned URLs) and calls the [`s3s::S3`] trait, which [`ObjectStore`]
//! implements with metadata in SQLite ([`meta`]) and content on disk
//! ([`blob`]). SigV4 is verified by `s3s` with Strato's own accounts and
//! keys ([`StratoAuth`]): Strato's front-end verifier buffers bodies, which
//! an object store must never do, so S3 requests bypass it.

pub mod blob;
pub mod checksum;
pub mod meta;
pub mod names;
pub mod notify;
mod ops;

use std::path::Path;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use s3s::auth::{S3Auth, SecretKey};
use s3s::host::{S3Host, VirtualHost};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3Error, S3ErrorCode, S3Result};
use strato_engine::async_invoke::{EventSinks, ServiceEvents};
use strato_sigv4::CredentialLookup;

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
        sinks: Arc<EventSinks>,
        events: Arc<dyn ServiceEvents>,
    ) -> Result<S3Server, S3StartError> {
        let root = data_dir.join("s3");
        std::fs::create_dir_all(&root)?;
        let meta = meta::Meta::open(&root.join("meta.db"))?;
        let blobs = blob::BlobStore::open(&root)?;
        let removed = blobs.remove_orphans(&meta.referenced_blobs()?)?;
        if removed > 0 {
            tracing::info!(removed, "removed S3 content no object refers to");
        }
        let seq = AtomicI64::new(meta.max_seq()?);
        let store = Arc::new(ObjectStore {
            meta,
            blobs,
            notifier: notify::Notifier::new(sinks, events),
            accounts: accounts.clone(),
            seq,
        });
        let mut builder = S3ServiceBuilder::new(SharedStore(store.clone()));
        builder.set_auth(StratoAuth { accounts });
        builder.set_host(LocalHost);
        builder.set_validation(AnyBucketName);
        Ok(S3Server {
            service: builder.build(),
            store,
        })
    }

    /// Answers one S3 request.
    pub async fn call(&self, request: s3s::HttpRequest) -> s3s::HttpResponse {
        match self.service.call(request).await {
            Ok(response) => response,
            Err(err) => {
                tracing::warn!(error = ?err, "S3 request failed below the protocol");
                let mut response = http::Response::new(s3s::Body::empty());
                *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                response
            }
        }
    }

    /// The object store itself (Lambda reads function code from it).
    pub fn store(&self) -> &Arc<ObjectStore> {
        &self.store
    }
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
