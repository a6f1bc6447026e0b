//! The test server: one way to configure and start an in-process Strato
//! server, restart it on the same data directory, and reach its store.

use std::path::{Path, PathBuf};

use aws_sdk_lambda::Client;
use strato::server::{self, RunningServer, ServerConfig};
use tempfile::TempDir;

use super::clients::{client, sdk_config, signed_request, RawResponse};
use super::{ACCOUNT, REGION};

/// Where a test server keeps its runtime components (bootstraps, Node.js
/// releases fetched on first use, the Java runtime interface client, the
/// bundled AWS SDKs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtimes {
    /// `target/tmp/strato-runtimes`, shared by every server of every test
    /// binary: what is fetched on first use is fetched once per build
    /// directory, not once per test.
    Shared,
    /// The server's default, `<data dir>/runtimes`: nothing another test
    /// fetched or installed is there (tests of fetching a runtime, of a
    /// runtime copied into the data directory, of a function environment
    /// without the bundled SDKs).
    Own,
}

/// The runtimes directory every [`Runtimes::Shared`] server uses.
pub fn shared_runtimes_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("strato-runtimes")
}

/// A server configuration on `data_dir`, listening on an ephemeral loopback
/// port, with this build's `strato` binary as the sandbox init.
pub fn server_config(data_dir: &Path, runtimes: Runtimes) -> ServerConfig {
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        data_dir.to_path_buf(),
        env!("CARGO_BIN_EXE_strato").into(),
    );
    if runtimes == Runtimes::Shared {
        config.runtimes_dir = shared_runtimes_dir();
    }
    assert_eq!(config.region, REGION);
    config
}

/// A server on a fresh data directory, with a Lambda client for the local
/// account (key `test`/`test`).
pub struct TestServer {
    pub dir: TempDir,
    /// What the server was started with; a restart starts from it again
    /// (on a new ephemeral port).
    config: ServerConfig,
    server: Option<RunningServer>,
    pub client: Client,
}

impl TestServer {
    /// A server with the [`Runtimes::Shared`] runtimes directory.
    pub async fn start() -> TestServer {
        TestServer::start_with(Runtimes::Shared, |_| {}).await
    }

    /// A server with its [`Runtimes::Own`] runtimes directory.
    pub async fn start_own_runtimes() -> TestServer {
        TestServer::start_with(Runtimes::Own, |_| {}).await
    }

    /// A server whose configuration `configure` adjusts first.
    pub async fn start_with(
        runtimes: Runtimes,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = server_config(dir.path(), runtimes);
        configure(&mut config);
        let server = server::start(config.clone()).await.expect("server starts");
        let client = client(server.local_addr, "test", "test");
        TestServer {
            dir,
            config,
            server: Some(server),
            client,
        }
    }

    /// The running server (its engine's counters).
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("server is running")
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server().local_addr
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// A raw request signed with the local account's key (`test`), for
    /// what the SDK cannot send.
    pub async fn raw(&self, method: &str, path_and_query: &str, body: &[u8]) -> RawResponse {
        let endpoint = self.endpoint();
        signed_request(&endpoint, method, path_and_query, body, "test", "test").await
    }

    /// SDK settings for the local account at this server, for the clients
    /// of other services (`aws_sdk_apigateway::Client::new(&…)`).
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config(self.addr(), "test", "test")
    }

    /// Stops the server and starts a new one on the same data directory;
    /// the client is re-pointed at the new port.
    pub async fn restart(&mut self) {
        self.shutdown().await;
        self.start_again().await;
    }

    /// Stops the server, rewrites a stored function as a crashed process
    /// would have left it, and starts a new server on the same directory.
    pub async fn restart_after_editing(
        &mut self,
        name: &str,
        edit: impl FnOnce(&mut strato_model::FunctionRecord) + Send + 'static,
    ) {
        use strato_store::Store;
        self.shutdown().await;
        let store = server::open_store(self.dir.path()).expect("open store");
        store
            .update_function(
                ACCOUNT,
                REGION,
                name,
                Box::new(move |record| {
                    edit(record);
                    Ok(())
                }),
            )
            .await
            .expect("edit stored function");
        self.start_again().await;
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

    /// Stops the server (which ends its instances).
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }

    async fn start_again(&mut self) {
        let server = server::start(self.config.clone())
            .await
            .expect("server restarts");
        self.client = client(server.local_addr, "test", "test");
        self.server = Some(server);
    }
}

/// The sandbox runs as root only; the strong-mode assertions need it.
pub fn strong_mode_available() -> bool {
    is_root() && Path::new("/sys/fs/cgroup/memory").is_dir()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|rest| rest.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

/// The ids of live sandbox cgroups (v1 memory controller): what a test
/// checks is left over once its server stopped.
pub fn strato_cgroups() -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup/memory/strato") {
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                found.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found
}
