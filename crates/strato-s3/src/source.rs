//! Objects other services read whole: Lambda takes function code and
//! layer content from S3 (`S3Bucket`/`S3Key`/`S3ObjectVersion`), with the
//! caller's account, as AWS's Lambda reads it with the caller's access.

use futures::StreamExt;
use s3s::S3Error;

use crate::ObjectStore;

/// Why an object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// S3's own answer (`NoSuchBucket`, `NoSuchKey`, `NoSuchVersion`,
    /// `AccessDenied`, ...), which the calling service quotes.
    #[error("S3 Error Code: {code}. S3 Error Message: {message}")]
    S3 { code: String, message: String },
    /// The object is larger than the caller takes.
    #[error("object of {0} bytes is over the limit")]
    TooLarge(u64),
}

impl From<S3Error> for ReadError {
    fn from(err: S3Error) -> ReadError {
        ReadError::S3 {
            code: err.code().as_str().to_string(),
            message: err.message().unwrap_or_default().to_string(),
        }
    }
}

impl ObjectStore {
    /// The content of `bucket`/`key` (the latest version, or `version`)
    /// as `account` may read it from `region`, if at most `limit` bytes.
    pub async fn read_object(
        &self,
        account: &str,
        region: &str,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        limit: u64,
    ) -> Result<Vec<u8>, ReadError> {
        let bucket = self.owned_bucket(account, bucket)?;
        if bucket.region != region {
            return Err(ReadError::S3 {
                code: "PermanentRedirect".to_string(),
                message: format!(
                    "The bucket is in this region: {}. Please use this region to retry the request",
                    bucket.region
                ),
            });
        }
        let row = self.find(&bucket.name, key, version)?;
        let size = u64::try_from(row.size).unwrap_or(0);
        if size > limit {
            return Err(ReadError::TooLarge(size));
        }
        let Some(blob) = &row.blob else {
            return Err(crate::ops::no_such_key(key).into());
        };
        let mut stream = Box::pin(
            self.blobs
                .read(blob, 0, size)
                .await
                .map_err(crate::ops::internal)?,
        );
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(crate::ops::internal)?);
        }
        Ok(out)
    }
}
