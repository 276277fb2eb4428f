//! What every controller gets: a client of the API server, the injected clock, an event
//! recorder and its metrics.

use super::events::Recorder;
pub use crate::server::clock::OrchClock;
use crate::server::metrics::ControllerMetrics;
use std::sync::Arc;

/// Shared by every controller of one control plane.
#[derive(Clone)]
pub struct Context {
    /// A client of the API server (controllers act through the API, never the store).
    pub client: kube::Client,
    /// The injected clock.
    pub clock: OrchClock,
    /// Events for what controllers do.
    pub recorder: Recorder,
    /// Work-queue depth, reconciles and errors per controller.
    pub metrics: Arc<ControllerMetrics>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("clock", &self.clock)
            .finish()
    }
}
