//! Deployment packages: checking a zip before Strato accepts it.

use std::io::{Cursor, Read, Seek, SeekFrom};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::{AwsError, ErrorCode};
use crate::limits::{MAX_UNZIPPED_CODE_BYTES, MAX_ZIPPED_CODE_BYTES};

/// A zip that passed inspection, with the identities AWS reports for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodePackage {
    pub sha256_hex: String,
    pub sha256_base64: String,
    pub size: u64,
    pub unzipped_size: u64,
    pub entries: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodePackageError {
    #[error("zipped size {0} exceeds the limit")]
    TooLarge(u64),
    #[error("not a zip archive: {0}")]
    NotAZip(String),
    #[error("unzipped size {0} exceeds the limit")]
    UnzippedTooLarge(u64),
    #[error("entry {0:?} escapes the package root")]
    EscapingEntry(String),
}

impl From<CodePackageError> for AwsError {
    fn from(err: CodePackageError) -> AwsError {
        const UNZIP: &str =
            "Could not unzip uploaded file. Please check your file, then try to upload again.";
        match err {
            CodePackageError::TooLarge(_) => AwsError::new(
                ErrorCode::RequestEntityTooLargeException,
                format!("Zipped size must be smaller than {MAX_ZIPPED_CODE_BYTES} bytes"),
            ),
            CodePackageError::NotAZip(_) => AwsError::invalid_parameter(UNZIP),
            CodePackageError::UnzippedTooLarge(_) => AwsError::invalid_parameter(format!(
                "Unzipped size must be smaller than {MAX_UNZIPPED_CODE_BYTES} bytes"
            )),
            CodePackageError::EscapingEntry(name) => AwsError::invalid_parameter(format!(
                "{UNZIP} The entry '{name}' points outside the package root."
            )),
        }
    }
}

/// True when a zip entry name would land outside the extraction root.
pub fn entry_escapes_root(name: &str) -> bool {
    let name = name.replace('\\', "/");
    if name.starts_with('/') || name.contains('\0') {
        return true;
    }
    let mut depth: i64 = 0;
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

impl CodePackage {
    /// Checks a zip uploaded directly (`ZipFile`) as AWS does (the 50 MB
    /// zipped limit, readability, unzipped size) and also refuses entries
    /// that would escape the root when extracted.
    pub fn inspect(bytes: &[u8]) -> Result<CodePackage, CodePackageError> {
        let size = bytes.len() as u64;
        if size > MAX_ZIPPED_CODE_BYTES {
            return Err(CodePackageError::TooLarge(size));
        }
        CodePackage::inspect_reader(Cursor::new(bytes), size)
    }

    /// Checks a zip Lambda reads from S3 (`S3Bucket`/`S3Key`): no zipped
    /// limit of its own, only the 250 MB unzipped one, which a larger
    /// archive cannot meet. The file is read in pieces, never whole.
    pub fn inspect_file(file: &mut std::fs::File) -> Result<CodePackage, CodePackageError> {
        let size = file
            .metadata()
            .map_err(|e| CodePackageError::NotAZip(e.to_string()))?
            .len();
        if size > MAX_UNZIPPED_CODE_BYTES {
            return Err(CodePackageError::UnzippedTooLarge(size));
        }
        CodePackage::inspect_reader(file, size)
    }

    fn inspect_reader<R: Read + Seek>(
        mut reader: R,
        size: u64,
    ) -> Result<CodePackage, CodePackageError> {
        let mut archive = zip::ZipArchive::new(&mut reader)
            .map_err(|e| CodePackageError::NotAZip(e.to_string()))?;
        let mut unzipped: u64 = 0;
        for i in 0..archive.len() {
            let entry = archive
                .by_index_raw(i)
                .map_err(|e| CodePackageError::NotAZip(e.to_string()))?;
            let name = entry
                .name()
                .map_err(|e| CodePackageError::NotAZip(e.to_string()))?
                .to_string();
            if entry_escapes_root(&name) {
                return Err(CodePackageError::EscapingEntry(name));
            }
            unzipped = unzipped.saturating_add(entry.size());
            if unzipped > MAX_UNZIPPED_CODE_BYTES {
                return Err(CodePackageError::UnzippedTooLarge(unzipped));
            }
        }
        // Every entry's data must decompress: a truncated or corrupt zip is
        // refused now rather than failing at the first cold start.
        for i in 0..archive.len() {
            let mut entry = archive
                .by_index(i)
                .map_err(|e| CodePackageError::NotAZip(e.to_string()))?;
            let mut sink = std::io::sink();
            let copied = std::io::copy(
                &mut (&mut entry).take(MAX_UNZIPPED_CODE_BYTES + 1),
                &mut sink,
            )
            .map_err(|e| CodePackageError::NotAZip(e.to_string()))?;
            if copied > entry.size() {
                return Err(CodePackageError::NotAZip(
                    "entry larger than declared".into(),
                ));
            }
        }
        let entries = archive.len();
        drop(archive);
        let digest =
            sha256_of(&mut reader).map_err(|e| CodePackageError::NotAZip(e.to_string()))?;
        Ok(CodePackage {
            sha256_hex: hex::encode(digest),
            sha256_base64: base64::engine::general_purpose::STANDARD.encode(digest),
            size,
            unzipped_size: unzipped,
            entries,
        })
    }
}

/// The SHA-256 of everything `reader` holds, read in pieces.
fn sha256_of<R: Read + Seek>(reader: &mut R) -> std::io::Result<[u8; 32]> {
    reader.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            for (name, data) in files {
                w.start_file(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                w.write_all(data).unwrap();
            }
            w.finish().unwrap();
        }
        buf.into_inner()
    }

    #[test]
    fn valid_zip_reports_aws_identities() {
        let bytes = zip_of(&[("index.js", b"exports.handler = async () => 1;")]);
        let pkg = CodePackage::inspect(&bytes).unwrap();
        assert_eq!(pkg.size, bytes.len() as u64);
        assert_eq!(pkg.unzipped_size, 32);
        let digest = Sha256::digest(&bytes);
        assert_eq!(
            pkg.sha256_base64,
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
    }

    #[test]
    fn garbage_is_not_a_zip() {
        let err = CodePackage::inspect(b"definitely not a zip").unwrap_err();
        assert!(matches!(err, CodePackageError::NotAZip(_)));
        let aws: AwsError = err.into();
        assert_eq!(
            aws.message,
            "Could not unzip uploaded file. Please check your file, then try to upload again."
        );
    }

    #[test]
    fn parent_traversal_is_refused() {
        let bytes = zip_of(&[("../evil.js", b"x")]);
        assert_eq!(
            CodePackage::inspect(&bytes),
            Err(CodePackageError::EscapingEntry("../evil.js".into()))
        );
    }

    #[test]
    fn traversal_detection_allows_inner_dotdot() {
        assert!(!entry_escapes_root("a/../b.js"));
        assert!(entry_escapes_root("a/../../b.js"));
        assert!(entry_escapes_root("/etc/passwd"));
    }

    /// A file of `bytes` in the temp dir, removed by the caller.
    fn temp_file(name: &str, bytes: &[u8]) -> (std::path::PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!("strato-code-{name}-{}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        (path, file)
    }

    #[test]
    fn a_file_from_s3_has_the_identities_of_the_same_bytes() {
        let bytes = zip_of(&[("index.js", &[7u8; 100_000])]);
        let (path, mut file) = temp_file("same", &bytes);
        let from_file = CodePackage::inspect_file(&mut file);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(from_file.unwrap(), CodePackage::inspect(&bytes).unwrap());
    }

    #[test]
    fn a_file_from_s3_has_no_zipped_limit_but_the_unzipped_one() {
        let (path, mut file) = temp_file("big", b"");
        // Sparse: nothing is written.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(MAX_UNZIPPED_CODE_BYTES + 1)
            .unwrap();
        let refused = CodePackage::inspect_file(&mut file);
        std::fs::remove_file(&path).unwrap();
        let err = refused.unwrap_err();
        assert_eq!(
            err,
            CodePackageError::UnzippedTooLarge(MAX_UNZIPPED_CODE_BYTES + 1)
        );
        assert_eq!(
            AwsError::from(err).message,
            "Unzipped size must be smaller than 262144000 bytes"
        );
    }

    #[test]
    fn truncated_zip_is_refused() {
        let bytes = zip_of(&[("index.js", &[7u8; 10_000])]);
        let cut = &bytes[..bytes.len() / 2];
        assert!(CodePackage::inspect(cut).is_err());
    }
}
