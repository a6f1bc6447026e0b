// Why over 800 lines: this is the S3 trait implementation: one method per
// S3 operation that Strato serves (buckets, objects, listings, multipart,
// versioning, tags, notifications, policy), each short, sharing the
// helpers at the top; splitting them across files would scatter one trait
// impl.
//! The S3 operations over [`Meta`] and [`BlobStore`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, S3};

use crate::blob::{is_inline, BlobStore, WrittenBlob};
use crate::checksum::{self, Algorithm};
use crate::meta::{BucketDoc, BucketRow, Fetch, Meta, ObjectMeta, ObjectRow, PartRow, UploadRow};
use crate::names::{url_encode, valid_bucket_name, MAX_KEY_BYTES};
use crate::notify::{Notifier, ObjectEvent};
use crate::{error_with, Accounts, SharedStore};

/// Buckets, objects and their content.
pub struct ObjectStore {
    pub(crate) meta: Meta,
    pub(crate) owners: crate::access::BucketOwners,
    pub(crate) blobs: BlobStore,
    pub(crate) notifier: Notifier,
    pub(crate) accounts: Accounts,
    pub(crate) seq: AtomicI64,
}

const DEFAULT_REGION: &str = "us-east-1";
const MAX_LIST: i32 = 1000;
const MIN_PART_SIZE: i64 = 5 * 1024 * 1024;

pub(crate) fn internal(err: impl std::fmt::Display) -> S3Error {
    tracing::error!(error = %err, "S3 internal error");
    S3Error::with_message(
        S3ErrorCode::InternalError,
        "We encountered an internal error. Please try again.",
    )
}

fn no_such_bucket(name: &str) -> S3Error {
    error_with(
        S3ErrorCode::NoSuchBucket,
        "The specified bucket does not exist",
        &[("BucketName", name)],
    )
}

pub(crate) fn no_such_key(key: &str) -> S3Error {
    error_with(
        S3ErrorCode::NoSuchKey,
        "The specified key does not exist.",
        &[("Key", key)],
    )
}

fn no_such_upload(upload_id: &str) -> S3Error {
    error_with(S3ErrorCode::NoSuchUpload, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.", &[("UploadId", upload_id)])
}

/// A failed precondition, naming the header (`Condition`) as AWS does.
fn precondition_failed(condition: &str) -> S3Error {
    error_with(
        S3ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
        &[("Condition", condition)],
    )
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

fn timestamp(ms: i64) -> Timestamp {
    let ms = u64::try_from(ms).unwrap_or(0);
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

fn seconds(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_string())
}

fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(error_with(
            S3ErrorCode::KeyTooLongError,
            "Your key is too long",
            &[
                ("Size", &key.len().to_string()),
                ("MaxSizeAllowed", &MAX_KEY_BYTES.to_string()),
            ],
        ));
    }
    Ok(())
}

/// Whether an `If-Match`/`If-None-Match` condition matches an ETag.
fn condition_matches(condition: &ETagCondition, current: &str) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value() == current,
    }
}

fn checksum_fields(checksum: Option<&(String, String)>) -> Checksum {
    let mut out = Checksum::default();
    if let Some((name, value)) = checksum {
        let value = Some(value.clone());
        match Algorithm::parse(name) {
            Some(Algorithm::Crc32) => out.checksum_crc32 = value,
            Some(Algorithm::Crc32c) => out.checksum_crc32c = value,
            Some(Algorithm::Crc64Nvme) => out.checksum_crc64nvme = value,
            Some(Algorithm::Sha1) => out.checksum_sha1 = value,
            Some(Algorithm::Sha256) => out.checksum_sha256 = value,
            None => {}
        }
    }
    out
}

/// The five `checksum_*` members S3's outputs share.
trait SetChecksums {
    fn set_checksums(&mut self, sums: Checksum);
}

macro_rules! set_checksums {
    ($($output:ty),*) => {$(
        impl SetChecksums for $output {
            fn set_checksums(&mut self, sums: Checksum) {
                self.checksum_crc32 = sums.checksum_crc32;
                self.checksum_crc32c = sums.checksum_crc32c;
                self.checksum_crc64nvme = sums.checksum_crc64nvme;
                self.checksum_sha1 = sums.checksum_sha1;
                self.checksum_sha256 = sums.checksum_sha256;
            }
        }
    )*};
}

set_checksums!(
    PutObjectOutput,
    GetObjectOutput,
    HeadObjectOutput,
    CopyObjectResult,
    CopyPartResult,
    UploadPartOutput,
    CompleteMultipartUploadOutput,
    Part
);

/// The checksum of one algorithm a request's members carry
/// (`ChecksumCRC32`, ... of a completed part or of the completion).
trait SentChecksums {
    fn sent_checksum(&self, algorithm: Algorithm) -> Option<&str>;
}

macro_rules! sent_checksums {
    ($($input:ty),*) => {$(
        impl SentChecksums for $input {
            fn sent_checksum(&self, algorithm: Algorithm) -> Option<&str> {
                match algorithm {
                    Algorithm::Crc32 => self.checksum_crc32.as_deref(),
                    Algorithm::Crc32c => self.checksum_crc32c.as_deref(),
                    Algorithm::Crc64Nvme => self.checksum_crc64nvme.as_deref(),
                    Algorithm::Sha1 => self.checksum_sha1.as_deref(),
                    Algorithm::Sha256 => self.checksum_sha256.as_deref(),
                }
            }
        }
    )*};
}

sent_checksums!(CompletedPart, CompleteMultipartUploadInput);

/// A write's answer: the new version's ETag and checksum, and `fields`.
macro_rules! written {
    ($output:ident, $row:expr, { $($field:ident: $value:expr),* $(,)? }) => {
        with_sums(
            $output {
                e_tag: Some(etag(&$row.etag)),
                checksum_type: $row.meta.checksum_type.clone().map(ChecksumType::from),
                $($field: $value,)*
                ..Default::default()
            },
            $row.meta.checksum.as_ref(),
        )
    };
}

/// What GetObject and HeadObject both answer about an object version
/// (`response-*` overrides applied; checksums only when asked for).
macro_rules! object_headers {
    ($output:ident, $input:expr, $bucket:expr, $row:expr, $with_checksum:expr) => {{
        let meta = &$row.meta;
        let output = $output {
            accept_ranges: Some("bytes".to_string()),
            e_tag: Some(etag(&$row.etag)),
            last_modified: Some(timestamp($row.modified_ms)),
            content_type: $input
                .response_content_type
                .clone()
                .or_else(|| meta.content_type.clone())
                .and_then(|c| c.parse().ok()),
            content_encoding: meta.content_encoding.clone(),
            content_disposition: $input
                .response_content_disposition
                .clone()
                .or_else(|| meta.content_disposition.clone()),
            content_language: meta.content_language.clone(),
            cache_control: $input
                .response_cache_control
                .clone()
                .or_else(|| meta.cache_control.clone()),
            metadata: user_metadata(meta),
            version_id: ObjectStore::version_out(&$bucket, &$row.version_id),
            parts_count: meta.parts_count,
            checksum_type: meta
                .checksum_type
                .clone()
                .filter(|_| $with_checksum)
                .map(ChecksumType::from),
            ..Default::default()
        };
        with_sums(output, meta.checksum.as_ref().filter(|_| $with_checksum))
    }};
}

/// `output` with the checksum `(algorithm, value)` in its members.
fn with_sums<T: SetChecksums>(mut output: T, checksum: Option<&(String, String)>) -> T {
    output.set_checksums(checksum_fields(checksum));
    output
}

/// The checksum a content file was written with, as metadata stores it.
fn stored_checksum(written: &WrittenBlob) -> Option<(String, String)> {
    written
        .checksum
        .as_ref()
        .map(|(a, v)| (a.name().to_string(), v.clone()))
}

/// Whether a read asked for checksums (`x-amz-checksum-mode: ENABLED`).
fn checksum_enabled(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED)
}

fn access_denied() -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied")
}

fn malformed_xml() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

/// A continuation token: the key (or bucket name) to continue after.
fn decode_token(token: &str) -> S3Result<String> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "The continuation token provided is incorrect",
            )
        })
}

fn encode_token(after: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(after)
}

/// The tags of an `x-amz-tagging` header (none without one).
fn parse_tagging(header: Option<&str>) -> S3Result<Vec<(String, String)>> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for pair in header
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        let (k, v) = (decode(k), decode(v));
        if tags.iter().any(|(existing, _)| *existing == k) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
            ));
        }
        tags.push((k, v));
    }
    Ok(tags)
}

/// A listing page: keys and common prefixes, in order.
struct Page {
    objects: Vec<ObjectRow>,
    prefixes: Vec<String>,
    truncated: bool,
    /// The last key or prefix answered, to continue after.
    last: Option<String>,
}

impl Page {
    fn contents(&self, listing: &Listing) -> Vec<Object> {
        self.objects
            .iter()
            .map(|o| ObjectStore::list_object(o, listing.encode))
            .collect()
    }

    fn common_prefixes(&self, listing: &Listing) -> Vec<CommonPrefix> {
        self.prefixes
            .iter()
            .map(|p| CommonPrefix {
                prefix: Some(listing.enc(p)),
            })
            .collect()
    }
}

/// What every listing takes: `encoding-type`, `prefix` and `max-keys`.
struct Listing {
    encode: bool,
    prefix: String,
    max: i32,
}

impl Listing {
    fn new(
        encoding: Option<&EncodingType>,
        prefix: Option<&String>,
        max_keys: Option<i32>,
    ) -> S3Result<Listing> {
        Ok(Listing {
            encode: ObjectStore::encoding(encoding)?,
            prefix: prefix.cloned().unwrap_or_default(),
            max: max_keys.unwrap_or(MAX_LIST).clamp(0, MAX_LIST),
        })
    }

    fn limit(&self) -> usize {
        usize::try_from(self.max).unwrap_or(0)
    }

    /// A key or prefix as the listing answers it (URL-encoded when asked).
    fn enc(&self, value: &str) -> String {
        if self.encode {
            url_encode(value)
        } else {
            value.to_string()
        }
    }
}

/// An input that names one object: its bucket, key and version.
trait NamesObject {
    fn names(&self) -> (&str, &str, Option<&str>);
}

/// An input that reads an object under preconditions.
trait ReadsObject: NamesObject {
    fn conditions(&self) -> ReadConditions<'_>;
}

macro_rules! names_object {
    ($($input:ty),*) => {$(
        impl NamesObject for $input {
            fn names(&self) -> (&str, &str, Option<&str>) {
                (&self.bucket, &self.key, self.version_id.as_deref())
            }
        }
    )*};
}

names_object!(
    GetObjectInput,
    HeadObjectInput,
    PutObjectTaggingInput,
    GetObjectTaggingInput,
    DeleteObjectTaggingInput
);

macro_rules! reads_object {
    ($($input:ty),*) => {$(
        impl ReadsObject for $input {
            fn conditions(&self) -> ReadConditions<'_> {
                ReadConditions {
                    if_match: self.if_match.as_ref(),
                    if_none_match: self.if_none_match.as_ref(),
                    if_modified_since: self.if_modified_since.as_ref(),
                    if_unmodified_since: self.if_unmodified_since.as_ref(),
                }
            }
        }
    )*};
}

reads_object!(GetObjectInput, HeadObjectInput);

/// The listing a ListObjects, ListObjectsV2 or ListObjectVersions input
/// asks for (their members have the same names).
macro_rules! listing_of {
    ($input:expr) => {
        Listing::new(
            $input.encoding_type.as_ref(),
            $input.prefix.as_ref(),
            $input.max_keys,
        )
    };
}

/// The metadata a PutObject, CopyObject or CreateMultipartUpload input
/// gives (their members have the same names).
macro_rules! object_meta_of {
    ($input:expr) => {
        object_meta(
            $input.content_type.as_ref().map(ToString::to_string),
            $input.content_encoding.clone(),
            $input.content_disposition.clone(),
            $input.content_language.clone(),
            $input.cache_control.clone(),
            $input.metadata.clone(),
        )
    };
}

/// The preconditions of a read.
#[derive(Clone, Copy)]
struct ReadConditions<'a> {
    if_match: Option<&'a ETagCondition>,
    if_none_match: Option<&'a ETagCondition>,
    if_modified_since: Option<&'a Timestamp>,
    if_unmodified_since: Option<&'a Timestamp>,
}

impl ObjectStore {
    fn account<T>(&self, req: &S3Request<T>) -> S3Result<String> {
        let credentials = req.credentials.as_ref().ok_or_else(access_denied)?;
        self.accounts
            .lookup(&credentials.access_key)
            .map(|c| c.account_id)
            .ok_or_else(access_denied)
    }

    fn region<T>(req: &S3Request<T>) -> String {
        req.region
            .as_ref()
            .map_or_else(|| DEFAULT_REGION.to_string(), |r| r.as_str().to_string())
    }

    /// The bucket, if it exists and the caller owns it (or its policy let
    /// the caller in from another account: `access`'s grant).
    fn bucket<T>(&self, req: &S3Request<T>, name: &str) -> S3Result<Arc<BucketRow>> {
        let granted = req
            .extensions
            .get::<crate::access::BucketGrants>()
            .and_then(|g| g.owner(name));
        match granted {
            Some(owner) => self.owned_bucket(owner, name),
            None => self.owned_bucket(&self.account(req)?, name),
        }
    }

    /// The bucket, if it exists and `account` owns it.
    pub(crate) fn owned_bucket(&self, account: &str, name: &str) -> S3Result<Arc<BucketRow>> {
        let found = self.owners.get(name).ok_or_else(|| no_such_bucket(name))?;
        if found.bucket.account != account {
            return Err(access_denied());
        }
        Ok(found.bucket.clone())
    }

    /// The bucket and the object (or version) a request names.
    fn target<T: NamesObject>(&self, req: &S3Request<T>) -> S3Result<(Arc<BucketRow>, ObjectRow)> {
        let (bucket, key, version) = req.input.names();
        self.object_in(req, bucket, key, version, Fetch::Metadata)
    }

    fn object_in<T>(
        &self,
        req: &S3Request<T>,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        fetch: Fetch,
    ) -> S3Result<(Arc<BucketRow>, ObjectRow)> {
        let bucket = self.bucket(req, bucket)?;
        let row = self.find(&bucket.name, key, version, &req.method, fetch)?;
        Ok((bucket, row))
    }

    /// The bucket and object a read names, if its preconditions hold.
    fn read_target<T: ReadsObject>(
        &self,
        req: &S3Request<T>,
        fetch: Fetch,
    ) -> S3Result<(Arc<BucketRow>, ObjectRow)> {
        let (bucket, key, version) = req.input.names();
        let bucket = self.bucket(req, bucket)?;
        check_key(key)?;
        let row = self.find(&bucket.name, key, version, &req.method, fetch)?;
        check_conditions(&row, &req.input.conditions())?;
        Ok((bucket, row))
    }

    /// The source of a copy (CopyObject, UploadPartCopy), if its
    /// `x-amz-copy-source-if-*` conditions hold; and whether it named a
    /// version.
    fn copy_source<T>(
        &self,
        req: &S3Request<T>,
        source: &CopySource,
        if_match: Option<&ETagCondition>,
        if_none_match: Option<&ETagCondition>,
    ) -> S3Result<(Arc<BucketRow>, ObjectRow, bool)> {
        let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = source
        else {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "Copying from an access point is not implemented",
            ));
        };
        let (bucket, row) = self
            .object_in(req, bucket, key, version_id.as_deref(), Fetch::WithContent)
            .map_err(|e| match e.code() {
                S3ErrorCode::MethodNotAllowed => S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    "The source of a copy request may not specifically refer to a delete marker by version id.",
                ),
                _ => e,
            })?;
        check_copy_conditions(&row, if_match, if_none_match)?;
        Ok((bucket, row, version_id.is_some()))
    }

    /// A new content file with `len` bytes of `source` from `start`.
    async fn copy_blob(
        &self,
        algorithm: Option<Algorithm>,
        source: &ObjectRow,
        start: u64,
        len: u64,
    ) -> S3Result<WrittenBlob> {
        let mut pending = self.blobs.begin(algorithm);
        if let Some(blob) = &source.blob {
            self.blobs
                .copy_into(blob, source.content.as_ref(), start, len, &mut pending)
                .await
                .map_err(internal)?;
        }
        self.blobs.commit(pending).await.map_err(internal)
    }

    /// Records a part, removing the content of the part it replaced.
    async fn store_part(&self, upload_id: &str, part: &PartRow) -> S3Result<()> {
        if let Some(replaced) = self.meta.put_part(upload_id, part).map_err(internal)? {
            self.blobs.remove(&replaced).await;
        }
        Ok(())
    }

    /// Forgets an upload and removes its parts' content.
    async fn drop_upload(&self, upload_id: &str) -> S3Result<()> {
        for blob in self.meta.drop_upload(upload_id).map_err(internal)? {
            self.blobs.remove(&blob).await;
        }
        Ok(())
    }

    /// Replaces a version's tags; the version id the answer names.
    fn set_tags(
        &self,
        bucket: &BucketRow,
        row: &ObjectRow,
        tags: Vec<(String, String)>,
    ) -> S3Result<Option<String>> {
        self.meta
            .set_tags(&bucket.name, &row.key, &row.version_id, tags)
            .map_err(internal)?;
        Ok(ObjectStore::version_out(bucket, &row.version_id))
    }

    /// Stores (or, with `None`, removes) one of a bucket's documents.
    fn set_doc(&self, bucket: &str, doc: BucketDoc, value: Option<&str>) -> S3Result<()> {
        self.meta
            .set_bucket_doc(bucket, doc, value)
            .map_err(internal)?;
        if let BucketDoc::Policy = doc {
            self.owners.set_policy(bucket, value);
        }
        Ok(())
    }

    /// A bucket's CORS configuration, if it has one.
    pub(crate) fn cors_config(&self, bucket: &str) -> Option<CORSConfiguration> {
        let doc = match self.meta.bucket_doc(bucket, BucketDoc::Cors) {
            Ok(doc) => doc?,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a bucket's CORS configuration");
                return None;
            }
        };
        serde_json::from_str(&doc).ok()
    }

    fn next_seq(&self) -> i64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn new_version_id(bucket: &BucketRow) -> String {
        if bucket.versioning.as_deref() == Some(BucketVersioningStatus::ENABLED) {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            "null".to_string()
        }
    }

    fn version_out(bucket: &BucketRow, version_id: &str) -> Option<String> {
        bucket.versioning.is_some().then(|| version_id.to_string())
    }

    /// A new latest version of `key`: a delete marker until the caller
    /// gives it content (`size`, `etag`, `blob`).
    fn new_version(&self, bucket: &BucketRow, key: String, meta: ObjectMeta) -> ObjectRow {
        ObjectRow {
            bucket: bucket.name.clone(),
            key,
            version_id: ObjectStore::new_version_id(bucket),
            seq: self.next_seq(),
            latest: true,
            delete_marker: true,
            size: 0,
            etag: String::new(),
            modified_ms: now_ms(),
            blob: None,
            meta,
            content: None,
        }
    }

    /// A new latest version of `key` with the content of `written`.
    fn written_version(
        &self,
        bucket: &BucketRow,
        key: String,
        written: &WrittenBlob,
        etag: String,
        meta: ObjectMeta,
    ) -> S3Result<ObjectRow> {
        Ok(ObjectRow {
            delete_marker: false,
            size: i64::try_from(written.size).map_err(internal)?,
            etag,
            blob: Some(written.id.clone()),
            content: written.inline.clone(),
            ..self.new_version(bucket, key, meta)
        })
    }

    /// The object a read names: a version, or the latest (not deleted),
    /// with its small content when `fetch` asks. A version that is a
    /// delete marker refuses the request's `method`.
    pub(crate) fn find(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        method: &http::Method,
        fetch: Fetch,
    ) -> S3Result<ObjectRow> {
        match version {
            Some(v) => {
                let row = self.meta.version(bucket, key, v, fetch).map_err(internal)?;
                let row = row.ok_or_else(|| {
                    error_with(
                        S3ErrorCode::NoSuchVersion,
                        "The specified version does not exist.",
                        &[("Key", key), ("VersionId", v)],
                    )
                })?;
                if row.delete_marker {
                    return Err(error_with(
                        S3ErrorCode::MethodNotAllowed,
                        "The specified method is not allowed against this resource.",
                        &[
                            ("Method", method.as_str()),
                            ("ResourceType", "DeleteMarker"),
                        ],
                    ));
                }
                Ok(row)
            }
            None => self
                .meta
                .latest(bucket, key, fetch)
                .map_err(internal)?
                .filter(|r| !r.delete_marker)
                .ok_or_else(|| no_such_key(key)),
        }
    }

    /// Streams a request body to a new content file, verifying what the
    /// client said about it (Content-MD5, an `x-amz-checksum-*` header or
    /// trailer). Nothing is visible unless everything matched. A part of
    /// an upload created with a checksum algorithm (`upload_algorithm`) is
    /// checksummed with it whether or not the request names it, and may
    /// not name another.
    async fn receive(
        &self,
        body: Option<StreamingBlob>,
        headers: &http::HeaderMap,
        trailers: Option<&s3s::TrailingHeaders>,
        content_md5: Option<&str>,
        upload_algorithm: Option<Algorithm>,
    ) -> S3Result<WrittenBlob> {
        let requested = checksum::requested(headers)?;
        if let (Some(expected), Some(actual)) = (upload_algorithm, &requested) {
            if expected != actual.algorithm {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    format!(
                        "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                        expected.name().to_ascii_lowercase(),
                        actual.algorithm.name().to_ascii_lowercase()
                    ),
                ));
            }
        }
        let algorithm = requested.as_ref().map(|r| r.algorithm).or(upload_algorithm);
        let mut pending = self.blobs.begin(algorithm);
        if let Some(mut body) = body {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    tracing::info!(error = %e, "S3 request body ended early or failed verification");
                    S3Error::with_message(
                        S3ErrorCode::IncompleteBody,
                        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
                    )
                })?;
                pending.write(&chunk).await.map_err(internal)?;
            }
        }
        let written = self.blobs.commit(pending).await.map_err(internal)?;
        let verified = self.verify(&written, requested, trailers, content_md5);
        if verified.is_err() {
            self.blobs.remove(&written.id).await;
        }
        verified.map(|()| written)
    }

    fn verify(
        &self,
        written: &WrittenBlob,
        requested: Option<checksum::Requested>,
        trailers: Option<&s3s::TrailingHeaders>,
        content_md5: Option<&str>,
    ) -> S3Result<()> {
        checksum::verify_md5(&written.md5, content_md5)?;
        let (Some(requested), Some((algorithm, computed))) = (requested, &written.checksum) else {
            return Ok(());
        };
        let expected = requested.expected.or_else(|| {
            trailers
                .and_then(|t| t.read(|h| h.get(algorithm.header()).cloned()))
                .flatten()
                .and_then(|v| v.to_str().ok().map(str::to_string))
        });
        match expected {
            Some(expected) => checksum::verify(*algorithm, computed, &expected),
            None => Ok(()),
        }
    }

    /// Makes a new version (written, or a delete marker) the latest and
    /// tells the bucket's destinations (`event`).
    async fn publish(&self, bucket: &BucketRow, row: &ObjectRow, event: &str) -> S3Result<()> {
        self.commit_version(row).await?;
        self.notify(bucket, row, event).await;
        Ok(())
    }

    /// Records a new latest version and removes the content it replaced.
    async fn commit_version(&self, row: &ObjectRow) -> S3Result<()> {
        if let Some(replaced) = self.meta.commit_version(row).await.map_err(internal)? {
            self.blobs.remove(&replaced).await;
        }
        Ok(())
    }

    /// Removes a deleted version's content and tells the bucket's
    /// destinations.
    async fn discard(&self, bucket: &BucketRow, row: &ObjectRow) {
        if let Some(blob) = &row.blob {
            self.blobs.remove(blob).await;
        }
        self.notify(bucket, row, "ObjectRemoved:Delete").await;
    }

    async fn notify(&self, bucket: &BucketRow, row: &ObjectRow, name: &str) {
        let config = match self.meta.bucket_doc(&bucket.name, BucketDoc::Notification) {
            Ok(Some(config)) => config,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a bucket's notification configuration");
                return;
            }
        };
        let Ok(config) = serde_json::from_str::<NotificationConfiguration>(&config) else {
            return;
        };
        let created = name.starts_with("ObjectCreated");
        let event = ObjectEvent {
            account: bucket.account.clone(),
            region: bucket.region.clone(),
            bucket: bucket.name.clone(),
            key: row.key.clone(),
            name: name.to_string(),
            size: created.then_some(row.size),
            etag: created.then(|| row.etag.clone()),
            version_id: Some(row.version_id.clone()),
            sequencer: format!("{:016X}", row.seq),
            request_id: uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
            event_time: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
        };
        self.notifier.notify(&config, &event).await;
    }

    /// Current objects with `prefix` after `after`, grouped by `delimiter`.
    fn page(
        &self,
        bucket: &str,
        listing: &Listing,
        delimiter: Option<&str>,
        after: &str,
    ) -> S3Result<Page> {
        let (prefix, max) = (listing.prefix.as_str(), listing.limit());
        let mut page = Page {
            objects: Vec::new(),
            prefixes: Vec::new(),
            truncated: false,
            last: None,
        };
        let mut cursor = after.to_string();
        loop {
            let batch = self
                .meta
                .list_latest(bucket, prefix, &cursor, 1000)
                .map_err(internal)?;
            let done = batch.len() < 1000;
            for row in batch {
                cursor.clone_from(&row.key);
                let common = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
                    let rest = row.key.get(prefix.len()..)?;
                    rest.find(d)
                        .map(|at| format!("{prefix}{}", &rest[..at + d.len()]))
                });
                if let Some(common) = common {
                    if page.prefixes.last() == Some(&common) || common.as_str() <= after {
                        continue;
                    }
                    if page.objects.len() + page.prefixes.len() == max {
                        page.truncated = true;
                        return Ok(page);
                    }
                    page.last = Some(common.clone());
                    page.prefixes.push(common);
                } else {
                    if page.objects.len() + page.prefixes.len() == max {
                        page.truncated = true;
                        return Ok(page);
                    }
                    page.last = Some(row.key.clone());
                    page.objects.push(row);
                }
            }
            if done {
                return Ok(page);
            }
        }
    }

    fn list_object(row: &ObjectRow, encode: bool) -> Object {
        Object {
            key: Some(if encode {
                url_encode(&row.key)
            } else {
                row.key.clone()
            }),
            e_tag: Some(etag(&row.etag)),
            size: Some(row.size),
            last_modified: Some(timestamp(row.modified_ms)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            checksum_algorithm: row
                .meta
                .checksum
                .as_ref()
                .map(|(a, _)| vec![ChecksumAlgorithm::from(a.clone())]),
            ..Default::default()
        }
    }

    fn encoding(encoding: Option<&EncodingType>) -> S3Result<bool> {
        match encoding.map(EncodingType::as_str) {
            None => Ok(false),
            Some(EncodingType::URL) => Ok(true),
            Some(_) => Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Invalid Encoding Method specified in Request",
            )),
        }
    }
}

fn object_meta(
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    metadata: Option<Metadata>,
) -> ObjectMeta {
    ObjectMeta {
        content_type,
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        user: metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect::<BTreeMap<_, _>>(),
        ..Default::default()
    }
}

impl ObjectMeta {
    /// The checksum computed while `written` streamed in, of the whole
    /// object (`FULL_OBJECT`), or none.
    fn set_full_object_checksum(&mut self, written: &WrittenBlob) {
        self.checksum = stored_checksum(written);
        self.checksum_type = written.checksum.as_ref().map(|_| "FULL_OBJECT".to_string());
    }
}

impl UploadRow {
    /// The checksum algorithm the upload was created with.
    fn algorithm(&self) -> Option<Algorithm> {
        self.meta
            .checksum
            .as_ref()
            .and_then(|(name, _)| Algorithm::parse(name))
    }
}

fn user_metadata(meta: &ObjectMeta) -> Option<Metadata> {
    (!meta.user.is_empty()).then(|| meta.user.clone().into_iter().collect())
}

#[async_trait::async_trait]
impl S3 for SharedStore {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let s = &self.0;
        let account = s.account(&req)?;
        let name = req.input.bucket.clone();
        if !valid_bucket_name(&name) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidBucketName,
                "The specified bucket is not valid.",
            ));
        }
        let region = req
            .input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|l| l.as_str().to_string())
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| ObjectStore::region(&req));
        let row = BucketRow {
            name: name.clone(),
            account: account.clone(),
            region,
            created_ms: now_ms(),
            versioning: None,
        };
        if !s.meta.create_bucket(&row).map_err(internal)? {
            let existing = s.meta.bucket(&name).map_err(internal)?;
            return Err(match existing {
                Some(b) if b.account == account => error_with(S3ErrorCode::BucketAlreadyOwnedByYou, "Your previous request to create the named bucket succeeded and you already own it.", &[("BucketName", &name)]),
                _ => S3Error::with_message(
                    S3ErrorCode::BucketAlreadyExists,
                    "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
                ),
            });
        }
        s.owners.created(&row);
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        if !s.meta.delete_bucket(&bucket.name).map_err(internal)? {
            return Err(error_with(
                S3ErrorCode::BucketNotEmpty,
                "The bucket you tried to delete is not empty",
                &[("BucketName", &bucket.name)],
            ));
        }
        s.owners.deleted(&bucket);
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let bucket = self.0.bucket(&req, &req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(bucket.region.clone()),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let bucket = self.0.bucket(&req, &req.input.bucket)?;
        // us-east-1 answers an empty constraint, as AWS does.
        let location = (bucket.region != DEFAULT_REGION)
            .then(|| BucketLocationConstraint::from(bucket.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: location,
        }))
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let s = &self.0;
        let account = s.account(&req)?;
        let after = match &req.input.continuation_token {
            Some(token) => decode_token(token)?,
            None => String::new(),
        };
        let max = usize::try_from(req.input.max_buckets.unwrap_or(10_000).clamp(1, 10_000))
            .unwrap_or(10_000);
        let prefix = req.input.prefix.clone().unwrap_or_default();
        let mut buckets: Vec<BucketRow> = s
            .meta
            .buckets(&account, &after)
            .map_err(internal)?
            .into_iter()
            .filter(|b| b.name.starts_with(&prefix))
            .filter(|b| {
                req.input
                    .bucket_region
                    .as_ref()
                    .is_none_or(|r| *r == b.region)
            })
            .collect();
        let truncated = buckets.len() > max;
        buckets.truncate(max);
        let token = truncated
            .then(|| buckets.last())
            .flatten()
            .map(|b| encode_token(&b.name));
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(
                buckets
                    .into_iter()
                    .map(|b| Bucket {
                        name: Some(b.name),
                        creation_date: Some(timestamp(b.created_ms)),
                        bucket_region: Some(b.region),
                    })
                    .collect(),
            ),
            owner: Some(Owner {
                id: Some(account.clone()),
                display_name: Some(account),
            }),
            continuation_token: token,
            prefix: req.input.prefix.clone(),
        }))
    }

    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let key = req.input.key.clone();
        check_key(&key)?;
        let conditional = |current: Option<&ObjectRow>, input: &PutObjectInput| -> S3Result<()> {
            let current = current.filter(|r| !r.delete_marker);
            if let Some(cond) = &input.if_none_match {
                if current.is_some_and(|r| condition_matches(cond, &r.etag)) {
                    return Err(precondition_failed("If-None-Match"));
                }
            }
            if let Some(cond) = &input.if_match {
                match current {
                    None => return Err(no_such_key(&key)),
                    Some(r) if !condition_matches(cond, &r.etag) => {
                        return Err(precondition_failed("If-Match"))
                    }
                    Some(_) => {}
                }
            }
            Ok(())
        };
        let tags = parse_tagging(req.input.tagging.as_deref())?;
        let body = req.input.body.take();
        let written = s
            .receive(
                body,
                &req.headers,
                req.trailing_headers.as_ref(),
                req.input.content_md5.as_deref(),
                None,
            )
            .await?;
        // The condition is checked once the body is in (answering before it
        // is read would cut the client's connection), so a write that raced
        // this one is seen too.
        if req.input.if_match.is_some() || req.input.if_none_match.is_some() {
            let current = s
                .meta
                .latest(&bucket.name, &key, Fetch::Metadata)
                .map_err(internal)?;
            if let Err(e) = conditional(current.as_ref(), &req.input) {
                s.blobs.remove(&written.id).await;
                return Err(e);
            }
        }
        let input = req.input;
        let mut meta = object_meta_of!(input);
        meta.tags = tags;
        meta.set_full_object_checksum(&written);
        let row = s.written_version(&bucket, key, &written, hex::encode(written.md5), meta)?;
        s.publish(&bucket, &row, "ObjectCreated:Put").await?;
        Ok(S3Response::new(written!(PutObjectOutput, row, {
            version_id: ObjectStore::version_out(&bucket, &row.version_id),
        })))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let s = &self.0;
        let input = &req.input;
        let (bucket, row) = s.read_target(&req, Fetch::WithContent)?;
        let size = u64::try_from(row.size).unwrap_or(0);
        let (range, content_range) = match &input.range {
            Some(range) => {
                let r = range.check(size).map_err(|_| {
                    let asked = req
                        .headers
                        .get(http::header::RANGE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    error_with(
                        S3ErrorCode::InvalidRange,
                        "The requested range is not satisfiable",
                        &[
                            ("RangeRequested", asked),
                            ("ActualObjectSize", &size.to_string()),
                        ],
                    )
                })?;
                let content_range = format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1));
                (r, Some(content_range))
            }
            None => (0..size, None),
        };
        let len = range.end - range.start;
        let stream = match &row.blob {
            Some(blob) => s
                .blobs
                .read(blob, row.content.as_ref(), range.start, len)
                .await
                .map_err(internal)?,
            None => return Err(no_such_key(&row.key)),
        };
        let with_checksum =
            content_range.is_none() && checksum_enabled(input.checksum_mode.as_ref());
        let tags = row.meta.tags.len();
        Ok(S3Response::new(GetObjectOutput {
            body: Some(StreamingBlob::wrap(stream)),
            content_length: Some(i64::try_from(len).map_err(internal)?),
            content_range,
            tag_count: (tags > 0).then(|| i32::try_from(tags).unwrap_or(i32::MAX)),
            ..object_headers!(GetObjectOutput, input, bucket, row, with_checksum)
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let s = &self.0;
        let input = &req.input;
        let (bucket, row) = s.read_target(&req, Fetch::Metadata)?;
        let with_checksum = checksum_enabled(input.checksum_mode.as_ref());
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(row.size),
            ..object_headers!(HeadObjectOutput, input, bucket, row, with_checksum)
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        check_key(&req.input.key)?;
        if let Some(cond) = &req.input.if_match {
            let current = s
                .meta
                .latest(&bucket.name, &req.input.key, Fetch::Metadata)
                .map_err(internal)?;
            match current.filter(|r| !r.delete_marker) {
                Some(r) if condition_matches(cond, &r.etag) => {}
                Some(_) => return Err(precondition_failed("If-Match")),
                None => return Err(no_such_key(&req.input.key)),
            }
        }
        let out = delete_one(s, &bucket, &req.input.key, req.input.version_id.as_deref()).await?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: out.delete_marker.then_some(true),
            version_id: out.version_id,
            ..Default::default()
        }))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let quiet = req.input.delete.quiet.unwrap_or(false);
        // Under IAM each key is its own s3:DeleteObject decision.
        let per_key = req.extensions.get::<crate::access::KeyAccess>();
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for object in &req.input.delete.objects {
            let action = match object.version_id {
                Some(_) => "s3:DeleteObjectVersion",
                None => "s3:DeleteObject",
            };
            let resource = format!("arn:aws:s3:::{}/{}", bucket.name, object.key);
            let outcome = match check_key(&object.key) {
                Err(e) => Err(e),
                Ok(()) if per_key.is_some_and(|access| !access.allows(action, &resource)) => {
                    Err(access_denied())
                }
                Ok(()) => delete_one(s, &bucket, &object.key, object.version_id.as_deref()).await,
            };
            match outcome {
                Ok(out) if !quiet => deleted.push(DeletedObject {
                    key: Some(object.key.clone()),
                    version_id: object.version_id.clone(),
                    delete_marker: out.delete_marker.then_some(true),
                    delete_marker_version_id: out
                        .delete_marker
                        .then(|| out.version_id.clone())
                        .flatten(),
                }),
                Ok(_) => {}
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(object.key.clone()),
                    message: e.message().map(str::to_string),
                    version_id: object.version_id.clone(),
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        check_key(&req.input.key)?;
        let input = &req.input;
        let (source_bucket, source, versioned) = s.copy_source(
            &req,
            &input.copy_source,
            input.copy_source_if_match.as_ref(),
            input.copy_source_if_none_match.as_ref(),
        )?;
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        if !replace && source_bucket.name == bucket.name && source.key == input.key && !versioned {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
            ));
        }
        let algorithm = input
            .checksum_algorithm
            .as_ref()
            .map(|a| Algorithm::parse(a.as_str()).ok_or_else(checksum::unsupported))
            .transpose()?
            .or_else(|| {
                source
                    .meta
                    .checksum
                    .as_ref()
                    .and_then(|(a, _)| Algorithm::parse(a))
            });
        let written = s
            .copy_blob(
                algorithm,
                &source,
                0,
                u64::try_from(source.size).unwrap_or(0),
            )
            .await?;
        let mut meta = if replace {
            object_meta_of!(input)
        } else {
            source.meta.clone()
        };
        meta.parts_count = None;
        meta.set_full_object_checksum(&written);
        if input
            .tagging_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == TaggingDirective::REPLACE)
        {
            meta.tags = parse_tagging(input.tagging.as_deref())?;
        }
        let row = s.written_version(
            &bucket,
            input.key.clone(),
            &written,
            hex::encode(written.md5),
            meta,
        )?;
        s.publish(&bucket, &row, "ObjectCreated:Copy").await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(written!(CopyObjectResult, row, {
                last_modified: Some(timestamp(row.modified_ms)),
            })),
            version_id: ObjectStore::version_out(&bucket, &row.version_id),
            copy_source_version_id: ObjectStore::version_out(&source_bucket, &source.version_id),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let input = &req.input;
        let listing = listing_of!(input)?;
        let marker = input.marker.clone().unwrap_or_default();
        let page = s.page(&bucket.name, &listing, input.delimiter.as_deref(), &marker)?;
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(bucket.name.clone()),
            prefix: Some(listing.enc(&listing.prefix)),
            marker: Some(listing.enc(&marker)),
            max_keys: Some(listing.max),
            is_truncated: Some(page.truncated),
            next_marker: (page.truncated && input.delimiter.is_some())
                .then(|| page.last.as_deref().map(|l| listing.enc(l)))
                .flatten(),
            contents: Some(page.contents(&listing)),
            common_prefixes: Some(page.common_prefixes(&listing)),
            delimiter: input.delimiter.as_deref().map(|d| listing.enc(d)),
            encoding_type: input.encoding_type.clone(),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let input = &req.input;
        let listing = listing_of!(input)?;
        let after = match &input.continuation_token {
            Some(token) => decode_token(token)?,
            None => input.start_after.clone().unwrap_or_default(),
        };
        let page = s.page(&bucket.name, &listing, input.delimiter.as_deref(), &after)?;
        let count = page.objects.len() + page.prefixes.len();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(bucket.name.clone()),
            prefix: Some(listing.enc(&listing.prefix)),
            max_keys: Some(listing.max),
            key_count: Some(i32::try_from(count).unwrap_or(i32::MAX)),
            continuation_token: input.continuation_token.clone(),
            is_truncated: Some(page.truncated),
            next_continuation_token: page
                .truncated
                .then_some(page.last.as_deref())
                .flatten()
                .map(encode_token),
            contents: Some(page.contents(&listing)),
            common_prefixes: Some(page.common_prefixes(&listing)),
            delimiter: input.delimiter.as_deref().map(|d| listing.enc(d)),
            encoding_type: input.encoding_type.clone(),
            start_after: input.start_after.as_deref().map(|a| listing.enc(a)),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        check_key(&req.input.key)?;
        let input = req.input;
        let algorithm = input
            .checksum_algorithm
            .as_ref()
            .map(|a| Algorithm::parse(a.as_str()).ok_or_else(checksum::unsupported))
            .transpose()?;
        let mode = multipart_checksum_type(algorithm, input.checksum_type.as_ref())?;
        let mut meta = object_meta_of!(input);
        meta.tags = parse_tagging(input.tagging.as_deref())?;
        // The algorithm the object's checksum will be of; its value is
        // known at completion.
        meta.checksum = algorithm.map(|a| (a.name().to_string(), String::new()));
        meta.checksum_type = mode.clone();
        let upload = UploadRow {
            upload_id: uuid::Uuid::new_v4().simple().to_string(),
            bucket: bucket.name.clone(),
            key: input.key.clone(),
            initiated_ms: now_ms(),
            meta,
        };
        s.meta.create_upload(&upload).map_err(internal)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(bucket.name.clone()),
            key: Some(input.key),
            upload_id: Some(upload.upload_id),
            checksum_algorithm: input.checksum_algorithm,
            checksum_type: mode.map(ChecksumType::from),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let upload = upload_of(s, &bucket, &req.input.upload_id, &req.input.key)?;
        check_part_number(req.input.part_number)?;
        let body = req.input.body.take();
        let written = s
            .receive(
                body,
                &req.headers,
                req.trailing_headers.as_ref(),
                req.input.content_md5.as_deref(),
                upload.algorithm(),
            )
            .await?;
        let part = new_part(req.input.part_number, &written, stored_checksum(&written))?;
        s.store_part(&upload.upload_id, &part).await?;
        Ok(S3Response::new(with_sums(
            UploadPartOutput {
                e_tag: Some(etag(&part.etag)),
                ..Default::default()
            },
            part.checksum.as_ref(),
        )))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let upload = upload_of(s, &bucket, &req.input.upload_id, &req.input.key)?;
        check_part_number(req.input.part_number)?;
        let (source_bucket, source, _) = s.copy_source(
            &req,
            &req.input.copy_source,
            req.input.copy_source_if_match.as_ref(),
            req.input.copy_source_if_none_match.as_ref(),
        )?;
        let size = u64::try_from(source.size).unwrap_or(0);
        let (start, len) = match &req.input.copy_source_range {
            Some(range) => {
                let bad = || {
                    S3Error::with_message(
                        S3ErrorCode::InvalidRequest,
                        "The specified copy range is invalid for the source object size",
                    )
                };
                let spec = range.strip_prefix("bytes=").ok_or_else(bad)?;
                let (a, b) = spec.split_once('-').ok_or_else(bad)?;
                let a: u64 = a.parse().map_err(|_| bad())?;
                let b: u64 = b.parse().map_err(|_| bad())?;
                if a > b || b >= size {
                    return Err(bad());
                }
                (a, b - a + 1)
            }
            None => (0, size),
        };
        let written = s.copy_blob(upload.algorithm(), &source, start, len).await?;
        let part = new_part(req.input.part_number, &written, stored_checksum(&written))?;
        s.store_part(&upload.upload_id, &part).await?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(with_sums(
                CopyPartResult {
                    e_tag: Some(etag(&part.etag)),
                    last_modified: Some(timestamp(part.modified_ms)),
                    ..Default::default()
                },
                part.checksum.as_ref(),
            )),
            copy_source_version_id: ObjectStore::version_out(&source_bucket, &source.version_id),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let upload = upload_of(s, &bucket, &req.input.upload_id, &req.input.key)?;
        let asked = req
            .input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.clone())
            .unwrap_or_default();
        if asked.is_empty() {
            return Err(malformed_xml());
        }
        let mode = upload.meta.checksum_type.as_deref();
        if let Some(asked_mode) = &req.input.checksum_type {
            if Some(asked_mode.as_str()) != mode {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    format!(
                        "The upload was created using the {} checksum mode. The complete request must use the same checksum mode.",
                        mode.unwrap_or("null")
                    ),
                ));
            }
        }
        let algorithm = upload.algorithm();
        let full_object = mode == Some(ChecksumType::FULL_OBJECT);
        let stored = s.meta.parts(&upload.upload_id).map_err(internal)?;
        let mut chosen: Vec<&PartRow> = Vec::new();
        let mut previous = 0;
        for part in &asked {
            let number = part.part_number.unwrap_or(0);
            if number <= previous {
                return Err(error_with(
                    S3ErrorCode::InvalidPartOrder,
                    "The list of parts was not in ascending order. Parts must be ordered by part number.",
                    &[("UploadId", &upload.upload_id)],
                ));
            }
            previous = number;
            let sent = part
                .e_tag
                .as_ref()
                .map(|e| e.value().trim_matches('"').to_string());
            let invalid_part = || {
                invalid_part(
                    &upload.upload_id,
                    number,
                    sent.as_deref().unwrap_or_default(),
                )
            };
            let found = stored
                .iter()
                .find(|p| p.part_number == number)
                .ok_or_else(invalid_part)?;
            if sent.as_ref().is_some_and(|e| *e != found.etag) {
                return Err(invalid_part());
            }
            // An upload created with an algorithm: a `COMPOSITE` one needs
            // each part's checksum in the request; whatever is given must
            // be the part's.
            if let Some(a) = algorithm {
                match part.sent_checksum(a) {
                    None if !full_object => {
                        return Err(S3Error::with_message(
                            S3ErrorCode::InvalidRequest,
                            format!(
                                "The upload was created using a {} checksum. The complete request must include the checksum for each part. It was missing for part {number} in the request.",
                                a.name().to_ascii_lowercase()
                            ),
                        ))
                    }
                    Some(value)
                        if found.checksum.as_ref().map(|(_, v)| v.as_str()) != Some(value) =>
                    {
                        return Err(invalid_part())
                    }
                    _ => {}
                }
            }
            chosen.push(found);
        }
        let last = chosen.len() - 1;
        for (i, part) in chosen.iter().enumerate() {
            if i < last && part.size < MIN_PART_SIZE {
                return Err(error_with(
                    S3ErrorCode::EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed size",
                    &[
                        ("ProposedSize", &part.size.to_string()),
                        ("MinSizeAllowed", &MIN_PART_SIZE.to_string()),
                        ("PartNumber", &part.part_number.to_string()),
                        ("ETag", &part.etag),
                    ],
                ));
            }
        }
        if let Some(cond) = &req.input.if_none_match {
            let current = s
                .meta
                .latest(&bucket.name, &upload.key, Fetch::Metadata)
                .map_err(internal)?;
            if current
                .filter(|r| !r.delete_marker)
                .is_some_and(|r| condition_matches(cond, &r.etag))
            {
                return Err(precondition_failed("If-None-Match"));
            }
        }
        let mut pending = s.blobs.begin(algorithm.filter(|_| full_object));
        let mut md5s = crate::md5::Md5::new();
        for part in &chosen {
            // Small parts are read one at a time: an upload may have
            // thousands.
            let content =
                if is_inline(&part.blob) {
                    let content = s.meta.small_content(&part.blob).map_err(internal)?;
                    // An upload of the same part number replaced it meanwhile.
                    Some(content.ok_or_else(|| {
                        invalid_part(&upload.upload_id, part.part_number, &part.etag)
                    })?)
                } else {
                    None
                };
            s.blobs
                .copy_into(
                    &part.blob,
                    content.as_ref(),
                    0,
                    u64::try_from(part.size).unwrap_or(0),
                    &mut pending,
                )
                .await
                .map_err(internal)?;
            md5s.update(hex::decode(&part.etag).map_err(internal)?);
        }
        let written = s.blobs.commit(pending).await.map_err(internal)?;
        // A full-object checksum the completion states must be the one
        // computed over the parts as streamed.
        if let (Some((a, computed)), true) = (&written.checksum, full_object) {
            if let Some(expected) = req.input.sent_checksum(*a) {
                if expected != computed {
                    s.blobs.remove(&written.id).await;
                    return Err(S3Error::with_message(
                        S3ErrorCode::BadDigest,
                        format!(
                            "The {} you specified did not match the calculated checksum.",
                            a.name().to_ascii_lowercase()
                        ),
                    ));
                }
            }
        }
        let mut meta = upload.meta.clone();
        meta.parts_count = Some(i32::try_from(chosen.len()).unwrap_or(i32::MAX));
        meta.checksum = match (algorithm, full_object) {
            (Some(_), true) => stored_checksum(&written),
            (Some(a), false) => composite_checksum(a, &chosen).map(|v| (a.name().to_string(), v)),
            (None, _) => None,
        };
        if meta.checksum.is_none() {
            meta.checksum_type = None;
        }
        let etag_value = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
        let row = s.written_version(&bucket, upload.key.clone(), &written, etag_value, meta)?;
        s.publish(&bucket, &row, "ObjectCreated:CompleteMultipartUpload")
            .await?;
        s.drop_upload(&upload.upload_id).await?;
        Ok(S3Response::new(
            written!(CompleteMultipartUploadOutput, row, {
                bucket: Some(bucket.name.clone()),
                key: Some(row.key.clone()),
                location: Some(format!("/{}/{}", bucket.name, row.key)),
                version_id: ObjectStore::version_out(&bucket, &row.version_id),
            }),
        ))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let upload = upload_of(s, &bucket, &req.input.upload_id, &req.input.key)?;
        s.drop_upload(&upload.upload_id).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let upload = upload_of(s, &bucket, &req.input.upload_id, &req.input.key)?;
        let marker = req.input.part_number_marker.unwrap_or(0);
        let max = req.input.max_parts.unwrap_or(1000).clamp(0, 1000);
        let mut parts: Vec<PartRow> = s
            .meta
            .parts(&upload.upload_id)
            .map_err(internal)?
            .into_iter()
            .filter(|p| p.part_number > marker)
            .collect();
        let limit = usize::try_from(max).unwrap_or(0);
        let truncated = parts.len() > limit;
        parts.truncate(limit);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(bucket.name.clone()),
            key: Some(upload.key),
            upload_id: Some(upload.upload_id),
            part_number_marker: req.input.part_number_marker,
            next_part_number_marker: parts.last().map(|p| p.part_number),
            max_parts: Some(max),
            is_truncated: Some(truncated),
            parts: Some(
                parts
                    .iter()
                    .map(|p| {
                        with_sums(
                            Part {
                                part_number: Some(p.part_number),
                                e_tag: Some(etag(&p.etag)),
                                size: Some(p.size),
                                last_modified: Some(timestamp(p.modified_ms)),
                                ..Default::default()
                            },
                            p.checksum.as_ref(),
                        )
                    })
                    .collect(),
            ),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let prefix = req.input.prefix.clone().unwrap_or_default();
        let uploads = s
            .meta
            .uploads(&bucket.name)
            .map_err(internal)?
            .into_iter()
            .filter(|u| u.key.starts_with(&prefix))
            .filter(|u| req.input.key_marker.as_ref().is_none_or(|m| u.key > *m))
            .map(|u| MultipartUpload {
                key: Some(u.key),
                upload_id: Some(u.upload_id),
                initiated: Some(timestamp(u.initiated_ms)),
                storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(bucket.name.clone()),
            prefix: req.input.prefix.clone(),
            key_marker: req.input.key_marker.clone(),
            upload_id_marker: req.input.upload_id_marker.clone(),
            max_uploads: Some(req.input.max_uploads.unwrap_or(1000)),
            is_truncated: Some(false),
            uploads: Some(uploads),
            ..Default::default()
        }))
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let status = req
            .input
            .versioning_configuration
            .status
            .as_ref()
            .map(|st| st.as_str().to_string())
            .filter(|st| st == "Enabled" || st == "Suspended")
            .ok_or_else(malformed_xml)?;
        s.meta
            .set_versioning(&bucket.name, &status)
            .map_err(internal)?;
        s.owners.set_versioning(&bucket.name, &status);
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let bucket = self.0.bucket(&req, &req.input.bucket)?;
        Ok(S3Response::new(GetBucketVersioningOutput {
            status: bucket.versioning.clone().map(BucketVersioningStatus::from),
            ..Default::default()
        }))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let input = &req.input;
        let listing = listing_of!(input)?;
        let limit = listing.limit();
        let rows = s
            .meta
            .list_versions(
                &bucket.name,
                &listing.prefix,
                input.key_marker.as_deref().unwrap_or(""),
                limit + 1,
            )
            .map_err(internal)?;
        let truncated = rows.len() > limit;
        let owner = Owner {
            id: Some(bucket.account.clone()),
            display_name: Some(bucket.account.clone()),
        };
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        for row in rows.iter().take(limit) {
            if row.delete_marker {
                markers.push(DeleteMarkerEntry {
                    key: Some(listing.enc(&row.key)),
                    version_id: Some(row.version_id.clone()),
                    is_latest: Some(row.latest),
                    last_modified: Some(timestamp(row.modified_ms)),
                    owner: Some(owner.clone()),
                });
            } else {
                versions.push(ObjectVersion {
                    key: Some(listing.enc(&row.key)),
                    version_id: Some(row.version_id.clone()),
                    is_latest: Some(row.latest),
                    last_modified: Some(timestamp(row.modified_ms)),
                    e_tag: Some(etag(&row.etag)),
                    size: Some(row.size),
                    storage_class: Some(ObjectVersionStorageClass::from_static(
                        ObjectVersionStorageClass::STANDARD,
                    )),
                    owner: Some(owner.clone()),
                    ..Default::default()
                });
            }
        }
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(bucket.name.clone()),
            prefix: Some(listing.enc(&listing.prefix)),
            max_keys: Some(listing.max),
            is_truncated: Some(truncated),
            key_marker: input.key_marker.clone(),
            next_key_marker: truncated
                .then(|| rows.get(limit.saturating_sub(1)).map(|r| r.key.clone()))
                .flatten(),
            versions: Some(versions),
            delete_markers: Some(markers),
            encoding_type: input.encoding_type.clone(),
            ..Default::default()
        }))
    }

    async fn put_bucket_notification_configuration(
        &self,
        req: S3Request<PutBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketNotificationConfigurationOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let config = &req.input.notification_configuration;
        s.notifier
            .validate(
                &bucket.account,
                &bucket.region,
                &bucket.name,
                config,
                req.input.skip_destination_validation.unwrap_or(false),
            )
            .await?;
        let json = serde_json::to_string(config).map_err(internal)?;
        s.set_doc(&bucket.name, BucketDoc::Notification, Some(&json))?;
        Ok(S3Response::new(
            PutBucketNotificationConfigurationOutput::default(),
        ))
    }

    async fn get_bucket_notification_configuration(
        &self,
        req: S3Request<GetBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketNotificationConfigurationOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let config: NotificationConfiguration = s
            .meta
            .bucket_doc(&bucket.name, BucketDoc::Notification)
            .map_err(internal)?
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(internal)?
            .unwrap_or_default();
        Ok(S3Response::new(GetBucketNotificationConfigurationOutput {
            event_bridge_configuration: config.event_bridge_configuration,
            lambda_function_configurations: config.lambda_function_configurations,
            queue_configurations: config.queue_configurations,
            topic_configurations: config.topic_configurations,
        }))
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let s = &self.0;
        let (bucket, row) = s.target(&req)?;
        let tags = req
            .input
            .tagging
            .tag_set
            .iter()
            .map(|t| {
                (
                    t.key.clone().unwrap_or_default(),
                    t.value.clone().unwrap_or_default(),
                )
            })
            .collect();
        Ok(S3Response::new(PutObjectTaggingOutput {
            version_id: s.set_tags(&bucket, &row, tags)?,
        }))
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let s = &self.0;
        let (bucket, row) = s.target(&req)?;
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: row
                .meta
                .tags
                .iter()
                .map(|(k, v)| Tag {
                    key: Some(k.clone()),
                    value: Some(v.clone()),
                })
                .collect(),
            version_id: ObjectStore::version_out(&bucket, &row.version_id),
        }))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let s = &self.0;
        let (bucket, row) = s.target(&req)?;
        Ok(S3Response::new(DeleteObjectTaggingOutput {
            version_id: s.set_tags(&bucket, &row, Vec::new())?,
        }))
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        crate::cors::validate(&req.input.cors_configuration)?;
        let json = serde_json::to_string(&req.input.cors_configuration).map_err(internal)?;
        s.set_doc(&bucket.name, BucketDoc::Cors, Some(&json))?;
        Ok(S3Response::new(PutBucketCorsOutput::default()))
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let config = s.cors_config(&bucket.name).ok_or_else(|| {
            error_with(
                S3ErrorCode::NoSuchCORSConfiguration,
                "The CORS configuration does not exist",
                &[("BucketName", &bucket.name)],
            )
        })?;
        Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(config.cors_rules),
        }))
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        s.set_doc(&bucket.name, BucketDoc::Cors, None)?;
        Ok(S3Response::new(DeleteBucketCorsOutput::default()))
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        if serde_json::from_str::<serde_json::Value>(&req.input.policy).is_err() {
            return Err(S3Error::with_message(
                S3ErrorCode::MalformedPolicy,
                "Policies must be valid JSON and the first byte must be '{'",
            ));
        }
        s.set_doc(&bucket.name, BucketDoc::Policy, Some(&req.input.policy))?;
        Ok(S3Response::new(PutBucketPolicyOutput::default()))
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        let policy = s
            .owners
            .get(&bucket.name)
            .and_then(|o| o.policy.clone())
            .ok_or_else(|| {
                error_with(
                    S3ErrorCode::NoSuchBucketPolicy,
                    "The bucket policy does not exist",
                    &[("BucketName", &bucket.name)],
                )
            })?;
        Ok(S3Response::new(GetBucketPolicyOutput {
            policy: Some(policy),
        }))
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        let s = &self.0;
        let bucket = s.bucket(&req, &req.input.bucket)?;
        s.set_doc(&bucket.name, BucketDoc::Policy, None)?;
        Ok(S3Response::new(DeleteBucketPolicyOutput::default()))
    }
}

/// What one delete did.
struct Deleted {
    delete_marker: bool,
    version_id: Option<String>,
}

async fn delete_one(
    s: &ObjectStore,
    bucket: &BucketRow,
    key: &str,
    version: Option<&str>,
) -> S3Result<Deleted> {
    if let Some(version) = version {
        let removed = s
            .meta
            .delete_version(&bucket.name, key, version)
            .map_err(internal)?;
        if let Some(row) = &removed {
            s.discard(bucket, row).await;
        }
        return Ok(Deleted {
            delete_marker: removed.is_some_and(|r| r.delete_marker),
            version_id: Some(version.to_string()),
        });
    }
    match bucket.versioning.as_deref() {
        None => {
            let removed = s
                .meta
                .delete_version(&bucket.name, key, "null")
                .map_err(internal)?;
            if let Some(row) = removed {
                s.discard(bucket, &row).await;
            }
            Ok(Deleted {
                delete_marker: false,
                version_id: None,
            })
        }
        Some(_) => {
            let row = s.new_version(bucket, key.to_string(), ObjectMeta::default());
            s.publish(bucket, &row, "ObjectRemoved:DeleteMarkerCreated")
                .await?;
            Ok(Deleted {
                delete_marker: true,
                version_id: Some(row.version_id),
            })
        }
    }
}

/// The checksum type of a multipart upload, checked as AWS does: CRCs
/// may be either (CRC64NVME only `FULL_OBJECT`), SHAs only `COMPOSITE`.
fn multipart_checksum_type(
    algorithm: Option<Algorithm>,
    asked: Option<&ChecksumType>,
) -> S3Result<Option<String>> {
    let Some(algorithm) = algorithm else {
        return match asked {
            Some(_) => Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
            )),
            None => Ok(None),
        };
    };
    let name = algorithm.name().to_ascii_lowercase();
    let mode = match asked.map(ChecksumType::as_str) {
        Some(mode) => mode.to_string(),
        None if algorithm == Algorithm::Crc64Nvme => ChecksumType::FULL_OBJECT.to_string(),
        None => ChecksumType::COMPOSITE.to_string(),
    };
    match mode.as_str() {
        ChecksumType::COMPOSITE if algorithm == Algorithm::Crc64Nvme => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            format!(
                "The COMPOSITE checksum type cannot be used with the {name} checksum algorithm."
            ),
        )),
        ChecksumType::FULL_OBJECT if !algorithm.is_crc() => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            format!(
                "The FULL_OBJECT checksum type cannot be used with the {name} checksum algorithm."
            ),
        )),
        ChecksumType::COMPOSITE | ChecksumType::FULL_OBJECT => Ok(Some(mode)),
        _ => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Value for x-amz-checksum-type header is invalid.",
        )),
    }
}

/// A `COMPOSITE` checksum: the checksum of the parts' checksums, then
/// `-N`; none when a part has no checksum of that algorithm.
fn composite_checksum(algorithm: Algorithm, parts: &[&PartRow]) -> Option<String> {
    use base64::Engine as _;
    let mut hasher = checksum::Hasher::new(Some(algorithm));
    for part in parts {
        let (name, value) = part.checksum.as_ref()?;
        if Algorithm::parse(name) != Some(algorithm) {
            return None;
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?;
        hasher.update(&raw);
    }
    let (_, value) = hasher.finish()?;
    Some(format!("{value}-{}", parts.len()))
}

fn upload_of(
    s: &ObjectStore,
    bucket: &BucketRow,
    upload_id: &str,
    key: &str,
) -> S3Result<UploadRow> {
    s.meta
        .upload(upload_id)
        .map_err(internal)?
        .filter(|u| u.bucket == bucket.name && u.key == key)
        .ok_or_else(|| no_such_upload(upload_id))
}

/// A part a completion names that is not stored as named.
fn invalid_part(upload_id: &str, number: i32, etag: &str) -> S3Error {
    error_with(
        S3ErrorCode::InvalidPart,
        "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
        &[
            ("UploadId", upload_id),
            ("PartNumber", &number.to_string()),
            ("ETag", etag),
        ],
    )
}

/// A part with the content of `written`.
fn new_part(
    part_number: i32,
    written: &WrittenBlob,
    checksum: Option<(String, String)>,
) -> S3Result<PartRow> {
    Ok(PartRow {
        part_number,
        size: i64::try_from(written.size).map_err(internal)?,
        etag: hex::encode(written.md5),
        modified_ms: now_ms(),
        blob: written.id.clone(),
        checksum,
        content: written.inline.clone(),
    })
}

fn check_part_number(number: i32) -> S3Result<()> {
    if (1..=10_000).contains(&number) {
        Ok(())
    } else {
        Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        ))
    }
}

fn check_conditions(row: &ObjectRow, conditions: &ReadConditions<'_>) -> S3Result<()> {
    let ReadConditions {
        if_match,
        if_none_match,
        if_modified_since,
        if_unmodified_since,
    } = *conditions;
    let modified = row.modified_ms / 1000;
    if let Some(cond) = if_match {
        if !condition_matches(cond, &row.etag) {
            return Err(precondition_failed("If-Match"));
        }
    } else if let Some(since) = if_unmodified_since {
        if modified > seconds(since) {
            return Err(precondition_failed("If-Unmodified-Since"));
        }
    }
    if let Some(cond) = if_none_match {
        if condition_matches(cond, &row.etag) {
            return Err(S3Error::new(S3ErrorCode::NotModified));
        }
    } else if let Some(since) = if_modified_since {
        if modified <= seconds(since) {
            return Err(S3Error::new(S3ErrorCode::NotModified));
        }
    }
    Ok(())
}

fn check_copy_conditions(
    source: &ObjectRow,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<()> {
    if if_match.is_some_and(|c| !condition_matches(c, &source.etag)) {
        return Err(precondition_failed("x-amz-copy-source-If-Match"));
    }
    if if_none_match.is_some_and(|c| condition_matches(c, &source.etag)) {
        return Err(precondition_failed("x-amz-copy-source-If-None-Match"));
    }
    Ok(())
}
