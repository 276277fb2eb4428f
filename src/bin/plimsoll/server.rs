//! `plimsoll server`: the reference orchestrator's API server (HTTPS, kubeconfig, tokens)
//! on the embedded store or on etcd.

use crate::Status;
use anyhow::Context;
use clap::{Args, ValueEnum};
use plimsoll::server::api::{self, ServerConfig, StoreChoice};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Which store keeps the objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreArg {
    /// redb in DATA_DIR/store.redb: every write durable before it is acknowledged.
    Embedded,
    /// An etcd cluster (`--etcd-endpoints`).
    Etcd,
}

/// Options of `plimsoll server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Directory of the store (embedded), certificates, tokens and admin.kubeconfig.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on (HTTPS).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Store of the objects.
    #[arg(long, value_enum, default_value = "embedded")]
    pub store: StoreArg,
    /// etcd client URLs, comma-separated (with `--store etcd`).
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub etcd_endpoints: Vec<String>,
    /// Kubernetes static token file: `token,user,uid,"group1,group2"` per line.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Extra DNS names or IP addresses for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_san: Vec<String>,
    /// Largest request body accepted, in bytes (413 above).
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    pub max_body: usize,
    /// Seconds between watch bookmarks (for clients that allow them).
    #[arg(long, default_value_t = 60)]
    pub bookmark_interval: u64,
    /// Seconds between compactions of the store's event history.
    #[arg(long, default_value_t = 300)]
    pub compact_interval: u64,
    /// Worker threads of the runtime (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: &ServerArgs) -> anyhow::Result<Status> {
    let mut config = ServerConfig::new(&args.data_dir, args.listen);
    config.store = match args.store {
        StoreArg::Embedded => StoreChoice::Embedded,
        StoreArg::Etcd if args.etcd_endpoints.is_empty() => {
            anyhow::bail!("--store etcd needs --etcd-endpoints (e.g. http://127.0.0.1:2379)")
        }
        StoreArg::Etcd => StoreChoice::Etcd(args.etcd_endpoints.clone()),
    };
    config.tokens_file = args.tokens.clone();
    config.tls_sans = args.tls_san.clone();
    config.options.max_body = args.max_body;
    config.options.bookmark_interval =
        std::time::Duration::from_secs(args.bookmark_interval.max(1));
    config.compact_interval = std::time::Duration::from_secs(args.compact_interval.max(1));
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        rt.worker_threads(args.threads);
    }
    let rt = rt
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async {
        let prepared = api::Prepared::new(config)
            .await
            .with_context(|| format!("starting the server in {}", args.data_dir.display()))?;
        eprintln!(
            "plimsoll server listening on https://{}; KUBECONFIG={}",
            prepared.addr,
            prepared.kubeconfig.display()
        );
        prepared
            .serve(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("installing the SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            })
            .await
            .context("serving")
    })?;
    Ok(Status::Ok)
}
