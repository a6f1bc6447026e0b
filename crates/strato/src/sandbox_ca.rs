//! Strato as a certificate authority for its sandboxes: functions reach
//! Strato by AWS's own host names (`lambda.us-east-1.amazonaws.com`) over
//! real TLS.
//!
//! On first start a CA key and certificate are made in
//! `<data-dir>/sandbox-ca/` (the directory 0700, the key 0600; no sandbox
//! binds it). Leaf certificates are issued on demand, during the TLS
//! handshake, for the name the client asks for (SNI) when it is one of AWS's
//! names ([`strato_engine::aws_names`]), and kept for the life of the process;
//! any other name gets no certificate and the handshake fails. The CA's
//! certificate joins every runtime's trust store through a bundle (the host's
//! system bundle followed by the CA) bound read-only over the system bundle
//! path instances see; the host's own trust store is never touched.
//! `strato ca` prints the certificate for machines outside sandboxes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dashmap::DashMap;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::Digest;
use strato_engine::aws_names::is_aws_name;

/// The CA's directory under the data directory.
const CA_DIR: &str = "sandbox-ca";
const CA_KEY_FILE: &str = "ca-key.pem";
const CA_CERT_FILE: &str = "ca.pem";
const BUNDLE_FILE: &str = "bundle.pem";
/// Where hosts keep their system bundle, in the order Go looks for it.
const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];
/// How long the CA and its leaf certificates are valid, in days.
const CA_DAYS: i64 = 3650;
const LEAF_DAYS: i64 = 365;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("sandbox CA: cannot {step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sandbox CA: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("sandbox CA: TLS: {0}")]
    Tls(#[from] rustls::Error),
}

fn io_error<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CaError + 'a {
    move |source| CaError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

/// The CA of one data directory.
pub struct SandboxCa {
    key: KeyPair,
    /// The CA as issuer (rebuilt from its key and name: signing needs no
    /// more than these).
    issuer: rcgen::Certificate,
    cert_pem: String,
    cert_path: PathBuf,
    dir: PathBuf,
}

impl std::fmt::Debug for SandboxCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxCa")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

/// (year, month, day) of today plus `days`, for `rcgen::date_time_ymd`.
fn day(days: i64) -> (i32, u8, u8) {
    use chrono::Datelike;
    let date = chrono::Utc::now() + chrono::Duration::days(days);
    let month = u8::try_from(date.month()).unwrap_or(1);
    let day = u8::try_from(date.day()).unwrap_or(1);
    (date.year(), month, day)
}

fn validity(params: &mut CertificateParams, days: i64) {
    let (y, m, d) = day(-1);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = day(days);
    params.not_after = rcgen::date_time_ymd(y, m, d);
}

/// The CA's parameters: the name carries a digest of its public key, so
/// two Strato installations' CAs never share a name in one trust store.
fn ca_params(key: &KeyPair) -> Result<CertificateParams, rcgen::Error> {
    let digest = hex::encode(sha2::Sha256::digest(key.public_key_der()));
    let mut params = CertificateParams::new(Vec::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Strato");
    name.push(
        DnType::CommonName,
        format!("Strato sandbox CA {}", &digest[..12]),
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, CA_DAYS);
    Ok(params)
}

impl SandboxCa {
    /// The CA of `data_dir`, made on first use.
    pub fn open(data_dir: &Path) -> Result<SandboxCa, CaError> {
        let dir = data_dir.join(CA_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_error("create", &dir))?;
        let key_path = dir.join(CA_KEY_FILE);
        let cert_path = dir.join(CA_CERT_FILE);
        let existing = fs::read_to_string(&key_path)
            .ok()
            .zip(fs::read_to_string(&cert_path).ok());
        let (key, cert_pem) = match existing {
            Some((key_pem, cert_pem)) => (KeyPair::from_pem(&key_pem)?, cert_pem),
            None => {
                let key = KeyPair::generate()?;
                let cert_pem = ca_params(&key)?.self_signed(&key)?.pem();
                write_private(&key_path, key.serialize_pem().as_bytes())?;
                fs::write(&cert_path, &cert_pem).map_err(io_error("write", &cert_path))?;
                tracing::info!(certificate = %cert_path.display(), "made the sandbox CA");
                (key, cert_pem)
            }
        };
        let issuer = ca_params(&key)?.self_signed(&key)?;
        Ok(SandboxCa {
            key,
            issuer,
            cert_pem,
            cert_path,
            dir,
        })
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes the bundle instances trust (the host's system bundle, then the
    /// CA) and says where they see it.
    pub fn trust(&self) -> Result<strato_engine::runtimes::SandboxTrust, CaError> {
        // Bound over the host's bundle path (the file, not a symlink to it,
        // so the bind cannot land outside the sandbox's root).
        let host_bundle = SYSTEM_BUNDLES
            .iter()
            .map(Path::new)
            .find_map(|path| fs::canonicalize(path).ok().filter(|p| p.is_file()));
        let mut bundle = match &host_bundle {
            Some(path) => fs::read_to_string(path).map_err(io_error("read", path))?,
            None => String::new(),
        };
        if !bundle.is_empty() && !bundle.ends_with('\n') {
            bundle.push('\n');
        }
        bundle.push_str(&self.cert_pem);
        let path = self.dir.join(BUNDLE_FILE);
        let staging = self.dir.join(format!("{BUNDLE_FILE}.tmp"));
        fs::write(&staging, bundle).map_err(io_error("write", &staging))?;
        fs::rename(&staging, &path).map_err(io_error("replace", &path))?;
        Ok(strato_engine::runtimes::SandboxTrust {
            bundle: path,
            bundle_path: host_bundle.unwrap_or_else(|| PathBuf::from(SYSTEM_BUNDLES[0])),
            ca_pem: self.cert_path.clone(),
        })
    }

    /// A leaf certificate for `name` (an AWS name), with its key.
    fn issue(
        &self,
        name: &str,
    ) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), CaError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![name.to_string()])?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, LEAF_DAYS);
        let cert = params.signed_by(&key, &self.issuer, &self.key)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((cert.der().clone(), key))
    }
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), CaError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("create", path))?;
    file.write_all(contents).map_err(io_error("write", path))
}

/// Picks (and on first use issues) the certificate for the name a client
/// asks for; names that are not AWS's get none.
#[derive(Debug)]
pub struct LeafCertificates {
    ca: SandboxCa,
    provider: Arc<rustls::crypto::CryptoProvider>,
    issued: DashMap<String, Arc<CertifiedKey>>,
}

impl LeafCertificates {
    pub fn new(ca: SandboxCa, provider: Arc<rustls::crypto::CryptoProvider>) -> LeafCertificates {
        LeafCertificates {
            ca,
            provider,
            issued: DashMap::new(),
        }
    }

    /// The certificate for `name`, `None` for a name outside AWS's.
    pub fn for_name(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if !is_aws_name(&name) {
            return None;
        }
        if let Some(found) = self.issued.get(&name) {
            return Some(found.clone());
        }
        let issued = self
            .ca
            .issue(&name)
            .map_err(|e| tracing::warn!(error = %e, name, "cannot issue a sandbox certificate"))
            .ok()?;
        let (cert, key) = issued;
        let key = self
            .provider
            .key_provider
            .load_private_key(key)
            .map_err(
                |e| tracing::warn!(error = %e, name, "cannot load a sandbox certificate's key"),
            )
            .ok()?;
        let certified = Arc::new(CertifiedKey::new(vec![cert], key));
        // Two handshakes racing for a new name both issue; either is good.
        Some(self.issued.entry(name).or_insert(certified).clone())
    }
}

impl ResolvesServerCert for LeafCertificates {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.for_name(client_hello.server_name()?)
    }
}

/// The TLS side of instances' API listeners: certificates by SNI from the
/// sandbox CA, HTTP/2 and HTTP/1.1.
pub fn server_config(ca: SandboxCa) -> Result<Arc<rustls::ServerConfig>, CaError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(LeafCertificates::new(ca, provider)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` over TLS on `listener` until aborted. Requests are marked
/// `X-Forwarded-Proto: https`, so URLs handed back (queue URLs) keep the
/// scheme the client used.
pub fn serve_tls(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: axum::Router,
) -> tokio::task::JoinHandle<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                // A client that does not trust the CA, or asks for another name, ends here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |mut request: hyper::Request<hyper::body::Incoming>| {
                        request.headers_mut().insert(
                            "x-forwarded-proto",
                            hyper::header::HeaderValue::from_static("https"),
                        );
                        tower::ServiceExt::oneshot(app.clone(), request.map(axum::body::Body::new))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_made_once_with_a_private_key_and_signs_only_aws_names() {
        let dir = tempfile::tempdir().unwrap();
        let ca = SandboxCa::open(dir.path()).unwrap();
        let pem = ca.certificate_pem().to_string();
        let key = dir.path().join(CA_DIR).join(CA_KEY_FILE);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(dir.path().join(CA_DIR))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let again = SandboxCa::open(dir.path()).unwrap();
        assert_eq!(again.certificate_pem(), pem);

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let leaves = LeafCertificates::new(again, provider);
        assert!(leaves.for_name("example.com").is_none());
        assert!(leaves.for_name("amazonaws.com.example.org").is_none());
        let first = leaves.for_name("Lambda.us-east-1.amazonaws.com.").unwrap();
        let cached = leaves.for_name("lambda.us-east-1.amazonaws.com").unwrap();
        assert!(Arc::ptr_eq(&first, &cached));

        // The leaf chains to the CA written to disk (as a client checks it).
        let mut roots = rustls::RootCertStore::empty();
        let ca_der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
        roots.add(ca_der).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        let name =
            rustls::pki_types::ServerName::try_from("lambda.us-east-1.amazonaws.com").unwrap();
        rustls::client::danger::ServerCertVerifier::verify_server_cert(
            verifier.as_ref(),
            &first.cert[0],
            &[],
            &name,
            &[],
            rustls::pki_types::UnixTime::now(),
        )
        .unwrap();
        let other = rustls::pki_types::ServerName::try_from("sqs.us-east-1.amazonaws.com").unwrap();
        assert!(
            rustls::client::danger::ServerCertVerifier::verify_server_cert(
                verifier.as_ref(),
                &first.cert[0],
                &[],
                &other,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .is_err()
        );
    }
}
