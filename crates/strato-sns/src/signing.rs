//! How SNS signs what it sends over HTTP (and puts in SQS envelopes and
//! Lambda events): an RSA key and a self-signed certificate, made once into
//! the data directory, and AWS's canonical string of a message's fields.
//!
//! `SignatureVersion` 1 signs the canonical string with SHA1withRSA, 2 with
//! SHA256withRSA (PKCS#1 v1.5); the signature travels base64-encoded and the
//! certificate is served at the message's `SigningCertURL`.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer as _};
use rsa::RsaPrivateKey;
use sha2::Digest as _;

/// The RSA key size of the signing key.
const KEY_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot read or write the SNS signing key in {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the SNS signing key is unusable: {0}")]
    Key(String),
    #[error("cannot make the SNS signing certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// The fields a signature covers, in the order AWS's canonical string
/// lists them (`Subject` only when the message has one; `SubscribeURL` and
/// `Token` only for subscription confirmations).
#[derive(Debug, Clone, Copy)]
pub struct SignedFields<'a> {
    pub message: &'a str,
    pub message_id: &'a str,
    pub subject: Option<&'a str>,
    pub subscribe_url: Option<&'a str>,
    pub timestamp: &'a str,
    pub token: Option<&'a str>,
    pub topic_arn: &'a str,
    pub kind: &'a str,
}

/// AWS's string to sign: `Name\nvalue\n` per field, names in byte order.
pub fn canonical_string(fields: &SignedFields<'_>) -> String {
    let mut out = String::new();
    let mut push = |name: &str, value: Option<&str>| {
        if let Some(value) = value {
            out.push_str(name);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        }
    };
    push("Message", Some(fields.message));
    push("MessageId", Some(fields.message_id));
    if fields.kind == "Notification" {
        push("Subject", fields.subject);
    } else {
        push("SubscribeURL", fields.subscribe_url);
    }
    push("Timestamp", Some(fields.timestamp));
    if fields.kind != "Notification" {
        push("Token", fields.token);
    }
    push("TopicArn", Some(fields.topic_arn));
    push("Type", Some(fields.kind));
    out
}

/// The key and certificate messages are signed with.
pub struct Signer {
    key: RsaPrivateKey,
    certificate_pem: String,
    /// Names the certificate in its URL (`SimpleNotificationService-<id>.pem`).
    certificate_id: String,
}

impl Signer {
    /// Loads the key and certificate from `dir`, making them the first time
    /// (the key file readable by its owner only).
    pub fn open(dir: &Path) -> Result<Signer, SigningError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SigningError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key_path = dir.join("signing-key.pem");
        let cert_path = dir.join("signing-cert.pem");
        let key = match std::fs::read_to_string(&key_path) {
            Ok(pem) => {
                RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| SigningError::Key(e.to_string()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS)
                    .map_err(|e| SigningError::Key(e.to_string()))?;
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| SigningError::Key(e.to_string()))?;
                write_private(&key_path, pem.as_bytes()).map_err(io(&key_path))?;
                // A new key makes any older certificate wrong.
                let _ = std::fs::remove_file(&cert_path);
                key
            }
            Err(e) => return Err(io(&key_path)(e)),
        };
        let certificate_pem = match std::fs::read_to_string(&cert_path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| SigningError::Key(e.to_string()))?;
                let pair =
                    rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)?;
                let mut params =
                    rcgen::CertificateParams::new(vec!["sns.strato.localhost".to_string()])?;
                params
                    .distinguished_name
                    .push(rcgen::DnType::CommonName, "sns.strato.localhost");
                let cert = params.self_signed(&pair)?.pem();
                std::fs::write(&cert_path, cert.as_bytes()).map_err(io(&cert_path))?;
                cert
            }
            Err(e) => return Err(io(&cert_path)(e)),
        };
        let digest = sha2::Sha256::digest(certificate_pem.as_bytes());
        let certificate_id = hex::encode(&digest[..16]);
        Ok(Signer {
            key,
            certificate_pem,
            certificate_id,
        })
    }

    /// The certificate, PEM-encoded.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The file name the certificate is served under.
    pub fn certificate_file(&self) -> String {
        format!("SimpleNotificationService-{}.pem", self.certificate_id)
    }

    /// The base64 signature of `fields` for `SignatureVersion` 1 or 2.
    pub fn sign(&self, version: SignatureVersion, fields: &SignedFields<'_>) -> String {
        let text = canonical_string(fields);
        let bytes = match version {
            SignatureVersion::V1 => SigningKey::<sha1::Sha1>::new(self.key.clone())
                .sign(text.as_bytes())
                .to_vec(),
            SignatureVersion::V2 => SigningKey::<sha2::Sha256>::new(self.key.clone())
                .sign(text.as_bytes())
                .to_vec(),
        };
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// A topic's `SignatureVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureVersion {
    V1,
    V2,
}

impl SignatureVersion {
    pub fn parse(text: Option<&str>) -> SignatureVersion {
        match text {
            Some("2") => SignatureVersion::V2,
            _ => SignatureVersion::V1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignatureVersion::V1 => "1",
            SignatureVersion::V2 => "2",
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::VerifyingKey;
    use rsa::signature::Verifier as _;

    fn notification<'a>(subject: Option<&'a str>) -> SignedFields<'a> {
        SignedFields {
            message: "hello",
            message_id: "id-1",
            subject,
            subscribe_url: None,
            timestamp: "2026-12-07T00:00:00.000Z",
            token: None,
            topic_arn: "arn:aws:sns:us-east-1:000000000000:t",
            kind: "Notification",
        }
    }

    #[test]
    fn notification_canonical_string_lists_subject_only_when_present() {
        assert_eq!(
            canonical_string(&notification(None)),
            "Message\nhello\nMessageId\nid-1\nTimestamp\n2026-12-07T00:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:000000000000:t\nType\nNotification\n"
        );
        assert!(canonical_string(&notification(Some("s")))
            .contains("MessageId\nid-1\nSubject\ns\nTimestamp\n"));
    }

    #[test]
    fn confirmation_canonical_string_has_subscribe_url_and_token() {
        let fields = SignedFields {
            subscribe_url: Some("http://h/confirm"),
            token: Some("tok"),
            kind: "SubscriptionConfirmation",
            subject: Some("ignored"),
            ..notification(None)
        };
        assert_eq!(
            canonical_string(&fields),
            "Message\nhello\nMessageId\nid-1\nSubscribeURL\nhttp://h/confirm\nTimestamp\n2026-12-07T00:00:00.000Z\nToken\ntok\nTopicArn\narn:aws:sns:us-east-1:000000000000:t\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn signatures_verify_with_the_key_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::open(dir.path()).unwrap();
        let fields = notification(Some("s"));
        let text = canonical_string(&fields);
        let public = signer.key.to_public_key();
        let b64 = base64::engine::general_purpose::STANDARD;
        let v1 = b64
            .decode(signer.sign(SignatureVersion::V1, &fields))
            .unwrap();
        VerifyingKey::<sha1::Sha1>::new(public.clone())
            .verify(
                text.as_bytes(),
                &rsa::pkcs1v15::Signature::try_from(v1.as_slice()).unwrap(),
            )
            .unwrap();
        let v2 = b64
            .decode(signer.sign(SignatureVersion::V2, &fields))
            .unwrap();
        VerifyingKey::<sha2::Sha256>::new(public)
            .verify(
                text.as_bytes(),
                &rsa::pkcs1v15::Signature::try_from(v2.as_slice()).unwrap(),
            )
            .unwrap();
        assert!(signer
            .certificate_pem()
            .starts_with("-----BEGIN CERTIFICATE-----"));
        let again = Signer::open(dir.path()).unwrap();
        assert_eq!(again.certificate_file(), signer.certificate_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("signing-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
