//! Time as the scheduling interface sees it: an injected [`Clock`] and a [`Deadline`] on
//! it, so the same scheduling code runs against wall time (the extender, a control
//! plane's scheduling loop) and simulated time (the simulator moves a [`ManualClock`]
//! from event to event).
//!
//! Policies with a time budget (the MILP) read it from a [`Deadline`] — how long they
//! have had and how long is left — and never call `Instant::now()` themselves. Under a
//! manual clock that nobody advances during a decision, a solve sees its whole budget
//! left at every stage: the budget is then what bounds the solver (HiGHS measures its
//! own time limit in wall time), and simulated time stands still while it decides.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A source of monotonic time: how long since the clock's own origin.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Time since the clock's origin; never decreases.
    fn now(&self) -> Duration;
}

/// A clock shared by a scheduler, its policies and their deadlines.
pub type SharedClock = Arc<dyn Clock>;

/// Wall time, from the moment the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    origin: Instant,
}

impl WallClock {
    /// A wall clock starting now.
    pub fn new() -> Self {
        WallClock {
            origin: Instant::now(),
        }
    }

    /// A wall clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(WallClock::new())
    }
}

impl Default for WallClock {
    fn default() -> Self {
        WallClock::new()
    }
}

impl Clock for WallClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told: simulated time. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock at zero.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Moves the clock to `t` if that is later than now (it never goes back).
    pub fn set(&self, t: Duration) {
        let n = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_max(n, Ordering::SeqCst);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(v.saturating_add(n))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// A point in time on a clock by which a decision must be done, with the time it was
/// set (so a policy can tell how long it has had as well as how long is left).
#[derive(Debug, Clone)]
pub struct Deadline {
    clock: SharedClock,
    start: Duration,
    at: Duration,
}

impl Deadline {
    /// The deadline `budget` from now on `clock`.
    pub fn after(clock: SharedClock, budget: Duration) -> Self {
        let start = clock.now();
        Deadline {
            at: start.saturating_add(budget),
            start,
            clock,
        }
    }

    /// The deadline `seconds` from now on `clock` (non-finite or negative: no time).
    pub fn after_seconds(clock: SharedClock, seconds: f64) -> Self {
        let budget = Duration::try_from_secs_f64(seconds).unwrap_or(if seconds > 0.0 {
            Duration::MAX
        } else {
            Duration::ZERO
        });
        Deadline::after(clock, budget)
    }

    /// The clock the deadline is on.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The whole budget, in seconds.
    pub fn budget_seconds(&self) -> f64 {
        (self.at - self.start).as_secs_f64()
    }

    /// Time since the deadline was set, in seconds.
    pub fn elapsed_seconds(&self) -> f64 {
        self.clock.now().saturating_sub(self.start).as_secs_f64()
    }

    /// Time left, in seconds (negative once the deadline has passed).
    pub fn remaining_seconds(&self) -> f64 {
        self.budget_seconds() - self.elapsed_seconds()
    }

    /// The same deadline moved `seconds` earlier (not before its start): a point kept
    /// back for work after a stage.
    pub fn earlier_by(&self, seconds: f64) -> Deadline {
        let back = Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX);
        Deadline {
            clock: self.clock.clone(),
            start: self.start,
            at: self.at.saturating_sub(back).max(self.start),
        }
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        self.clock.now() >= self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_forward_and_only_when_told() {
        let c = ManualClock::new();
        let shared: SharedClock = Arc::new(c.clone());
        let d = Deadline::after(shared.clone(), Duration::from_secs(10));
        assert_eq!(d.remaining_seconds(), 10.0);
        c.advance(Duration::from_secs(4));
        assert_eq!((d.elapsed_seconds(), d.remaining_seconds()), (4.0, 6.0));
        c.set(Duration::from_secs(2)); // earlier: ignored
        assert_eq!(shared.now(), Duration::from_secs(4));
        c.set(Duration::from_secs(11));
        assert!(d.passed() && d.remaining_seconds() < 0.0);
        assert_eq!(d.budget_seconds(), 10.0);
    }

    #[test]
    fn odd_budgets_are_no_time_or_forever() {
        let clock: SharedClock = Arc::new(ManualClock::new());
        assert!(Deadline::after_seconds(clock.clone(), -1.0).passed());
        assert!(Deadline::after_seconds(clock.clone(), f64::NAN).passed());
        assert!(!Deadline::after_seconds(clock, f64::INFINITY).passed());
    }
}
