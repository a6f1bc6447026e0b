//! `strato`: the server and its administration commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strato::accounts;
use strato::server::{self, ServerConfig};
use strato_sandbox::ModePreference;

/// mimalloc instead of glibc's allocator: a warm invocation allocates and frees
/// a few hundred small buffers (HTTP heads, headers, JSON, log lines) across
/// tokio's threads, and glibc's arenas spent ~14% of the server's CPU on them
/// (`bench/profile_warm.py --perf`; bench/README.md has the figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "strato",
    version,
    about = "A self-hosted serverless platform that speaks AWS Lambda"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct DataDirArg {
    /// Where Strato keeps its state and code packages.
    #[arg(long, env = "STRATO_DATA_DIR", default_value = "./.strato")]
    data_dir: PathBuf,
}

#[derive(clap::Args, Clone)]
struct RuntimesDirArg {
    #[command(flatten)]
    data: DataDirArg,
    /// Where runtime components are installed (default: <data-dir>/runtimes);
    /// several servers may share one.
    #[arg(long, env = "STRATO_RUNTIMES_DIR")]
    runtimes_dir: Option<PathBuf>,
}

impl RuntimesDirArg {
    fn dir(&self) -> PathBuf {
        self.runtimes_dir
            .clone()
            .unwrap_or_else(|| self.data.data_dir.join("runtimes"))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the AWS-compatible API.
    Serve {
        /// Address to listen on. Loopback-only servers get the local test/test account on first start.
        #[arg(long, env = "STRATO_LISTEN", default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        #[command(flatten)]
        dirs: RuntimesDirArg,
        /// The region clients should configure.
        #[arg(long, env = "STRATO_REGION", default_value = "us-east-1")]
        region: String,
        /// Seconds an idle instance stays warm before it is ended.
        #[arg(long, env = "STRATO_KEEP_ALIVE", default_value_t = 300)]
        keep_alive: u64,
        /// MB of memory (Σ MemorySize) live instances may hold; idle instances
        /// are ended, least recently used first, to make room. Default: 80 % of
        /// the machine's memory.
        #[arg(long, env = "STRATO_MEMORY_BUDGET_MB")]
        memory_budget_mb: Option<u64>,
        /// The longest any event invocation lives, in seconds, whatever its
        /// MaximumEventAgeInSeconds says (AWS's maximum event age: 60 to 21600).
        #[arg(long, env = "STRATO_MAX_EVENT_AGE", default_value_t = 21600, value_parser = clap::value_parser!(u64).range(60..=21600))]
        max_event_age: u64,
        /// Stem cells (runtimes started ahead of need, so a cold start skips
        /// process, sandbox and network set-up) kept ready per runtime that
        /// has had a cold start; 0 turns them off.
        #[arg(long, env = "STRATO_STEM_CELLS", default_value_t = strato_engine::DEFAULT_STEM_CELLS)]
        stem_cells: usize,
        /// While as many instances are starting as the host has CPUs
        /// (another start would only slow them all down), an invocation that
        /// finds no idle instance waits for one to come free until its
        /// function's instances have made no progress (none came free,
        /// started or was starting) for this many milliseconds (at most 1 s
        /// while one is starting); then it starts another anyway. 0 always
        /// starts another at once, as AWS does.
        #[arg(long, env = "STRATO_SCALE_OUT_WAIT_MS", default_value_t = strato_engine::DEFAULT_SCALE_OUT_WAIT_MS, value_parser = clap::value_parser!(u64).range(0..=10_000))]
        scale_out_wait_ms: u64,
        /// For tests only: divides every asynchronous-invocation timing
        /// (retry delays of 1 and 2 minutes, back-off, maximum event ages)
        /// and the lifetime of functions' credentials (12 hours) by this
        /// factor. 60 makes a minute pass in a second.
        #[arg(long, env = "STRATO_TIME_SCALE", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=3600))]
        time_scale: u32,
        /// When an acknowledged write is durable, for every store that
        /// acknowledges a client's data (queued events and messages, DynamoDB
        /// items, S3 object contents): `fsync` (each commit reaches the disk;
        /// survives power loss) or `process-crash` (survives `kill -9` of the
        /// server, not a power loss; several times the write throughput).
        /// `--queue-durability` is its earlier name.
        #[arg(long, alias = "queue-durability", env = "STRATO_DURABILITY", default_value = "fsync", value_parser = strato_model::durability::Durability::NAMES)]
        durability: String,
        /// Isolation: `auto` (strong where the host allows, else a loud fallback), `strong` (or fail), `fallback`.
        #[arg(long, env = "STRATO_SANDBOX", default_value = "auto", value_parser = ["auto", "strong", "fallback"])]
        sandbox: String,
        /// The shape of the URLs Strato hands out (FunctionUrl, ApiEndpoint):
        /// `path` (`http://HOST:PORT/_strato/lambda-url/{id}/`; every HTTP
        /// client reaches it) or `host` (AWS's `{id}.lambda-url.{region}.DOMAIN`;
        /// needs wildcard DNS for DOMAIN, or curl/browsers for `localhost`).
        #[arg(long, env = "STRATO_URL_STYLE", default_value = "path", value_parser = ["path", "host"])]
        url_style: String,
        /// The base clients reach Strato at (`http[s]://HOST[:PORT]`), used in
        /// handed-out URLs. Default: the address each request was sent to.
        #[arg(long, env = "STRATO_PUBLIC_URL")]
        public_url: Option<String>,
        /// IAM policy enforcement: `off` (every authenticated request of an
        /// account is allowed, as on a laptop; IAM and STS still answer) or
        /// `enforce` (users', role sessions' and functions' execution roles'
        /// policies decide every request; root keys stay all-powerful).
        #[arg(long, env = "STRATO_IAM", default_value = "off", value_parser = ["off", "enforce"])]
        iam: String,
        /// Whether isolated functions reach Strato by AWS's own host names
        /// (`lambda.us-east-1.amazonaws.com` and every name under
        /// amazonaws.com, `*.lambda-url.REGION.on.aws`) over HTTPS: `on`
        /// (their resolver answers those names, Strato's sandbox CA signs
        /// the certificates; see `strato ca`) or `off`.
        #[arg(long, env = "STRATO_AWS_HOSTNAMES", default_value = "on", value_parser = ["on", "off"])]
        aws_hostnames: String,
    },
    /// Print the certificate of Strato's sandbox CA (made on first use), so a
    /// machine outside the sandboxes can trust the certificates Strato
    /// serves for AWS's host names.
    Ca {
        #[command(flatten)]
        data: DataDirArg,
    },
    /// What functions cost this month (or --month): requests, GB-seconds,
    /// the free tier used, per function and for the account.
    Cost {
        /// The month, YYYY-MM (default: the current one, UTC).
        #[arg(long)]
        month: Option<String>,
        /// Only this function.
        #[arg(long)]
        function: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: strato::observe_cli::CostFormat,
        #[command(flatten)]
        account: strato::observe_cli::AccountArgs,
    },
    /// A function's log lines (group /aws/lambda/NAME), oldest first.
    Logs {
        /// The function name.
        name: String,
        /// Keep printing new lines as they arrive.
        #[arg(long)]
        follow: bool,
        /// How far back to start: 30s, 10m, 2h, 1d.
        #[arg(long, default_value = "10m")]
        since: String,
        /// Only lines matching a CloudWatch Logs filter pattern.
        #[arg(long)]
        filter_pattern: Option<String>,
        #[command(flatten)]
        account: strato::observe_cli::AccountArgs,
    },
    /// A function's metrics: invocations, errors, throttles, duration
    /// (average, p50, p90, p99, maximum), peak concurrency, per period.
    Metrics {
        /// The function name.
        name: String,
        /// How far back: 30m, 3h, 1d.
        #[arg(long, default_value = "1h")]
        since: String,
        /// Seconds per row (a multiple of 60).
        #[arg(long, default_value_t = 60)]
        period: i64,
        #[command(flatten)]
        account: strato::observe_cli::AccountArgs,
    },
    /// Administer accounts and their access keys.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// See what runs each runtime identifier, and install runtimes ahead of
    /// their first use.
    Runtimes {
        #[command(subcommand)]
        command: RuntimesCommand,
    },
}

#[derive(Subcommand)]
enum RuntimesCommand {
    /// Each runtime identifier with what runs it, or why it cannot run.
    List {
        #[command(flatten)]
        dirs: RuntimesDirArg,
    },
    /// Install what runtimes fetch on first use: for java11/17/21 AWS's Java
    /// runtime interface client (from Maven Central or the mirror in
    /// ~/.m2/settings.xml), for nodejs*.x a Node.js release the host lacks
    /// (from the npm registry), and with --sdks the AWS SDKs the managed
    /// runtimes carry (boto3; the AWS SDK for JavaScript v3).
    Install {
        /// Runtime identifiers, e.g. `java21`, `nodejs22.x`.
        #[arg(required_unless_present = "sdks")]
        runtimes: Vec<String>,
        /// Also install the AWS SDKs for Python and Node.js functions.
        #[arg(long)]
        sdks: bool,
        #[command(flatten)]
        dirs: RuntimesDirArg,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Create an account with a new access key pair (printed once).
    Create {
        /// 12-digit account id; random when omitted.
        #[arg(long)]
        id: Option<String>,
        /// A name to recognise the account by.
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Delete an account, its keys and its functions.
    Delete {
        id: String,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Set an account's concurrency limit (per region; default 1000). A
    /// running server applies it within seconds.
    SetLimit {
        /// The 12-digit account id.
        id: String,
        /// Concurrent executions per region.
        limit: u32,
        #[command(flatten)]
        data: DataDirArg,
    },
}

/// The server's own log (one line per request at `info`) is written by a
/// thread of its own: a request formats its line and queues it, and never
/// waits for stdout. The guard flushes what is queued when it drops, at the
/// end of `main`.
fn init_tracing() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRATO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Not lossy: a reader far behind slows requests down rather than losing
    // lines.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("strato-log")
        .finish(std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer)
        .init();
    guard
}

fn main() -> ExitCode {
    // The sandbox re-executes this binary as the init of each instance; that
    // must happen before any thread (such as tokio's) exists.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == server::SANDBOX_INIT_ARG)
    {
        strato_sandbox::sandbox_init_main();
    }
    // Inside an OS-only runtime's stem cell: wait for the function, then
    // become it.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == strato_engine::stem::STEM_WAITER_ARG)
    {
        strato_engine::stem::stem_waiter_main();
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("strato: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("strato: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve {
            listen,
            dirs,
            region,
            keep_alive,
            memory_budget_mb,
            max_event_age,
            stem_cells,
            scale_out_wait_ms,
            time_scale,
            durability,
            sandbox,
            url_style,
            public_url,
            iam,
            aws_hostnames,
        } => {
            let _log_guard = init_tracing();
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find the strato binary: {e}"))?;
            let runtimes_dir = dirs.dir();
            let mut config = ServerConfig::new(listen, dirs.data.data_dir, exe);
            config.runtimes_dir = runtimes_dir;
            config.provision_sdks = true;
            config.region = region.clone();
            config.keep_alive = std::time::Duration::from_secs(keep_alive);
            if let Some(mb) = memory_budget_mb {
                config.memory_budget_mb = mb;
            }
            config.max_event_age = std::time::Duration::from_secs(max_event_age);
            config.stem_cells = stem_cells;
            config.scale_out_wait = std::time::Duration::from_millis(scale_out_wait_ms);
            config.time_scale = time_scale;
            config.durability = strato_model::durability::Durability::from_name(&durability)
                .unwrap_or(strato_model::durability::Durability::Fsync);
            let style = if url_style == "host" {
                strato_gateway::public_url::UrlStyle::Host
            } else {
                strato_gateway::public_url::UrlStyle::Path
            };
            config.public_urls =
                strato_gateway::public_url::PublicUrls::new(style, public_url.as_deref())
                    .map_err(|e| e.to_string())?;
            config.iam_enforced = iam == "enforce";
            config.aws_hostnames = aws_hostnames == "on";
            config.sandbox.mode = match sandbox.as_str() {
                "strong" => ModePreference::RequireStrong,
                "fallback" => ModePreference::ForceFallback,
                _ => ModePreference::Auto,
            };
            let running = server::start(config).await.map_err(|e| e.to_string())?;
            if let Some(key) = &running.initial_key {
                if key.access_key_id == accounts::LOCAL_ACCESS_KEY {
                    println!(
                        "Created local account {} with access key {} / secret {} (loopback only).",
                        key.account_id, key.access_key_id, key.secret_access_key
                    );
                } else {
                    println!(
                        "Created account {}. Access key: {}  Secret: {}  (shown once; keep it safe)",
                        key.account_id, key.access_key_id, key.secret_access_key
                    );
                }
            }
            println!(
                "Strato is serving on http://{} (region {region}). Try: aws --endpoint-url http://{} lambda list-functions",
                running.local_addr, running.local_addr
            );
            running.run_until_signal().await.map_err(|e| e.to_string())
        }
        Command::Accounts { command } => accounts_command(command).await,
        Command::Ca { data } => {
            let ca =
                strato::sandbox_ca::SandboxCa::open(&data.data_dir).map_err(|e| e.to_string())?;
            print!("{}", ca.certificate_pem());
            Ok(())
        }
        Command::Cost {
            month,
            function,
            format,
            account,
        } => {
            let text = strato::observe_cli::cost(&account, month, function, format).await?;
            print!("{text}");
            Ok(())
        }
        Command::Logs {
            name,
            follow,
            since,
            filter_pattern,
            account,
        } => {
            let since = strato::observe_cli::parse_since(&since)?;
            strato::observe_cli::logs(&account, &name, since, follow, filter_pattern).await
        }
        Command::Metrics {
            name,
            since,
            period,
            account,
        } => {
            if period < 60 || period % 60 != 0 {
                return Err("--period must be a multiple of 60 seconds".into());
            }
            let since = strato::observe_cli::parse_since(&since)?;
            print!(
                "{}",
                strato::observe_cli::metrics(&account, &name, since, period).await?
            );
            Ok(())
        }
        Command::Runtimes { command } => runtimes_command(command).await,
    }
}

async fn runtimes_command(command: RuntimesCommand) -> Result<(), String> {
    use strato_engine::runtimes::{java, maven, RuntimeCatalog};
    use strato_model::{Runtime, RuntimeFamily};
    let discover = |dir: &std::path::Path| {
        RuntimeCatalog::discover(dir).map_err(|e| format!("cannot use {}: {e}", dir.display()))
    };
    match command {
        RuntimesCommand::List { dirs } => {
            let dir = dirs.dir();
            let catalog = discover(&dir)?;
            println!("{:<16} RUNS WITH", "RUNTIME");
            for (runtime, outcome) in catalog.report() {
                match outcome {
                    Ok(version) => {
                        println!("{runtime:<16} {version}");
                        // The build's hash, as functions' RuntimeVersionArn shows it.
                        if let Some(hash) = runtime
                            .parse::<Runtime>()
                            .ok()
                            .and_then(|r| catalog.build_hash(r).ok())
                        {
                            println!("{:<16} build {hash}", "");
                        }
                    }
                    Err(reason) => println!("{runtime:<16} unavailable: {reason}"),
                }
            }
            let sdks = strato_engine::install::sdks_installed(catalog.bootstrap_dir());
            println!(
                "AWS SDKs for Python and Node.js functions: {}",
                if sdks {
                    "installed"
                } else {
                    "not installed (strato runtimes install --sdks)"
                }
            );
            Ok(())
        }
        RuntimesCommand::Install {
            runtimes,
            sdks,
            dirs,
        } => {
            let dir = dirs.dir();
            let mut wanted = Vec::new();
            for name in &runtimes {
                let runtime = Runtime::ALL
                    .into_iter()
                    .find(|r| r.as_str() == name)
                    .ok_or_else(|| {
                        format!(
                            "unknown runtime identifier {name:?} (one of: {})",
                            Runtime::ALL.map(Runtime::as_str).join(", ")
                        )
                    })?;
                wanted.push(runtime);
            }
            let catalog = discover(&dir)?;
            for runtime in wanted.iter().filter(|r| catalog.needs_node_install(**r)) {
                let major = strato_engine::runtimes::node_major(*runtime);
                eprintln!("Installing Node.js {major} for {runtime} from the npm registry");
                let install_dir = dir.clone();
                let installed = tokio::task::spawn_blocking(move || {
                    strato_engine::install::install_node(&install_dir, major)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("{runtime}: {e}"))?;
                eprintln!("Installed in {}", installed.display());
            }
            if wanted.iter().any(|r| r.family() == RuntimeFamily::Java) {
                let source = maven::MavenSource::from_machine().map_err(|e| e.to_string())?;
                eprintln!(
                    "Installing AWS's Java runtime interface client {} from {}{}",
                    java::RUNTIME_INTERFACE_CLIENT.version,
                    source.remote,
                    source
                        .mirror_id
                        .as_deref()
                        .map(|m| format!(" (mirror {m} from settings.xml)"))
                        .unwrap_or_default()
                );
                let fetcher = maven::Fetcher::new(source).map_err(|e| e.to_string())?;
                let outcome = java::install(&dir, &fetcher, &print_progress)
                    .await
                    .map_err(|e| e.to_string())?;
                match outcome {
                    java::Installed::Already(dir) => {
                        eprintln!("Already installed in {}", dir.display())
                    }
                    java::Installed::Now(dir) => eprintln!("Installed in {}", dir.display()),
                }
            }
            if sdks {
                eprintln!(
                    "Installing the AWS SDKs managed runtimes carry (Python: {}; Node.js: {} clients)",
                    strato_engine::install::PYTHON_SDK_PACKAGES.join(", "),
                    strato_engine::install::NODE_SDK_PACKAGES.len()
                );
                let done = strato_engine::provide_sdks(dir.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                eprintln!(
                    "{}",
                    if done {
                        "Installed"
                    } else {
                        "Already installed"
                    }
                );
            }
            let catalog = discover(&dir)?;
            for runtime in &wanted {
                let version = catalog.check(*runtime).map_err(|reason| {
                    format!("{runtime}: {reason}; Strato cannot install it, install it on the host")
                })?;
                println!("{runtime}: {version}");
            }
            Ok(())
        }
    }
}

fn print_progress(progress: strato_engine::runtimes::maven::Progress) {
    use std::io::{IsTerminal, Write};
    use strato_engine::runtimes::maven::Progress;
    let mut err = std::io::stderr();
    match progress {
        Progress::Local { artifact } => {
            let _ = writeln!(
                err,
                "  {} (from the local Maven repository, SHA-1 verified)",
                artifact.file_name()
            );
        }
        Progress::Downloading {
            artifact,
            received,
            total,
        } => {
            if err.is_terminal() {
                let shown = match total {
                    Some(total) if total > 0 => format!("{:>3}%", received * 100 / total),
                    _ => format!("{} KiB", received / 1024),
                };
                let _ = write!(err, "\r  {} {shown}", artifact.file_name());
                let _ = err.flush();
            }
        }
        Progress::Downloaded { artifact, bytes } => {
            if err.is_terminal() {
                let _ = write!(err, "\r\x1b[K");
            }
            let _ = writeln!(
                err,
                "  {} ({} KiB, SHA-1 verified)",
                artifact.file_name(),
                bytes.div_ceil(1024)
            );
        }
    }
}

async fn accounts_command(command: AccountsCommand) -> Result<(), String> {
    match command {
        AccountsCommand::Create { id, name, data } => {
            let store = server::open_store(&data.data_dir).map_err(|e| e.to_string())?;
            let (account, key) = accounts::create(&store, id.as_deref(), &name)
                .await
                .map_err(|e| e.to_string())?;
            println!("account_id\t{}", account.id);
            println!("access_key_id\t{}", key.access_key_id);
            println!("secret_access_key\t{}", key.secret_access_key);
            Ok(())
        }
        AccountsCommand::List { data } => {
            let store = server::open_store(&data.data_dir).map_err(|e| e.to_string())?;
            let accounts = strato_store::Store::list_accounts(&store)
                .await
                .map_err(|e| e.to_string())?;
            let keys = strato_store::Store::list_access_keys(&store)
                .await
                .map_err(|e| e.to_string())?;
            println!("ACCOUNT       NAME              CONCURRENCY  ACCESS KEYS");
            for a in accounts {
                let ids: Vec<&str> = keys
                    .iter()
                    .filter(|k| k.account_id == a.id)
                    .map(|k| k.access_key_id.as_str())
                    .collect();
                println!(
                    "{:<13} {:<17} {:<12} {}",
                    a.id,
                    a.name,
                    a.concurrency_limit,
                    ids.join(",")
                );
            }
            Ok(())
        }
        AccountsCommand::Delete { id, data } => {
            let store = server::open_store(&data.data_dir).map_err(|e| e.to_string())?;
            accounts::delete(&store, &id)
                .await
                .map_err(|e| e.to_string())?;
            println!("deleted account {id}");
            Ok(())
        }
        AccountsCommand::SetLimit { id, limit, data } => {
            let store = server::open_store(&data.data_dir).map_err(|e| e.to_string())?;
            let found = strato_store::Store::set_account_concurrency_limit(&store, &id, limit)
                .await
                .map_err(|e| e.to_string())?;
            if !found {
                return Err(format!("no account {id}"));
            }
            println!("account {id}: concurrency limit {limit}");
            Ok(())
        }
    }
}
