//! The API server: Kubernetes' REST API over HTTPS, on a [`Store`],
//! for the kinds in [`kinds`], so that the real `kubectl` (and kube-rs, client-go) work
//! against it.
//!
//! [`serve`] does what `plimsoll server` does: opens the store (embedded redb under the
//! data directory, or etcd), creates the system namespaces, creates or reuses a CA and a
//! serving certificate ([`pki`]), writes `DATA_DIR/admin.kubeconfig` with an admin token,
//! and serves until told to stop. Requests go through [`handlers`]: authentication by
//! bearer token and authorisation ([`auth`]), content negotiation (JSON, YAML, Kubernetes
//! protobuf bodies; JSON, Table and metadata responses), the verbs on the store, patches
//! ([`strategic`] merge patch included), watches, discovery and OpenAPI ([`discovery`]).

pub mod auth;
pub mod discovery;
pub mod handlers;
pub mod kinds;
pub mod kubelet;
pub mod listen;
pub mod logs;
mod object_count;
pub mod objects;
mod patch;
pub mod pki;
pub mod protobuf;
mod routes;
pub mod selector;
pub mod services;
pub mod status;
pub mod strategic;
pub mod table;
mod tokenreview;
mod usage_api;
mod watch;

pub use handlers::{Api, ApiOptions};
pub use routes::router;

use super::metrics::Metrics;
use super::store::{EmbeddedStore, Store, StoreError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Which store the server keeps its objects in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// redb, in `DATA_DIR/store.redb`.
    Embedded,
    /// An etcd cluster at these endpoints.
    #[cfg(feature = "etcd")]
    Etcd(Vec<String>),
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the store (if embedded), certificates, tokens and kubeconfig live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Extra names and addresses the serving certificate covers.
    pub tls_sans: Vec<String>,
    /// The store.
    pub store: StoreChoice,
    /// A static token file (`token,user,uid,"group1,group2"`).
    pub tokens_file: Option<PathBuf>,
    /// Request limits and watch settings.
    pub options: ApiOptions,
    /// Connection limits.
    pub limits: listen::ListenLimits,
    /// How often the store's event history is compacted (to the revision of the
    /// previous compaction tick, as kube-apiserver compacts etcd every 5 minutes).
    pub compact_interval: Duration,
    /// The registry to count in and serve on `/metrics`; `None` for a fresh one. Pass
    /// the registry of the in-process scheduler and controllers to serve theirs too
    /// (or take the server's from [`Prepared::metrics`]).
    pub metrics: Option<Arc<Metrics>>,
}

impl ServerConfig {
    /// Defaults: embedded store, no token file, kube-apiserver's limits.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
            tls_sans: Vec::new(),
            store: StoreChoice::Embedded,
            tokens_file: None,
            options: ApiOptions::default(),
            limits: listen::ListenLimits::default(),
            compact_interval: Duration::from_secs(300),
            metrics: None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The data directory or a file in it.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Certificates or kubeconfig.
    #[error("tls: {0}")]
    Pki(#[from] pki::PkiError),
    /// The token file.
    #[error("tokens: {0}")]
    Auth(#[from] auth::AuthError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
    move |source| ServerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The namespaces every cluster has.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Opens the configured store.
pub fn open_store(config: &ServerConfig) -> Result<Arc<dyn Store>, ServerError> {
    match &config.store {
        StoreChoice::Embedded => Ok(Arc::new(EmbeddedStore::open(
            &config.data_dir.join("store.redb"),
        )?)),
        #[cfg(feature = "etcd")]
        StoreChoice::Etcd(endpoints) => Ok(Arc::new(super::store::EtcdStore::connect(endpoints)?)),
    }
}

/// Creates the system namespaces that do not exist yet.
pub fn bootstrap(store: &dyn Store) -> Result<(), StoreError> {
    let rt = kinds::find("", "v1", "namespaces").expect("namespaces are served");
    for ns in SYSTEM_NAMESPACES {
        let key = rt.key("", ns);
        if store.get(&key)?.is_some() {
            continue;
        }
        let obj = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": objects::now_rfc3339(),
                "labels": {"kubernetes.io/metadata.name": ns}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        match store.create(&key, &handlers::encode(&obj)) {
            Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    // The two system priority classes every cluster has.
    let pcs = kinds::find("scheduling.k8s.io", "v1", "priorityclasses").expect("served");
    for (name, value, what) in [
        ("system-cluster-critical", 2_000_000_000, "cluster"),
        ("system-node-critical", 2_000_001_000, "node"),
    ] {
        let key = pcs.key("", name);
        if store.get(&key)?.is_some() {
            continue;
        }
        let obj = serde_json::json!({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name, "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": objects::now_rfc3339()},
            "value": value, "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority",
            "description": format!("Used for system critical pods that must not be moved from their current {what}."),
        });
        match store.create(&key, &handlers::encode(&obj)) {
            Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The admin token: `DATA_DIR/admin.token`, created on first start.
fn admin_token(data_dir: &Path) -> Result<String, ServerError> {
    let path = data_dir.join("admin.token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&path)(e)),
    }
    let token = pki::new_token();
    let tmp = data_dir.join("admin.token.tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(token.as_bytes()).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    Ok(token)
}

/// A prepared server: store open, certificates and kubeconfig written, listener bound.
pub struct Prepared {
    config: ServerConfig,
    store: Arc<dyn Store>,
    tokens: auth::Tokens,
    pki: pki::Pki,
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    /// The address actually bound.
    pub addr: SocketAddr,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
}

impl Prepared {
    /// Opens everything [`serve`] needs (call from within a tokio runtime).
    pub async fn new(config: ServerConfig) -> Result<Self, ServerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(io_err(&config.data_dir))?;
        let c = config.clone();
        let store = tokio::task::spawn_blocking(move || {
            let store = open_store(&c)?;
            bootstrap(&*store)?;
            Ok::<_, ServerError>(store)
        })
        .await
        .map_err(|e| ServerError::Store(StoreError::Backend(e.to_string())))??;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| ServerError::Io {
                path: PathBuf::from(config.listen.to_string()),
                source: e,
            })?;
        let addr = listener.local_addr().map_err(|e| ServerError::Io {
            path: PathBuf::from(config.listen.to_string()),
            source: e,
        })?;
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let mut sans = config.tls_sans.clone();
        sans.push(host.clone());
        let pki = pki::Pki::load_or_create(&config.data_dir, &sans)?;
        let token = admin_token(&config.data_dir)?;
        let mut tokens = auth::Tokens::new();
        tokens.insert(
            token.clone(),
            auth::User {
                name: "system:admin".into(),
                uid: "admin".into(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
            },
        )?;
        if let Some(file) = &config.tokens_file {
            tokens.load_file(file)?;
        }
        let url_host = if addr.ip().is_ipv6() {
            format!("[{host}]")
        } else {
            host
        };
        let server_url = format!("https://{url_host}:{}", addr.port());
        let kubeconfig = config.data_dir.join("admin.kubeconfig");
        pki::write_kubeconfig(
            &kubeconfig,
            "plimsoll",
            &server_url,
            pki.ca_pem(),
            "admin",
            &token,
        )?;
        let metrics = config.metrics.clone().unwrap_or_else(Metrics::new);
        Ok(Self {
            config,
            store,
            tokens,
            pki,
            listener,
            metrics,
            addr,
            kubeconfig,
        })
    }

    /// The registry the server counts in and serves on `GET /metrics`: hand it to the
    /// scheduler and controllers running in the same process so that one scrape has
    /// everything.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let mut options = self.config.options.clone();
        options.server_address = self.addr.to_string();
        let api = Arc::new(
            Api::new(self.store.clone(), self.tokens, options).with_metrics(self.metrics.clone()),
        );
        let compactor = tokio::spawn(compact_loop(
            self.store.clone(),
            self.config.compact_interval,
        ));
        let counter = tokio::spawn(object_count::keep_counts(
            self.store.clone(),
            self.metrics.clone(),
        ));
        let result = listen::serve_tls(
            self.listener,
            self.pki.server_config(),
            router(api),
            self.config.limits.clone(),
            shutdown,
        )
        .await;
        compactor.abort();
        counter.abort();
        result
    }
}

/// Compacts the store's history every `every`, to the revision seen one tick earlier.
async fn compact_loop(store: Arc<dyn Store>, every: Duration) {
    let mut previous: Option<u64> = None;
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let s = store.clone();
        let prev = previous;
        let result = tokio::task::spawn_blocking(move || {
            let now = s.revision()?;
            if let Some(p) = prev {
                if p > s.compacted()? {
                    s.compact(p)?;
                }
            }
            Ok::<u64, StoreError>(now)
        })
        .await;
        match result {
            Ok(Ok(now)) => previous = Some(now),
            Ok(Err(e)) => tracing::warn!("compaction failed: {e}"),
            Err(e) => tracing::warn!("compaction task failed: {e}"),
        }
    }
}

/// Prepares and serves until `shutdown` resolves (what `plimsoll server` runs).
pub async fn serve(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let prepared = Prepared::new(config).await?;
    let addr = prepared.addr;
    tracing::info!(
        "serving on https://{addr}; kubeconfig {}",
        prepared.kubeconfig.display()
    );
    prepared.serve(shutdown).await.map_err(|e| ServerError::Io {
        path: PathBuf::from(addr.to_string()),
        source: e,
    })
}
