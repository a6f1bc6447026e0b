//! Who may do what in S3: every signed request passes here (`s3s` calls
//! [`StratoAccess::check`] after the signature verifies, before the
//! operation runs). Session credentials (STS, function instances) need
//! their token and stop at their expiry; the request is then decided by
//! IAM's one evaluator ([`strato_iam::Iam::authorize_access`]) as the S3
//! action the operation stands for, on S3's resource ARN
//! (`arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`), with the bucket's
//! policy: in the owner's account an IAM principal needs an allow in its
//! policies or the bucket policy and no explicit deny in either; another
//! account's caller needs the bucket policy to allow (and its identity
//! policies too). A request so let into another account's bucket carries a
//! [`BucketGrant`], which the operations honour in place of ownership.

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::{S3Error, S3ErrorCode, S3Result};
use strato_iam::policy::RequestContext;
use strato_iam::{Iam, ResourceAccess, SessionRefusal};

use crate::meta::BucketDoc;
use crate::{Accounts, ObjectStore};

/// Another account's bucket this request was let into by the bucket's
/// policy, and the account that owns it.
#[derive(Debug, Clone)]
pub(crate) struct BucketGrant {
    pub bucket: String,
    pub owner: String,
}

pub(crate) struct StratoAccess {
    pub iam: Arc<Iam>,
    pub accounts: Accounts,
    pub store: Arc<ObjectStore>,
}

/// The IAM action an S3 operation stands for (the Service Authorization
/// Reference's names), and whether it acts on the bucket rather than an
/// object. Reading or deleting a given version is its own action.
fn action(operation: &str, versioned: bool) -> (&str, bool) {
    let object = |a| (a, false);
    let bucket = |a| (a, true);
    match operation {
        "GetObject" | "HeadObject" if versioned => object("s3:GetObjectVersion"),
        "GetObject" | "HeadObject" => object("s3:GetObject"),
        "GetObjectAttributes" if versioned => object("s3:GetObjectVersionAttributes"),
        "GetObjectAttributes" => object("s3:GetObjectAttributes"),
        "DeleteObject" if versioned => object("s3:DeleteObjectVersion"),
        "DeleteObject" => object("s3:DeleteObject"),
        "PutObject"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload" => object("s3:PutObject"),
        "AbortMultipartUpload" => object("s3:AbortMultipartUpload"),
        "ListParts" => object("s3:ListMultipartUploadParts"),
        "GetObjectTagging" if versioned => object("s3:GetObjectVersionTagging"),
        "GetObjectTagging" => object("s3:GetObjectTagging"),
        "PutObjectTagging" if versioned => object("s3:PutObjectVersionTagging"),
        "PutObjectTagging" => object("s3:PutObjectTagging"),
        "DeleteObjectTagging" if versioned => object("s3:DeleteObjectVersionTagging"),
        "DeleteObjectTagging" => object("s3:DeleteObjectTagging"),
        // DeleteObjects is decided per key by AWS; here as s3:DeleteObject
        // on the bucket's keys as a whole (`bucket/*`).
        "DeleteObjects" => object("s3:DeleteObject"),
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => bucket("s3:ListBucket"),
        "ListObjectVersions" => bucket("s3:ListBucketVersions"),
        "ListMultipartUploads" => bucket("s3:ListBucketMultipartUploads"),
        "ListBuckets" => bucket("s3:ListAllMyBuckets"),
        "CreateBucket" => bucket("s3:CreateBucket"),
        "DeleteBucket" => bucket("s3:DeleteBucket"),
        "GetBucketLocation" => bucket("s3:GetBucketLocation"),
        "GetBucketVersioning" => bucket("s3:GetBucketVersioning"),
        "PutBucketVersioning" => bucket("s3:PutBucketVersioning"),
        "GetBucketNotificationConfiguration" => bucket("s3:GetBucketNotification"),
        "PutBucketNotificationConfiguration" => bucket("s3:PutBucketNotification"),
        "GetBucketPolicy" => bucket("s3:GetBucketPolicy"),
        "PutBucketPolicy" => bucket("s3:PutBucketPolicy"),
        "DeleteBucketPolicy" => bucket("s3:DeleteBucketPolicy"),
        "GetBucketCors" => bucket("s3:GetBucketCORS"),
        "PutBucketCors" | "DeleteBucketCors" => bucket("s3:PutBucketCORS"),
        "GetBucketTagging" => bucket("s3:GetBucketTagging"),
        "PutBucketTagging" | "DeleteBucketTagging" => bucket("s3:PutBucketTagging"),
        _ => ("", true),
    }
}

fn denied(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, message.into())
}

/// The session token a request carries (header, or a presigned URL's
/// query).
fn session_token<'a>(cx: &'a S3AccessContext<'_>) -> Option<&'a str> {
    if let Some(value) = cx.headers().get("x-amz-security-token") {
        return value.to_str().ok();
    }
    cx.uri().query()?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.eq_ignore_ascii_case("X-Amz-Security-Token")
            .then_some(value)
    })
}

#[async_trait::async_trait]
impl S3Access for StratoAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(denied("Signature is required"));
        };
        let key = credentials.access_key.clone();
        let token = session_token(cx).map(|t| {
            percent_encoding::percent_decode_str(t)
                .decode_utf8_lossy()
                .into_owned()
        });
        match self.iam.check_session(&key, token.as_deref()) {
            Ok(()) => {}
            Err(SessionRefusal::InvalidToken) => {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidToken,
                    "The provided token is malformed or otherwise invalid.",
                ))
            }
            Err(SessionRefusal::Expired) => {
                return Err(S3Error::with_message(
                    S3ErrorCode::ExpiredToken,
                    "The provided token has expired.",
                ))
            }
        }
        let Some(account) = self.accounts.lookup(&key).map(|c| c.account_id) else {
            return Err(denied("Access Denied"));
        };
        let (bucket, object) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let versioned = cx
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("versionId=")));
        let (action, on_bucket) = action(cx.s3_op().name(), versioned);
        let governed = self.iam.governs(&key);
        // The bucket's owner and policy: an unknown bucket is the
        // operation's to answer (NoSuchBucket), as the caller's own.
        // CreateBucket names a bucket that is nobody's yet (or answers
        // that it is taken).
        let row = match &bucket {
            Some(name) if cx.s3_op().name() != "CreateBucket" => {
                self.store.meta.bucket(name).map_err(crate::ops::internal)?
            }
            _ => None,
        };
        let owner = row
            .as_ref()
            .map_or(account.as_str(), |b| b.account.as_str());
        let cross_account = owner != account;
        if !governed && !cross_account {
            return Ok(());
        }
        if action.is_empty() {
            // An operation Strato's S3 does not name an action for is
            // answered by the operation itself (NotImplemented), in the
            // caller's own account only.
            return if cross_account {
                Err(denied("Access Denied"))
            } else {
                Ok(())
            };
        }
        let resource = match (&bucket, &object) {
            (None, _) => "*".to_string(),
            (Some(b), _) if cx.s3_op().name() == "DeleteObjects" => format!("arn:aws:s3:::{b}/*"),
            (Some(b), Some(k)) if !on_bucket => format!("arn:aws:s3:::{b}/{k}"),
            (Some(b), _) => format!("arn:aws:s3:::{b}"),
        };
        let policy = match (&row, governed || cross_account) {
            (Some(b), true) => self
                .store
                .meta
                .bucket_doc(&b.name, BucketDoc::Policy)
                .map_err(crate::ops::internal)?,
            _ => None,
        };
        let secure = cx.uri().scheme_str() == Some("https")
            || cx
                .headers()
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes() == b"https");
        let context = RequestContext::new()
            .with("aws:SecureTransport", if secure { "true" } else { "false" });
        let decided = self.iam.authorize_access(
            &key,
            &account,
            &ResourceAccess {
                action,
                resource: &resource,
                owner,
                policy: policy.as_deref(),
            },
            context,
        );
        match decided {
            // AWS says no more than this to another account's caller.
            Err(_) if cross_account => Err(denied("Access Denied")),
            // In the owner's account S3 names the policy and quotes the ARN.
            Err(refusal) => Err(denied(refusal.message.replacen(
                &format!("on resource: {resource} "),
                &format!("on resource: \"{resource}\" "),
                1,
            ))),
            Ok(()) => {
                if let (true, Some(row)) = (cross_account, row) {
                    cx.extensions_mut().insert(BucketGrant {
                        bucket: row.name,
                        owner: row.account,
                    });
                }
                Ok(())
            }
        }
    }
}
