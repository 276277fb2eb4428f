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
#![deny(missing_docs)]

pub mod balance;
pub mod bench;
pub mod datasets;
pub mod experiment;
pub mod extender;
pub mod manifest;
pub mod model;
pub mod place;
pub mod predict;
pub mod sim;
