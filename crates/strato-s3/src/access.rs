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
//! policies too). A request so let into another account's bucket carries
//! [`BucketGrants`], which the operations honour in place of ownership.
//! A copy's source is decided too (`s3:GetObject` on the source, with the
//! source bucket's policy), and `DeleteObjects` is decided per key by the
//! operation ([`KeyAccess`]), as AWS does. Buckets, their owners and
//! policies come from memory ([`BucketOwners`]), never from the database
//! per request.

use std::sync::Arc;

use dashmap::DashMap;
use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::CopySource;
use s3s::path::S3Path;
use s3s::{S3Error, S3ErrorCode, S3Result};
use strato_iam::policy::{Connection, RequestContext};
use strato_iam::{Iam, ResourceAccess, SessionRefusal};

use crate::meta::{BucketRow, Meta, MetaError};
use crate::{Accounts, ObjectStore};

/// Other accounts' buckets this request was let into by their policies
/// (the request's own bucket, a copy's source), with their owners.
#[derive(Debug, Clone, Default)]
pub(crate) struct BucketGrants(Vec<(String, String)>);

impl BucketGrants {
    /// The owner of `bucket`, if the request was let into it.
    pub(crate) fn owner(&self, bucket: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(b, _)| b == bucket)
            .map(|(_, owner)| owner.as_str())
    }
}

pub(crate) struct StratoAccess {
    pub iam: Arc<Iam>,
    pub accounts: Accounts,
    pub store: Arc<ObjectStore>,
}

/// A bucket (its owner is `bucket.account`) and its policy, as access
/// decisions and operations need them.
#[derive(Debug)]
pub(crate) struct Owner {
    pub bucket: Arc<BucketRow>,
    pub policy: Option<String>,
}

/// Every bucket and its policy in memory: loaded at start, kept up to date
/// by the operations that change them (CreateBucket, DeleteBucket,
/// PutBucketVersioning, Put/DeleteBucketPolicy) after the database.
pub(crate) struct BucketOwners(DashMap<String, Arc<Owner>>);

impl BucketOwners {
    pub(crate) fn load(meta: &Meta) -> Result<BucketOwners, MetaError> {
        let map = DashMap::new();
        for (bucket, policy) in meta.buckets_with_policies()? {
            let owner = Owner {
                bucket: Arc::new(bucket),
                policy,
            };
            map.insert(owner.bucket.name.clone(), Arc::new(owner));
        }
        Ok(BucketOwners(map))
    }

    pub(crate) fn get(&self, bucket: &str) -> Option<Arc<Owner>> {
        self.0.get(bucket).map(|o| o.clone())
    }

    pub(crate) fn created(&self, bucket: &BucketRow) {
        self.0.insert(
            bucket.name.clone(),
            Arc::new(Owner {
                bucket: Arc::new(bucket.clone()),
                policy: None,
            }),
        );
    }

    pub(crate) fn set_policy(&self, bucket: &str, policy: Option<&str>) {
        if let Some(mut entry) = self.0.get_mut(bucket) {
            *entry = Arc::new(Owner {
                bucket: entry.bucket.clone(),
                policy: policy.map(str::to_string),
            });
        }
    }

    pub(crate) fn set_versioning(&self, bucket: &str, status: &str) {
        if let Some(mut entry) = self.0.get_mut(bucket) {
            *entry = Arc::new(Owner {
                bucket: Arc::new(BucketRow {
                    versioning: Some(status.to_string()),
                    ..BucketRow::clone(&entry.bucket)
                }),
                policy: entry.policy.clone(),
            });
        }
    }

    /// Forgets a deleted bucket, unless a bucket of the same name was
    /// created (and cached) since.
    pub(crate) fn deleted(&self, bucket: &BucketRow) {
        self.0.remove_if(&bucket.name, |_, cached| {
            cached.bucket.account == bucket.account && cached.bucket.created_ms == bucket.created_ms
        });
    }
}

/// What deciding one object's action later needs (`DeleteObjects` names
/// its keys in the body, read after this check): the operation asks
/// [`KeyAccess::allows`] for each key.
#[derive(Clone)]
pub(crate) struct KeyAccess {
    iam: Arc<Iam>,
    key: String,
    account: String,
    owner: String,
    policy: Option<String>,
    context: RequestContext,
}

impl KeyAccess {
    /// Whether `action` on `resource` is allowed to this request's caller.
    pub(crate) fn allows(&self, action: &str, resource: &str) -> bool {
        self.authorize(action, resource).is_ok()
    }

    fn authorize(&self, action: &str, resource: &str) -> Result<(), strato_iam::AccessDenied> {
        self.iam.authorize_access(
            &self.key,
            &self.account,
            &ResourceAccess {
                action,
                resource,
                owner: &self.owner,
                policy: self.policy.as_deref(),
            },
            self.context.clone(),
        )
    }
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
        // Decided per key by the operation (KeyAccess).
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
        let operation = cx.s3_op().name().to_string();
        let operation = operation.as_str();
        let versioned = query_values(cx, "versionId").next().is_some();
        let (action, on_bucket) = action(operation, versioned);
        let governed = self.iam.governs(&key);
        // The bucket's owner and policy: an unknown bucket is the
        // operation's to answer (NoSuchBucket), as the caller's own.
        // CreateBucket names a bucket that is nobody's yet (or answers
        // that it is taken).
        let found = match &bucket {
            Some(name) if operation != "CreateBucket" => self.store.owners.get(name),
            _ => None,
        };
        let owner = found
            .as_ref()
            .map_or_else(|| account.clone(), |b| b.bucket.account.clone());
        let cross_account = owner != account;
        let copies = matches!(operation, "CopyObject" | "UploadPartCopy");
        if !governed && !cross_account && !copies {
            // The common case (IAM off, or an account's root in its own
            // bucket): nothing to decide.
            return Ok(());
        }
        let mut context = cx
            .extensions_mut()
            .get::<Connection>()
            .copied()
            .unwrap_or_default()
            .context();
        if matches!(
            operation,
            "ListObjects" | "ListObjectsV2" | "ListObjectVersions"
        ) {
            for (name, condition) in [
                ("prefix", "s3:prefix"),
                ("delimiter", "s3:delimiter"),
                ("max-keys", "s3:max-keys"),
            ] {
                if let Some(value) = query_values(cx, name).next() {
                    context.insert(condition, value);
                }
            }
        }
        let decider = KeyAccess {
            iam: self.iam.clone(),
            key,
            account,
            owner,
            policy: found.as_ref().and_then(|b| b.policy.clone()),
            context,
        };
        let mut grants = BucketGrants::default();
        if copies {
            self.check_copy_source(cx, &decider, &mut grants)?;
        }
        if !governed && !cross_account {
            cx.extensions_mut().insert(grants);
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
            (Some(b), Some(k)) if !on_bucket => format!("arn:aws:s3:::{b}/{k}"),
            (Some(b), _) => format!("arn:aws:s3:::{b}"),
        };
        if let (true, Some(b), Some(found)) = (cross_account, &bucket, &found) {
            grants.0.push((b.clone(), found.bucket.account.clone()));
        }
        if operation == "DeleteObjects" {
            cx.extensions_mut().insert(decider);
        } else {
            decide(&decider, action, &resource, cross_account)?;
        }
        cx.extensions_mut().insert(grants);
        Ok(())
    }
}

impl StratoAccess {
    /// A copy reads its source: `s3:GetObject` (`s3:GetObjectVersion`)
    /// on it, decided with the source bucket's owner and policy; another
    /// account's source bucket is added to the request's grants.
    fn check_copy_source(
        &self,
        cx: &S3AccessContext<'_>,
        decider: &KeyAccess,
        grants: &mut BucketGrants,
    ) -> S3Result<()> {
        let Some(header) = cx
            .headers()
            .get("x-amz-copy-source")
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(());
        };
        let Ok(CopySource::Bucket {
            bucket,
            key,
            version_id,
        }) = CopySource::parse(header)
        else {
            // The operation answers a source it cannot parse.
            return Ok(());
        };
        let Some(found) = self.store.owners.get(&bucket) else {
            return Ok(());
        };
        let cross_account = found.bucket.account != decider.account;
        if !cross_account && !self.iam.governs(&decider.key) {
            return Ok(());
        }
        let source = KeyAccess {
            owner: found.bucket.account.clone(),
            policy: found.policy.clone(),
            ..decider.clone()
        };
        let action = if version_id.is_some() {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        };
        decide(
            &source,
            action,
            &format!("arn:aws:s3:::{bucket}/{key}"),
            cross_account,
        )?;
        if cross_account {
            grants
                .0
                .push((bucket.to_string(), found.bucket.account.clone()));
        }
        Ok(())
    }
}

/// Decides one action, answering S3's AccessDenied.
fn decide(access: &KeyAccess, action: &str, resource: &str, cross_account: bool) -> S3Result<()> {
    match access.authorize(action, resource) {
        Ok(()) => Ok(()),
        // AWS says no more than this to another account's caller.
        Err(_) if cross_account => Err(denied("Access Denied")),
        // In the owner's account S3 names the policy and quotes the ARN.
        Err(refusal) => Err(denied(refusal.message.replacen(
            &format!("on resource: {resource} "),
            &format!("on resource: \"{resource}\" "),
            1,
        ))),
    }
}

/// The percent-decoded values of a query parameter.
fn query_values<'a>(
    cx: &'a S3AccessContext<'_>,
    name: &'a str,
) -> impl Iterator<Item = String> + 'a {
    cx.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(move |pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            (n == name).then(|| {
                percent_encoding::percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::BucketDoc;

    #[test]
    fn buckets_and_policies_are_loaded_at_start_and_follow_changes() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Meta::open(
            &dir.path().join("meta.db"),
            strato_model::durability::Durability::ProcessCrash,
        )
        .unwrap();
        let row = |name: &str| BucketRow {
            name: name.into(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            created_ms: 0,
            versioning: None,
        };
        meta.create_bucket(&row("with-policy")).unwrap();
        meta.create_bucket(&row("plain")).unwrap();
        meta.set_versioning("plain", "Suspended").unwrap();
        meta.set_bucket_doc("with-policy", BucketDoc::Policy, Some("{}"))
            .unwrap();
        let owners = BucketOwners::load(&meta).unwrap();
        let loaded = owners.get("with-policy").unwrap();
        assert_eq!(
            (loaded.bucket.account.as_str(), loaded.policy.as_deref()),
            ("111111111111", Some("{}"))
        );
        assert_eq!(owners.get("plain").unwrap().policy, None);
        assert_eq!(
            owners.get("plain").unwrap().bucket.versioning.as_deref(),
            Some("Suspended")
        );
        assert!(owners.get("missing").is_none());
        owners.set_policy("plain", Some("{\"Statement\":[]}"));
        assert_eq!(
            owners.get("plain").unwrap().policy.as_deref(),
            Some("{\"Statement\":[]}")
        );
        // A policy for a bucket nobody created is not invented.
        owners.set_policy("missing", Some("{}"));
        assert!(owners.get("missing").is_none());
        owners.created(&BucketRow {
            account: "222222222222".into(),
            ..row("new")
        });
        assert_eq!(owners.get("new").unwrap().bucket.account, "222222222222");
        owners.set_versioning("new", "Enabled");
        let versioned = owners.get("new").unwrap();
        assert_eq!(versioned.bucket.versioning.as_deref(), Some("Enabled"));
        assert_eq!(versioned.bucket.region, "us-east-1");
        owners.deleted(&row("with-policy"));
        assert!(owners.get("with-policy").is_none());
    }
}
