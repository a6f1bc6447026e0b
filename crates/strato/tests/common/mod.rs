//! Shared harness for the control-plane integration tests: an in-process
//! server on an ephemeral port, AWS SDK clients pointed at it, zips built in
//! memory, and raw SigV4-signed requests for what the SDK cannot send.

#![allow(dead_code)]

use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::{BehaviorVersion, Region};
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, LastUpdateStatus, Runtime, State};
use aws_sdk_lambda::Client;
use strato::server::{self, RunningServer, ServerConfig};
use tempfile::TempDir;

pub const REGION: &str = "us-east-1";
pub const LOCAL_ACCOUNT: &str = "000000000000";
pub const ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";

/// A server on a fresh data directory, with a client for the local
/// account (test/test).
pub struct Harness {
    pub dir: TempDir,
    pub server: Option<RunningServer>,
    pub client: Client,
}

impl Harness {
    pub async fn start() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start_on(dir.path()).await;
        let client = client(server.local_addr, "test", "test");
        Harness {
            dir,
            server: Some(server),
            client,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().expect("server running").local_addr
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Stops the server and starts a new one on the same data directory;
    /// the client is re-pointed at the new port.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        let server = start_on(self.dir.path()).await;
        self.client = client(server.local_addr, "test", "test");
        self.server = Some(server);
    }

    /// Stops the server, rewrites a stored function as a crashed process
    /// would have left it, and starts a new server on the same directory.
    pub async fn restart_after_editing(
        &mut self,
        name: &str,
        edit: impl FnOnce(&mut strato_model::FunctionRecord) + Send + 'static,
    ) {
        use strato_store::Store;
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        let store = server::open_store(self.dir.path()).expect("open store");
        store
            .update_function(
                LOCAL_ACCOUNT,
                REGION,
                name,
                Box::new(move |record| {
                    edit(record);
                    Ok(())
                }),
            )
            .await
            .expect("edit stored function");
        let server = start_on(self.dir.path()).await;
        self.client = client(server.local_addr, "test", "test");
        self.server = Some(server);
    }

    /// A second account with its own random key pair, and a client for it.
    pub async fn second_account(&self) -> (String, Client) {
        let store = server::open_store(self.dir.path()).expect("open store");
        let (account, key) = strato::accounts::create(&store, None, "second")
            .await
            .expect("create account");
        let client = client(self.addr(), &key.access_key_id, &key.secret_access_key);
        (account.id, client)
    }
}

pub async fn start_on(dir: &Path) -> RunningServer {
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.to_path_buf(),
        env!("CARGO_BIN_EXE_strato").into(),
    );
    // Runtimes fetched on first use (a Node.js release the host lacks) are
    // fetched once per build directory, not once per test.
    config.runtimes_dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("strato-runtimes");
    assert_eq!(config.region, REGION);
    server::start(config).await.expect("server starts")
}

/// An SDK client for the server at `addr`, signing with the given key, with
/// retries off so every error surfaces as the server sent it.
pub fn client(addr: std::net::SocketAddr, key: &str, secret: &str) -> Client {
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("http://{addr}"))
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(key, secret, None, None, "static"))
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

/// A function name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub fn function_arn(account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{account}:function:{name}")
}

/// A deflated zip of the given files.
pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, data) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("start file");
            w.write_all(data).expect("write entry");
        }
        w.finish().expect("finish zip");
    }
    buf.into_inner()
}

/// A small handler package; `tag` makes its bytes (and sha) unique.
pub fn handler_zip(tag: &str) -> Vec<u8> {
    let source = format!("exports.handler = async () => ({tag:?});\n");
    zip_of(&[("index.js", source.as_bytes())])
}

/// A valid zip of `total` bytes of incompressible random data, stored (not
/// deflated) in `files` entries: slow to hash, check and extract.
pub fn large_random_zip(total: usize, files: usize) -> Vec<u8> {
    // xorshift64*: incompressible enough for deflate, and fast in a debug
    // build (a cryptographic generator is not).
    let mut state: u64 = rand::random::<u64>() | 1;
    let mut fill = |buf: &mut [u8]| {
        for word in buf.chunks_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let value = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            word.copy_from_slice(&value[..word.len()]);
        }
    };
    let per_file = total / files;
    let mut buf = Cursor::new(Vec::with_capacity(total + files * 200));
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let mut chunk = vec![0u8; per_file];
        for i in 0..files {
            fill(&mut chunk);
            w.start_file(format!("data/blob-{i:05}.bin"), opts)
                .expect("start file");
            w.write_all(&chunk).expect("write entry");
        }
        w.finish().expect("finish zip");
    }
    buf.into_inner()
}

/// A stored zip whose single entry holds `size` zero bytes.
pub fn stored_zip_of_size(size: usize) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::with_capacity(size + 200));
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(false);
        w.start_file("big.bin", opts).expect("start file");
        w.write_all(&vec![0u8; size]).expect("write entry");
        w.finish().expect("finish zip");
    }
    buf.into_inner()
}

pub fn sha256_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// The runtime test functions use: OS-only, so every host can create it
/// whatever language runtimes it has installed.
pub const RUNTIME: Runtime = Runtime::Providedal2023;

/// CreateFunction with sensible defaults ([`RUNTIME`], index.handler).
pub async fn create_function(client: &Client, name: &str, zip: Vec<u8>) {
    create_builder(client, name, zip)
        .send()
        .await
        .expect("create function");
}

pub fn create_builder(
    client: &Client,
    name: &str,
    zip: Vec<u8>,
) -> aws_sdk_lambda::operation::create_function::builders::CreateFunctionFluentBuilder {
    client
        .create_function()
        .function_name(name)
        .runtime(RUNTIME)
        .role(ROLE)
        .handler("index.handler")
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
}

/// Creates a function and waits until it is Active.
pub async fn create_active(client: &Client, name: &str) {
    create_function(client, name, handler_zip(name)).await;
    wait_active(client, name).await;
}

/// Polls GetFunctionConfiguration until `State` is Active.
pub async fn wait_active(client: &Client, name: &str) {
    for _ in 0..2400 {
        let config = client
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .expect("get configuration");
        match config.state() {
            Some(State::Active) => return,
            Some(State::Pending) => tokio::time::sleep(Duration::from_millis(25)).await,
            other => panic!("{name} settled in state {other:?}"),
        }
    }
    panic!("{name} never became Active");
}

/// Polls until `LastUpdateStatus` is no longer InProgress and returns it.
pub async fn wait_update_settled(client: &Client, name: &str) -> LastUpdateStatus {
    for _ in 0..4800 {
        let config = client
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .expect("get configuration");
        match config.last_update_status() {
            Some(LastUpdateStatus::InProgress) => {
                tokio::time::sleep(Duration::from_millis(25)).await
            }
            Some(status) => return status.clone(),
            None => panic!("{name} has no LastUpdateStatus"),
        }
    }
    panic!("{name} update never settled");
}

/// An error as the server answered it: HTTP status, the `x-amzn-ErrorType`
/// header, the code and message the SDK parsed, and the request id header.
#[derive(Debug)]
pub struct Failure {
    pub status: u16,
    pub error_type_header: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
}

pub fn failure<E, R>(result: Result<R, SdkError<E, HttpResponse>>) -> Failure
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let err = result.expect_err("the request should fail");
    let raw = err
        .raw_response()
        .unwrap_or_else(|| panic!("no response: {err:?}"));
    let header = |name: &str| raw.headers().get(name).map(str::to_string);
    Failure {
        status: raw.status().as_u16(),
        error_type_header: header("x-amzn-ErrorType"),
        request_id: header("x-amzn-RequestId"),
        code: err.code().map(str::to_string),
        message: err.message().map(str::to_string),
    }
}

impl Failure {
    /// Asserts status, code (in the SDK's parse and in the header) and the
    /// exact message.
    pub fn assert(&self, status: u16, code: &str, message: &str) {
        self.assert_code(status, code);
        assert_eq!(self.message.as_deref(), Some(message), "{self:?}");
    }

    pub fn assert_code(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.code.as_deref(), Some(code), "{self:?}");
        let header = self.error_type_header.as_deref().unwrap_or_default();
        assert_eq!(
            header.split(':').next(),
            Some(code),
            "x-amzn-ErrorType: {self:?}"
        );
        assert!(self.request_id.is_some(), "x-amzn-RequestId: {self:?}");
    }

    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or_default()
    }
}

/// What a raw signed request got back.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub error_type_header: Option<String>,
    pub request_id: Option<String>,
    pub body: serde_json::Value,
}

/// Sends a request signed with SigV4 (service `lambda`) by `aws-sigv4`,
/// bypassing the SDK's serializer so any body can be sent.
pub async fn signed_request(
    endpoint: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    key: &str,
    secret: &str,
) -> RawResponse {
    let signing = Signing {
        key,
        secret,
        time: SystemTime::now(),
        presigned: false,
    };
    signed_request_with(endpoint, method, path_and_query, body, &signing).await
}

/// How [`signed_request_with`] signs.
pub struct Signing<'a> {
    pub key: &'a str,
    pub secret: &'a str,
    /// The signing time (to test clock skew).
    pub time: SystemTime,
    /// Signature in the query string (a presigned URL) instead of headers.
    pub presigned: bool,
}

pub async fn signed_request_with(
    endpoint: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    signing: &Signing<'_>,
) -> RawResponse {
    use aws_sigv4::http_request::{
        sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    };
    use aws_sigv4::sign::v4;

    let (key, secret) = (signing.key, signing.secret);
    let mut settings = SigningSettings::default();
    if signing.presigned {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(300));
    }
    let url = format!("{endpoint}{path_and_query}");
    let host = endpoint.trim_start_matches("http://").to_string();
    let identity = Credentials::new(key, secret, None, None, "raw").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("lambda")
        .time(signing.time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let headers = [
        ("host", host.as_str()),
        ("content-type", "application/json"),
    ];
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();

    let mut url = url;
    for (i, (name, value)) in instructions.params().iter().enumerate() {
        let sep = if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        };
        url.push(sep);
        url.push_str(name);
        url.push('=');
        url.push_str(&percent_encode(value));
    }
    let http = reqwest::Client::new();
    let mut request = http
        .request(method.parse().expect("method"), &url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("raw request");
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let error_type_header = header("x-amzn-ErrorType");
    let request_id = header("x-amzn-RequestId");
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "body is not JSON (status {status}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    RawResponse {
        status,
        error_type_header,
        request_id,
        body,
    }
}

/// RFC 3986 percent-encoding of a query value, as SigV4 expects it.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
