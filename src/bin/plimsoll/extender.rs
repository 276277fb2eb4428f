//! `plimsoll extender`: serve the kube-scheduler extender verbs over HTTP.

use crate::Status;
use anyhow::Context;
use clap::Args;
use plimsoll::extender::{self, ExtenderConfig, ExtenderState};
use std::path::PathBuf;

/// Options of `plimsoll extender`.
#[derive(Debug, Args)]
pub struct ExtenderArgs {
    /// Address to listen on (kube-scheduler's `urlPrefix` points here).
    #[arg(long, default_value = "127.0.0.1:8888")]
    pub listen: String,
    /// Online policy whose scores `/prioritize` returns (kube-default, best-fit, …).
    #[arg(long, default_value = "best-fit")]
    pub policy: String,
    /// Snapshot of nodes and bound pods (YAML/JSON manifests, e.g.
    /// `kubectl get nodes,pods -A -o json`) that seeds the node/pod cache; repeatable.
    #[arg(long, visible_alias = "snapshot", value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// Path prefix in front of every verb (e.g. `/plimsoll`).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Largest request body accepted, in MiB (413 above).
    #[arg(long, default_value_t = 64)]
    pub body_limit_mib: usize,
    /// Seed of the `random` policy (and of seeded tie-breaking).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Worker threads of the runtime (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Runs the server until Ctrl-C.
pub fn run(args: &ExtenderArgs) -> anyhow::Result<Status> {
    let policy = extender::policy(&args.policy, args.seed)?;
    let cache = extender::cache_from_files(policy, &args.config)?;
    tracing::info!(
        nodes = cache.cluster().node_count(),
        bound_pods = cache.bound_count(),
        policy = %args.policy,
        "extender cache ready"
    );
    let config = ExtenderConfig {
        path_prefix: args.prefix.clone(),
        body_limit: args.body_limit_mib << 20,
        ..ExtenderConfig::default()
    };
    let app = extender::router(ExtenderState::new(cache, config));
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        rt.worker_threads(args.threads);
    }
    let rt = rt
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        eprintln!(
            "plimsoll extender listening on http://{addr} (policy {})",
            args.policy
        );
        axum::serve(extender::ErrorBodyListener(listener), app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")
    })?;
    Ok(Status::Ok)
}
