//! The control plane's clock: the core's injected clock anchored at a wall-clock instant.

use crate::place::clock::SharedClock;
use jiff::Timestamp;
use std::time::Duration;

/// Time as the orchestrator sees it: the core's injected monotonic [`SharedClock`]
/// (delays, back-off, deadlines) anchored at a wall-clock instant (timestamps written to
/// objects, lease ages). With [`crate::place::clock::WallClock`] and `epoch` = now it
/// is wall time; a simulator passes a `ManualClock` and its own epoch.
#[derive(Debug, Clone)]
pub struct OrchClock {
    mono: SharedClock,
    epoch: Timestamp,
}

impl OrchClock {
    /// `mono`'s zero is the instant `epoch`.
    pub fn new(mono: SharedClock, epoch: Timestamp) -> Self {
        OrchClock { mono, epoch }
    }

    /// Wall time: now.
    pub fn wall() -> Self {
        OrchClock::new(crate::place::clock::WallClock::shared(), Timestamp::now())
    }

    /// The monotonic clock.
    pub fn mono(&self) -> &SharedClock {
        &self.mono
    }

    /// Monotonic time since the clock's origin.
    pub fn elapsed(&self) -> Duration {
        self.mono.now()
    }

    /// The current instant as a timestamp.
    pub fn now(&self) -> Timestamp {
        let d = self.mono.now();
        let span = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
        self.epoch.checked_add(span).unwrap_or(self.epoch)
    }

    /// The current instant as Kubernetes' `metav1.Time`.
    pub fn now_k8s(&self) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(self.now())
    }

    /// How long ago `t` was (zero if it is in the future).
    pub fn since(&self, t: Timestamp) -> Duration {
        let d = self.now().duration_since(t);
        Duration::try_from(d).unwrap_or(Duration::ZERO)
    }
}
