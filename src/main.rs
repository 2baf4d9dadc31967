//! `zkrs`: a drop-in replacement for Apache ZooKeeper 3.8 servers.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod bench;
mod cli;
mod ensemble;
mod panic_exit;

#[derive(Parser)]
#[command(
    name = "zkrs",
    version,
    about = "A ZooKeeper-compatible coordination service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server in the foreground (zoo.cfg syntax; without a file: 127.0.0.1:2181, ./zkrs-data).
    Server {
        /// Path to zoo.cfg
        config: Option<PathBuf>,
        /// Start even when txns are missing from the dataDir (a log file lost, a gap between
        /// the snapshot and the logs): serve the data that is there, with an error logged
        /// naming the missing zxids. Without it such a dataDir refuses to start.
        #[arg(long)]
        accept_data_loss: bool,
    },
    /// Run a local replicated ensemble: `zkrs ensemble start 3`, `status`, `stop`.
    Ensemble(ensemble::EnsembleArgs),
    /// Load a server with a closed-loop workload and print the result as JSON.
    Bench(bench::BenchArgs),
    /// A shell compatible with zkCli.sh: `zkrs cli -server HOST:PORT [CMD ARGS…]`.
    #[command(disable_help_flag = true)]
    Cli {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Print a transaction log file (log.<zxid>) readably, like ZooKeeper's TxnLogToolkit.
    Txnlog { file: PathBuf },
    /// Print a snapshot file (snapshot.<zxid>) readably, like ZooKeeper's SnapshotFormatter.
    Snapshot { file: PathBuf },
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    if let Command::Cli { args } = &command {
        // no log output in the shell: what it prints is compared with zkCli.sh's
        std::process::exit(cli::main(args.clone()));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    panic_exit::install();
    match command {
        Command::Cli { .. } => Ok(()),
        Command::Server {
            config,
            accept_data_loss,
        } => {
            server::persist::set_accept_data_loss(accept_data_loss);
            run_server(config)
        }
        Command::Ensemble(args) => ensemble::run(args),
        Command::Txnlog { file } => {
            storage::inspect::format_log(&file, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Command::Snapshot { file } => {
            storage::inspect::format_snapshot(&file, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Command::Bench(args) => {
            let runtime = if args.threads <= 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(args.threads)
                    .enable_all()
                    .build()?
            };
            let result = runtime.block_on(bench::run(args))?;
            println!("{result}");
            Ok(())
        }
    }
}

/// The server's sockets, timers and core run on one thread unless `ZKRS_WORKER_THREADS` asks
/// for more. The core is one task whatever the count, so more threads only spread socket reads
/// and writes; on the 2-core benchmark machine a single thread served 16% more writes than
/// tokio's default of one worker per core, which paid for the wake-ups between its workers.
/// The transaction log's fsyncs and the snapshot writes have threads of their own either way.
fn server_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let threads = match std::env::var("ZKRS_WORKER_THREADS") {
        Err(_) => 1,
        Ok(value) => value
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "ZKRS_WORKER_THREADS={value:?}: expected a number of threads, 1 or more"
                )
            })?,
    };
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    Ok(builder.enable_all().build()?)
}

/// zkrs reads no JVM flags, but a ZooKeeper installation may carry security settings as
/// `-D` system properties in `SERVER_JVMFLAGS` / `JVMFLAGS` (zkEnv.sh, zookeeper-env.sh). One
/// that turns on a security feature zkrs does not implement refuses the start, as in zoo.cfg.
fn refuse_security_jvm_flags() -> anyhow::Result<()> {
    for var in ["SERVER_JVMFLAGS", "JVMFLAGS"] {
        if let Some(flags) = std::env::var_os(var) {
            config::check_jvm_flags(var, &flags.to_string_lossy())?;
        }
    }
    Ok(())
}

fn run_server(path: Option<PathBuf>) -> anyhow::Result<()> {
    refuse_security_jvm_flags()?;
    let cfg = match &path {
        None => config::ZooCfg::embedded_default(),
        // the static file, its dynamic file (dynamicConfigFile) and a pending .dynamic.next
        Some(p) => server::dynamic_files::load(p)?,
    };
    for unknown in &cfg.unknown_keys {
        tracing::warn!(
            "{}:{}: unknown key {:?} ignored",
            cfg.source,
            unknown.line,
            unknown.key
        );
    }
    let runtime = server_runtime()?;
    runtime.block_on(async move {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        let replicated = cfg.quorum.as_ref().is_some_and(|q| q.members.len() > 1);
        server::run(cfg, shutdown, move |addr| {
            tracing::info!(
                "zkrs {} {} server listening on {addr}",
                env!("CARGO_PKG_VERSION"),
                if replicated {
                    "replicated"
                } else {
                    "standalone"
                }
            );
            println!("zkrs listening on {addr}");
        })
        .await
    })
}
