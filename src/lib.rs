//! Plimsoll: pod placement as an optimisation problem.
//!
//! Plimsoll reads Kubernetes manifests into a [`model::Problem`] (nodes, bound pods,
//! pending pods), places the pending pods with a greedy kube-scheduler-style policy or a
//! MILP solved by HiGHS ([`place`]), checks every answer with an independent validator
//! ([`place::validate`]) and explains every pod left out ([`place::explain`]).
//!
//! From manifests to a validated placement:
//!
//! ```
//! use plimsoll::{manifest, model::Problem, place};
//! # const MANIFESTS: &str = r#"
//! # apiVersion: v1
//! # kind: Node
//! # metadata: {name: node-a}
//! # status: {allocatable: {cpu: "8", memory: 32Gi, pods: "110"}}
//! # ---
//! # apiVersion: v1
//! # kind: Node
//! # metadata: {name: node-b}
//! # status: {allocatable: {cpu: "8", memory: 32Gi, pods: "110"}}
//! # ---
//! # apiVersion: apps/v1
//! # kind: Deployment
//! # metadata: {name: web}
//! # spec:
//! #   replicas: 2
//! #   selector: {matchLabels: {app: web}}
//! #   template:
//! #     metadata: {labels: {app: web}}
//! #     spec:
//! #       containers:
//! #       - name: web
//! #         image: nginx
//! #         resources: {requests: {cpu: "2", memory: 4Gi}}
//! # "#;
//!
//! let loaded = manifest::load_str(MANIFESTS, "inline.yaml")?;
//! let problem = Problem::from_parts(loaded.nodes, loaded.pods)?;
//! let outcome = place::policy_by_name("best-fit", &place::PolicyOptions::default())?
//!     .place(&problem)?;
//! place::validate::validate(&problem, &outcome.placement).expect("a valid placement");
//!
//! assert_eq!(outcome.placed(), 2);
//! // Best-fit packs both pods onto one node.
//! let nodes: std::collections::BTreeSet<_> =
//!     outcome.placement.iter().flatten().map(|b| b.node).collect();
//! assert_eq!(nodes.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! The placement core — [`model`], [`manifest`], [`records`], [`datasets`] (trace loaders and the
//! synthetic generator), [`place`]'s filters, scores, online policies, validator and
//! explanations — is always built and needs no async runtime, HTTP stack, command-line
//! parser, plotting or solver. The rest is opt-in; `default` (`cli`) turns on all of it:
//!
//! | feature | adds |
//! |---|---|
//! | `milp` | `place::milp` (HiGHS) and the `milp` policy |
//! | `predict` | `predict`: k-NN (kiddo), SVR and SVM (linfa-svm) |
//! | `balance` | `balance`: the min-migration rebalancer (implies `milp`) |
//! | `sim` | `sim`: the discrete-event trace replay |
//! | `plot` | SVG plots (`sim::plot`, the experiments' figures) |
//! | `bench` | `bench`: benchmark suites with the LP bound (implies `milp`) |
//! | `experiment` | `experiment`: the saturation and overcommit experiments |
//! | `extender` | `extender`: the kube-scheduler extender's HTTP server (axum, tokio) |
//! | `server` | `server`: the reference orchestrator's store (redb), API server, controllers, scheduling loop, leader election and metrics |
//! | `etcd` | `server::store::EtcdStore`: the same store on etcd (etcd-client) |
//! | `cli` | the `plimsoll` binary and everything above |
#![deny(missing_docs)]

#[cfg(feature = "agent")]
pub mod agent;
#[cfg(feature = "balance")]
pub mod balance;
#[cfg(feature = "bench")]
pub mod bench;
pub mod datasets;
#[cfg(feature = "experiment")]
pub mod experiment;
#[cfg(feature = "extender")]
pub mod extender;
pub mod manifest;
pub mod model;
pub mod place;
#[cfg(feature = "predict")]
pub mod predict;
pub mod records;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "sim")]
pub mod sim;
