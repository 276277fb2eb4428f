//! The reference orchestrator's control plane (feature `server`).
//!
//! The durable store ([`store`]): the key–value store with revisions, conditional writes
//! and watches that the API server keeps Kubernetes objects in; the API server ([`api`])
//! that the real `kubectl` uses; the [`controllers`] (Deployment, ReplicaSet, Job,
//! garbage collection, node lifecycle, Endpoints) and Plimsoll's [`scheduling`] loop,
//! which act through the API like any client and run together under [`control`], in the
//! holder of a Lease when several could ([`leader`]); and one [`metrics`] registry for
//! all of them. The node agent is the next step (see the README).

pub mod api;
pub mod cidr;
pub mod clock;
pub mod control;
pub mod controllers;
pub mod leader;
pub mod metrics;
pub mod scheduling;
pub mod store;
pub mod usage;
