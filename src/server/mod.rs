//! The reference orchestrator's control plane (feature `server`).
//!
//! So far its durable store ([`store`]): the key–value store with revisions, conditional
//! writes and watches that an API server keeps Kubernetes objects in. The API server,
//! controllers and node agent that use it are the next steps (see the README's roadmap).

pub mod store;
