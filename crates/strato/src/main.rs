//! `strato`: the server and its administration commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strato::accounts;
use strato::server::{self, ServerConfig};
use strato_sandbox::ModePreference;

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

#[derive(Subcommand)]
enum Command {
    /// Serve the AWS-compatible API.
    Serve {
        /// Address to listen on. Loopback-only servers get the local test/test account on first start.
        #[arg(long, env = "STRATO_LISTEN", default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        #[command(flatten)]
        data: DataDirArg,
        /// The region clients should configure.
        #[arg(long, env = "STRATO_REGION", default_value = "us-east-1")]
        region: String,
        /// Seconds an idle instance stays warm before it is ended.
        #[arg(long, env = "STRATO_KEEP_ALIVE", default_value_t = 300)]
        keep_alive: u64,
        /// Isolation: `auto` (strong where the host allows, else a loud fallback), `strong` (or fail), `fallback`.
        #[arg(long, env = "STRATO_SANDBOX", default_value = "auto", value_parser = ["auto", "strong", "fallback"])]
        sandbox: String,
    },
    /// Administer accounts and their access keys.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
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
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRATO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
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
            data,
            region,
            keep_alive,
            sandbox,
        } => {
            init_tracing();
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find the strato binary: {e}"))?;
            let mut config = ServerConfig::new(listen, data.data_dir, exe);
            config.region = region.clone();
            config.keep_alive = std::time::Duration::from_secs(keep_alive);
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
    }
}
