//! Objects other services read: Lambda takes function code and layer
//! content from S3 (`S3Bucket`/`S3Key`/`S3ObjectVersion`), with the
//! caller's account, as AWS's Lambda reads it with the caller's access.

use s3s::S3Error;

use crate::ObjectStore;

/// Why an object could not be read: S3's own answer (`NoSuchBucket`,
/// `NoSuchKey`, `NoSuchVersion`, `AccessDenied`, ...), which the calling
/// service quotes.
#[derive(Debug, thiserror::Error)]
#[error("S3 Error Code: {code}. S3 Error Message: {message}")]
pub struct ReadError {
    pub code: String,
    pub message: String,
}

impl From<S3Error> for ReadError {
    fn from(err: S3Error) -> ReadError {
        ReadError {
            code: err.code().as_str().to_string(),
            message: err.message().unwrap_or_default().to_string(),
        }
    }
}

impl ObjectStore {
    /// The content of `bucket`/`key` (the latest version, or `version`) as
    /// `account` may read it from `region`: a content file open for reading
    /// in place (the caller streams it, and it stays readable while open
    /// even if the object is overwritten or deleted meanwhile), or small
    /// content read whole.
    pub async fn open_object(
        &self,
        account: &str,
        region: &str,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<crate::blob::OpenContent, ReadError> {
        let bucket = self.owned_bucket(account, bucket)?;
        if bucket.region != region {
            return Err(ReadError {
                code: "PermanentRedirect".to_string(),
                message: format!(
                    "The bucket is in this region: {}. Please use this region to retry the request",
                    bucket.region
                ),
            });
        }
        let row = self.find(
            &bucket.name,
            key,
            version,
            &http::Method::GET,
            crate::meta::Fetch::WithContent,
        )?;
        let Some(blob) = &row.blob else {
            return Err(crate::ops::no_such_key(key).into());
        };
        Ok(self
            .blobs
            .open_content(blob, row.content.as_ref())
            .await
            .map_err(crate::ops::internal)?)
    }
}
