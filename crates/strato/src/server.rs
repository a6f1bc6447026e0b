//! `strato serve`: open the data directory, wire the services, listen.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rand::Rng;
use strato_api::{AccountDirectory, ApiState, CodeUrlSigner, FunctionCredentials};
use strato_engine::{ApiEndpoint, Engine, EngineConfig};
use strato_model::AccessKey;
use strato_queue::{Durability, SqliteQueueEngine};
use strato_sandbox::SandboxConfig;
use strato_store::{CodeStore, FunctionCatalog, SqliteStore, Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::accounts::{self, AccountError};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The region clients are told to configure; requests are served in the
    /// region their signature names.
    pub region: String,
    /// How long an idle instance stays warm before it is ended.
    pub keep_alive: std::time::Duration,
    /// Isolation settings; `init_program` must call the sandbox init
    /// (`strato __sandbox-init` for the strato binary).
    pub sandbox: SandboxConfig,
    /// Runtime components (bootstraps, installed Node.js releases, the Java
    /// runtime interface client, the bundled AWS SDKs); may be shared by
    /// several servers. Default: `<data-dir>/runtimes`.
    pub runtimes_dir: PathBuf,
    /// Install the AWS SDKs that managed runtimes carry (boto3, the AWS SDK
    /// for JavaScript v3) in the background at start when they are missing.
    pub provision_sdks: bool,
    /// The total memory (Σ `MemorySize`) live instances may hold, in MB.
    /// Default: 80 % of the machine's memory.
    pub memory_budget_mb: u64,
    /// How long an event invocation may wait for concurrency before it is
    /// dropped (AWS's maximum event age; default 6 hours).
    pub max_event_age: std::time::Duration,
    /// Stem cells kept ready per runtime (0 turns them off).
    pub stem_cells: usize,
    /// How long an invocation with no idle instance waits for one to come
    /// free while the host is busy starting others (zero: start another at
    /// once, as AWS does).
    pub scale_out_wait: std::time::Duration,
    /// When an acknowledged write (a queued event or message, a DynamoDB
    /// item, an S3 object's content) is durable: `Fsync` (every commit
    /// reaches the disk: survives power loss) or `ProcessCrash` (the commit
    /// reaches the OS: survives `kill -9` of the server, not a power loss;
    /// several times the throughput).
    pub durability: Durability,
    /// Test-only: divides every asynchronous-invocation timing (retry
    /// delays, back-off, maximum event ages) so minutes pass in seconds.
    /// 1 in production.
    pub time_scale: u32,
    /// Logs, metrics and metering: queue sizes, the log store's size bound,
    /// the retention sweep, the price table (default: `<data-dir>/prices.json`,
    /// else AWS us-east-1).
    pub observe: strato_observe::ObserveConfig,
    /// How the function URLs and API endpoints handed out are formed
    /// (default: path-style on the address the client used).
    pub public_urls: strato_gateway::public_url::PublicUrls,
    /// Whether IAM policies are enforced (`--iam enforce`); off, every
    /// authenticated request of an account is allowed.
    pub iam_enforced: bool,
    /// Isolated instances reach Strato by AWS's own host names
    /// (`lambda.us-east-1.amazonaws.com`) over HTTPS, through their own
    /// resolver and Strato's sandbox CA (see `sandbox_ca`). On by default.
    pub aws_hostnames: bool,
}

impl ServerConfig {
    /// Defaults for a server whose sandbox init is `init_program __sandbox-init`.
    pub fn new(listen: SocketAddr, data_dir: PathBuf, init_program: PathBuf) -> ServerConfig {
        ServerConfig {
            listen,
            runtimes_dir: data_dir.join("runtimes"),
            provision_sdks: false,
            data_dir,
            region: "us-east-1".into(),
            keep_alive: DEFAULT_KEEP_ALIVE,
            memory_budget_mb: strato_engine::memory::default_budget_mb(),
            max_event_age: strato_engine::DEFAULT_MAX_EVENT_AGE,
            stem_cells: strato_engine::DEFAULT_STEM_CELLS,
            scale_out_wait: strato_engine::DEFAULT_SCALE_OUT_WAIT,
            time_scale: 1,
            durability: Durability::Fsync,
            observe: strato_observe::ObserveConfig::default(),
            public_urls: strato_gateway::public_url::PublicUrls::default(),
            iam_enforced: false,
            aws_hostnames: true,
            sandbox: SandboxConfig::new(init_program, vec![SANDBOX_INIT_ARG.into()]),
        }
    }
}

/// The hidden argument that makes the strato binary act as the sandbox init.
pub const SANDBOX_INIT_ARG: &str = "__sandbox-init";
/// Idle instances live this long by default.
pub const DEFAULT_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the state database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot open the code store: {0}")]
    Code(#[from] strato_store::CodeStoreError),
    #[error("cannot create the initial account: {0}")]
    Account(#[from] AccountError),
    #[error("cannot start the execution engine: {0}")]
    Engine(#[from] strato_engine::EngineError),
    #[error("cannot open the logs and metrics stores: {0}")]
    Observe(#[from] strato_observe::ObserveError),
    #[error("cannot open the IAM state: {0}")]
    Iam(#[from] strato_iam::IamError),
    #[error("cannot open the durable queues: {0}")]
    Queue(#[from] strato_queue::QueueError),
    #[error("cannot open Amazon SQS: {0}")]
    Sqs(#[from] strato_sqs::SqsError),
    #[error("cannot open Amazon EventBridge: {0}")]
    Events(#[from] strato_events::EventsError),
    #[error("cannot open Amazon DynamoDB: {0}")]
    DynamoDb(#[from] strato_dynamodb::DynamoDbError),
    #[error("cannot load CloudWatch alarms: {0}")]
    Alarms(#[from] strato_alarms::AlarmsError),
    #[error(transparent)]
    Sns(#[from] strato_sns::SnsError),
    #[error("cannot load API Gateway state: {0}")]
    Gateway(String),
    #[error("cannot open Amazon S3: {0}")]
    S3(String),
    #[error(transparent)]
    SandboxCa(#[from] crate::sandbox_ca::CaError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A server running on the current tokio runtime.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    pub engine: Arc<Engine>,
    /// The key pair created for a fresh data directory, if this start made one.
    pub initial_key: Option<AccessKey>,
    /// Function logs, metrics and metering.
    pub observe: Arc<strato_observe::Observe>,
    /// The durable queues (asynchronous invocations).
    pub queues: Arc<SqliteQueueEngine>,
    /// Stopped before the engine, so no batch starts while it shuts down.
    event_source_mappings: Arc<strato_api::lambda::EventSourceMappings>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    /// Background work that lives as long as the server (key refresh).
    background: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and returns.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for task in &self.background {
            task.abort();
        }
        let served = match self.task.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        };
        self.event_source_mappings.shutdown().await;
        // Instances are processes of their own: end them and remove their
        // cgroups and namespaces before returning.
        self.engine.shutdown().await;
        self.queues.close().await;
        // What the last invocations reported reaches the disk.
        self.observe.flush().await;
        served
    }

    /// Runs until the process gets SIGINT or SIGTERM, then shuts down cleanly.
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        wait_for_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Opens the store under the data directory.
pub fn open_store(data_dir: &std::path::Path) -> Result<SqliteStore, ServerError> {
    std::fs::create_dir_all(data_dir).map_err(|source| ServerError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    Ok(SqliteStore::open(&data_dir.join("strato.db"))?)
}

/// A named server secret (signing code URLs, deriving function credentials),
/// created once per data directory.
async fn server_secret(store: &dyn Store, name: &str) -> Result<Vec<u8>, StoreError> {
    if let Some(hex_key) = store.get_setting(name).await? {
        if let Ok(key) = hex::decode(hex_key) {
            return Ok(key);
        }
    }
    let key: [u8; 32] = rand::rng().random();
    store.put_setting(name, &hex::encode(key)).await?;
    Ok(key.to_vec())
}

/// How soon a key revoked with `strato accounts delete` stops working.
const KEY_REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

fn spawn_key_refresh(
    accounts: Arc<AccountDirectory>,
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEY_REFRESH_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(err) = accounts.reload().await {
                tracing::warn!(error = %err, "could not refresh access keys");
            }
            // `strato accounts set-limit` in another process takes effect here.
            if let Err(err) = load_account_limits(store.as_ref(), &engine).await {
                tracing::warn!(error = %err, "could not refresh account limits");
            }
        }
    })
}

/// AWS's SQS mapping polling, with the long poll and back-offs shortened
/// by the time scale: a poll round, which starts by asking whether the
/// function's role may poll, ends that much sooner.
fn sqs_poller_settings(time_scale: u32) -> strato_engine::event_source::PollerSettings {
    let aws = strato_engine::event_source::PollerSettings::default();
    let scale = time_scale.max(1);
    strato_engine::event_source::PollerSettings {
        long_poll: aws.long_poll / scale,
        first_backoff: aws.first_backoff / scale,
        max_backoff: aws.max_backoff / scale,
        ..aws
    }
}

/// AWS's stream polling, with retry back-offs shortened by the time scale
/// (tests run failing batches through their retries quickly).
fn stream_poller_settings(time_scale: u32) -> strato_engine::event_source::StreamPollerSettings {
    let aws = strato_engine::event_source::StreamPollerSettings::default();
    let scale = time_scale.max(1);
    strato_engine::event_source::StreamPollerSettings {
        first_backoff: aws.first_backoff / scale,
        max_backoff: aws.max_backoff / scale,
        ..aws
    }
}

/// Gives the engine's limiter every account's concurrency limit.
async fn load_account_limits(store: &dyn Store, engine: &Engine) -> Result<(), StoreError> {
    for account in store.list_accounts().await? {
        engine
            .concurrency()
            .set_account_limit(&account.id, account.concurrency_limit);
    }
    Ok(())
}

/// Gives the engine's limiter every function's reserved concurrency.
async fn load_reservations(store: &dyn Store, engine: &Engine) -> Result<(), StoreError> {
    for record in store.list_all_functions().await? {
        if let Some(reserved) = record.reserved_concurrency {
            engine.concurrency().set_reserved(
                &record.account,
                &record.region,
                record.name(),
                Some(reserved),
            );
        }
    }
    Ok(())
}

/// Starts the server on the current runtime.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let store: Arc<dyn Store> = Arc::new(open_store(&config.data_dir)?);
    let initial_key =
        accounts::ensure_initial_account(store.as_ref(), config.listen.ip().is_loopback()).await?;
    let code = CodeStore::open(config.data_dir.join("code"))?;
    let iam = Arc::new(strato_iam::Iam::open(
        &config.data_dir.join("iam.json"),
        config.iam_enforced,
    )?);
    let accounts = Arc::new(AccountDirectory::load(store.clone(), iam.clone()).await?);
    let code_urls = CodeUrlSigner::new(&server_secret(store.as_ref(), "code_url_key").await?);
    let observe = strato_observe::Observe::open(&config.data_dir, config.observe.clone())?;
    // Its own file: queue writes must not contend with the control plane's.
    let queues = SqliteQueueEngine::open(&config.data_dir.join("queues.db"), config.durability)?;
    let sqs = strato_sqs::SqsService::open(store.clone(), queues.clone()).await?;
    let dynamodb =
        strato_dynamodb::DynamoDbService::new(config.data_dir.join("dynamodb"), config.durability);
    dynamodb.open_existing()?;
    let dynamodb_ttl =
        strato_dynamodb::spawn_ttl_sweeper(dynamodb.clone(), std::time::Duration::from_secs(5));
    // Every service that takes deliveries (destinations, dead-letter
    // targets, rule and subscription targets) registers here once.
    let sinks = Arc::new(strato_engine::async_invoke::EventSinks::new());
    sinks.register(strato_sqs::SIGNING_NAME, sqs.clone());
    let engine = Engine::start(
        EngineConfig {
            runtimes_dir: config.runtimes_dir.clone(),
            keep_alive: config.keep_alive,
            init_timeout: std::time::Duration::from_secs(10),
            sandbox: config.sandbox.clone(),
            memory_budget_mb: config.memory_budget_mb,
            max_event_age: config.max_event_age,
            stem_cells: config.stem_cells,
            scale_out_wait: config.scale_out_wait,
            credentials_lifetime: strato_engine::DEFAULT_CREDENTIALS_LIFETIME
                / config.time_scale.max(1),
        },
        code.clone(),
        observe.logs().clone(),
    )?;
    engine.set_observer(observe.clone());
    // Only isolated instances have a resolver and listeners of their own.
    let sandbox_tls =
        if config.aws_hostnames && engine.sandbox_mode() == strato_sandbox::SandboxMode::Strong {
            let ca = crate::sandbox_ca::SandboxCa::open(&config.data_dir)?;
            engine.set_sandbox_trust(ca.trust()?);
            Some(crate::sandbox_ca::server_config(ca)?)
        } else {
            None
        };
    engine.set_credential_issuer(Arc::new(FunctionCredentials::new(iam.clone())));
    if config.provision_sdks {
        let runtimes_dir = config.runtimes_dir.clone();
        tokio::spawn(async move {
            match strato_engine::provide_sdks(runtimes_dir).await {
                Ok(true) => tracing::info!("installed the AWS SDKs that managed runtimes carry"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot install the AWS SDKs for managed runtimes; functions must bundle them")
                }
            }
        });
    }
    load_account_limits(store.as_ref(), &engine).await?;
    load_reservations(store.as_ref(), &engine).await?;
    let sqs_metrics = sqs.start_metrics(observe.metrics().clone());
    // Alarms notify SNS topics and the default bus through the sinks.
    let alarms = strato_alarms::AlarmService::open(
        store.clone(),
        observe.metrics().clone(),
        sinks.clone(),
        config.time_scale,
    )
    .await?;
    let alarm_evaluator = alarms.start();
    let key_refresh = spawn_key_refresh(accounts.clone(), store.clone(), engine.clone());
    let catalog = Arc::new(FunctionCatalog::new(store.clone()));
    let rest_apis = strato_gateway::rest_api::RestApiService::start(
        store.clone(),
        Arc::new(strato_api::lambda::EngineInvoker::new(
            catalog.clone(),
            engine.clone(),
            iam.clone(),
        )),
        strato_gateway::http_backend::HttpBackend::new()
            .map_err(|e| ServerError::Gateway(e.to_string()))?,
        strato_gateway::access_log::AccessLogWriter::new(observe.logs().clone()),
        strato_api::observe::gateway::GatewayMetrics::new(
            observe.clone(),
            strato_api::observe::gateway::ApiKind::Rest,
        ),
        accounts.clone(),
        iam.clone(),
    )
    .await
    .map_err(|e| ServerError::Gateway(e.to_string()))?;
    let gateway_invoker: Arc<dyn strato_gateway::invoker::LambdaInvoker> = Arc::new(
        strato_api::lambda::EngineInvoker::new(catalog.clone(), engine.clone(), iam.clone()),
    );
    // Built-in services (SNS, EventBridge, S3) invoke functions through this.
    let service_events: Arc<dyn strato_engine::async_invoke::ServiceEvents> = Arc::new(
        strato_api::lambda::EngineInvoker::new(catalog.clone(), engine.clone(), iam.clone()),
    );
    // EventBridge and Scheduler: rule targets and schedules invoke through
    // `service_events` and the sinks; buses take async destinations'
    // records and services' own events.
    let events = strato_events::EventsService::open(
        store.clone(),
        queues.clone(),
        sinks.clone(),
        service_events.clone(),
        config.time_scale,
    )
    .await?;
    sinks.register(strato_events::SIGNING_NAME, events.clone());
    sinks.register_bus(events.clone());
    // SNS publishes to functions (as sns.amazonaws.com), queues and HTTP
    // endpoints; async destinations, alarms and rules publish to it.
    let sns = strato_sns::SnsService::open(strato_sns::SnsConfig {
        store: store.clone(),
        queues: queues.clone(),
        targets: Arc::new(crate::sns_queues::SnsQueues(sqs.clone())),
        functions: service_events.clone(),
        data_dir: config.data_dir.clone(),
        time_scale: config.time_scale,
    })
    .await?;
    sinks.register(strato_sns::SIGNING_NAME, sns.clone());
    let http_apis = strato_gateway::http_api::HttpApiService::start(
        store.clone(),
        gateway_invoker.clone(),
        strato_gateway::http_backend::HttpBackend::new()
            .map_err(|e| ServerError::Gateway(e.to_string()))?,
        strato_gateway::access_log::AccessLogWriter::new(observe.logs().clone()),
        strato_api::observe::gateway::GatewayMetrics::new(
            observe.clone(),
            strato_api::observe::gateway::ApiKind::Http,
        ),
        accounts.clone(),
        config.public_urls.clone(),
        strato_gateway::websocket::Limits::scaled(config.time_scale),
        iam.clone(),
    )
    .await
    .map_err(|e| ServerError::Gateway(e.to_string()))?;
    let function_urls = strato_gateway::function_url::FunctionUrlService::start(
        store.clone(),
        gateway_invoker,
        accounts.clone(),
        config.public_urls.clone(),
    )
    .await?;
    let dataplane = Arc::new(strato_gateway::dataplane::DataPlane {
        http_apis: http_apis.clone(),
        rest_apis: rest_apis.clone(),
        function_urls: function_urls.clone(),
    });
    // Event source mappings poll SQS queues and run batches through the
    // engine, resolving functions as queued async events are resolved.
    // Stream mappings read DynamoDB streams the same way, checkpointing in
    // the store and sending discarded batches' records through the sinks.
    let batch_target: Arc<dyn strato_engine::event_source::BatchTarget> =
        Arc::new(strato_engine::event_source::EngineBatchTarget::new(
            engine.clone(),
            Arc::new(strato_api::lambda::CatalogAsyncTargets::new(
                catalog.clone(),
            )),
        ));
    let mapping_pollers = strato_engine::event_source::SqsPollers::new(
        sqs.clone(),
        batch_target.clone(),
        sqs_poller_settings(config.time_scale),
    );
    let stream_pollers = strato_engine::event_source::StreamPollers::new(
        strato_dynamodb::StreamReader::new(dynamodb.clone()),
        batch_target,
        sinks.clone(),
        Arc::new(strato_api::lambda::StoreCheckpoints(store.clone())),
        stream_poller_settings(config.time_scale),
    );
    let event_source_mappings = strato_api::lambda::EventSourceMappings::load(
        store.clone(),
        Some(mapping_pollers),
        Some(stream_pollers),
    )
    .await?;
    let s3 = Arc::new(
        strato_s3::S3Server::open(
            &config.data_dir,
            accounts.clone(),
            iam.clone(),
            sinks.clone(),
            service_events.clone(),
            config.durability,
        )
        .map_err(|e| ServerError::S3(e.to_string()))?,
    );
    let state = Arc::new(ApiState {
        catalog,
        engine: engine.clone(),
        code,
        accounts,
        code_urls,
        rest_apis,
        http_apis,
        function_urls,
        dataplane,
        observe: observe.clone(),
        event_source_mappings: event_source_mappings.clone(),
        sqs: sqs.clone(),
        dynamodb,
        alarms,
        sns: sns.clone(),
        sinks: sinks.clone(),
        service_events: service_events.clone(),
        events: events.clone(),
        iam,
        s3,
    });
    let resumed = strato_api::lambda::resume_settling(&state).await?;
    if resumed > 0 {
        tracing::info!(
            resumed,
            "settling functions left pending by the previous run"
        );
    }
    let app = strato_api::router(state.clone());

    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    // The engine must not own the API state that owns the engine: instances
    // build their API router from a weak reference when they start.
    let weak_state = Arc::downgrade(&state);
    let aws_hostnames = sandbox_tls.map(|tls| {
        let weak_state = weak_state.clone();
        strato_engine::AwsHostnames {
            serve_tls: Arc::new(move |listener: TcpListener| match weak_state.upgrade() {
                Some(state) => {
                    crate::sandbox_ca::serve_tls(listener, tls.clone(), strato_api::router(state))
                }
                None => tokio::spawn(async {}),
            }),
            upstreams: Arc::new(strato_engine::dns::Upstreams::of_host()),
        }
    });
    engine.set_api_endpoint(ApiEndpoint {
        host_url: format!("http://{local_addr}"),
        aws_hostnames,
        serve: Arc::new(move |listener: TcpListener| {
            let state = weak_state.upgrade();
            tokio::spawn(async move {
                let Some(state) = state else { return };
                let app = strato_api::router(state);
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let _ = axum::serve(listener, app).await;
            })
        }),
    });
    // Provisioned instances start once functions can reach the API.
    let records = state.catalog.store().list_all_functions().await?;
    strato_api::lambda::restore_provisioned_concurrency(&state, &records).await;
    // Events a previous run accepted run again once functions can be invoked.
    engine
        .start_async(
            queues.clone(),
            Arc::new(strato_api::lambda::CatalogAsyncTargets::new(
                state.catalog.clone(),
            )),
            // Destinations and dead-letter targets, by the service their ARN names.
            Some(sinks.clone() as Arc<dyn strato_engine::async_invoke::EventSink>),
            config.time_scale,
        )
        .await?;
    // Mappings poll again once functions can be invoked.
    event_source_mappings.resume().await;
    // Deliveries a previous run accepted go out; schedules fire.
    let events_tasks = events.start().await;
    sns.set_endpoint(&format!("http://{local_addr}"));
    let sns_deliveries = sns.start();
    let (tx, rx) = oneshot::channel::<()>();
    let listener = crate::listener::RecordingListener(listener);
    let task = tokio::spawn(async move {
        axum::serve(listener, crate::listener::MakeConnectionService(app))
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(
        %local_addr,
        data_dir = %config.data_dir.display(),
        keep_alive_s = config.keep_alive.as_secs(),
        memory_budget_mb = config.memory_budget_mb,
        max_event_age_s = config.max_event_age.as_secs(),
        stem_cells_per_runtime = config.stem_cells,
        scale_out_wait_ms = config.scale_out_wait.as_millis(),
        "strato is listening"
    );
    Ok(RunningServer {
        local_addr,
        engine,
        initial_key,
        observe,
        queues,
        event_source_mappings,
        shutdown: Some(tx),
        task,
        background: [
            key_refresh,
            sqs_metrics,
            dynamodb_ttl,
            alarm_evaluator,
            sns_deliveries,
        ]
        .into_iter()
        .chain(events_tasks)
        .collect(),
    })
}
