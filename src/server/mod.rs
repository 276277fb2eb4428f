//! The reference orchestrator's control plane (feature `server`).
//!
//! The durable store ([`store`]): the key–value store with revisions, conditional writes
//! and watches that the API server keeps Kubernetes objects in; and the API server
//! ([`api`]) that the real `kubectl` uses. Controllers, the scheduling loop and the node
//! agent are the next steps (see the README's roadmap).

pub mod api;
pub mod control;
pub mod controllers;
pub mod leader;
pub mod metrics;
pub mod scheduling;
pub mod store;
