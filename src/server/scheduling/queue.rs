//! Pods waiting to be scheduled, as kube-scheduler's scheduling queue keeps them: an
//! *active* set ready for the next batch, a *back-off* set waiting out their delay, and
//! an *unschedulable* set parked until the cluster changes (a node added or updated, a
//! pod deleted or finished) or, at the latest, until a flush interval has passed — so a
//! pod that cannot be placed is retried when that could help, never in a hot loop.
//!
//! Time is the injected clock's (`Duration` since its origin). Pods are identified by
//! uid and ordered by arrival, so batches are deterministic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// Back-off parameters (kube-scheduler's defaults: 1 s doubling to 10 s).
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Delay after the first failed attempt.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Longest a pod stays parked as unschedulable without a cluster change.
    pub flush: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
            flush: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay after `attempts` failed attempts (≥ 1).
    pub fn delay(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Active,
    Backoff(Duration),
    Parked(Duration),
    InFlight,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    attempts: u32,
    state: State,
}

/// The scheduling queue (see the module docs).
#[derive(Debug, Default)]
pub struct Queue {
    backoff: Backoff,
    next_seq: u64,
    entries: HashMap<String, Entry>,
    active: BTreeMap<u64, String>,
    waiting: BTreeSet<(Duration, u64)>,
    parked: BTreeMap<u64, String>,
    by_seq: HashMap<u64, String>,
}

impl Queue {
    /// An empty queue.
    pub fn new(backoff: Backoff) -> Self {
        Queue {
            backoff,
            ..Default::default()
        }
    }

    /// Pods held (in any state, in flight included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no pod is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Pods ready for the next batch.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// True if the pod is held.
    pub fn contains(&self, uid: &str) -> bool {
        self.entries.contains_key(uid)
    }

    /// How many times the pod failed to be placed.
    pub fn attempts(&self, uid: &str) -> u32 {
        self.entries.get(uid).map_or(0, |e| e.attempts)
    }

    /// Adds a new pod as active (a pod already held keeps its place and state).
    pub fn add(&mut self, uid: &str) -> bool {
        if self.entries.contains_key(uid) {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(
            uid.to_string(),
            Entry {
                seq,
                attempts: 0,
                state: State::Active,
            },
        );
        self.by_seq.insert(seq, uid.to_string());
        self.active.insert(seq, uid.to_string());
        true
    }

    fn detach(&mut self, uid: &str) -> Option<&mut Entry> {
        let e = self.entries.get_mut(uid)?;
        match e.state {
            State::Active => {
                self.active.remove(&e.seq);
            }
            State::Backoff(at) => {
                self.waiting.remove(&(at, e.seq));
            }
            State::Parked(_) => {
                self.parked.remove(&e.seq);
            }
            State::InFlight => {}
        }
        Some(e)
    }

    /// Forgets a pod (bound, deleted, or no longer this scheduler's).
    pub fn remove(&mut self, uid: &str) -> bool {
        if self.detach(uid).is_none() {
            return false;
        }
        if let Some(e) = self.entries.remove(uid) {
            self.by_seq.remove(&e.seq);
        }
        true
    }

    /// Moves due back-off pods to active, then takes up to `max` active pods, oldest
    /// first, marking them in flight. Members of a gang come together: `gang_of` names
    /// a pod's gang, and once the batch is full the remaining active members of the
    /// gangs already taken are added anyway.
    pub fn take(
        &mut self,
        now: Duration,
        max: usize,
        gang_of: impl Fn(&str) -> Option<String>,
    ) -> Vec<String> {
        self.promote(now);
        let mut out = Vec::new();
        let mut gangs = BTreeSet::new();
        let seqs: Vec<u64> = self.active.keys().copied().collect();
        for seq in seqs {
            let uid = &self.active[&seq];
            let gang = gang_of(uid);
            if out.len() >= max && !gang.as_ref().is_some_and(|g| gangs.contains(g)) {
                continue;
            }
            if let Some(g) = gang {
                gangs.insert(g);
            }
            let uid = self.active.remove(&seq).expect("listed");
            if let Some(e) = self.entries.get_mut(&uid) {
                e.state = State::InFlight;
            }
            out.push(uid);
        }
        out
    }

    fn promote(&mut self, now: Duration) {
        while let Some(&(at, seq)) = self.waiting.first() {
            if at > now {
                break;
            }
            self.waiting.pop_first();
            if let Some(uid) = self.by_seq.get(&seq).cloned() {
                if let Some(e) = self.entries.get_mut(&uid) {
                    e.state = State::Active;
                }
                self.active.insert(seq, uid);
            }
        }
    }

    /// A pod taken for a batch could not be placed: park it until the cluster changes
    /// (or the flush interval passes), with its back-off counted. Returns its attempts.
    pub fn unschedulable(&mut self, uid: &str, now: Duration) -> u32 {
        let Some(e) = self.detach(uid) else { return 0 };
        e.attempts += 1;
        e.state = State::Parked(now);
        let (seq, attempts) = (e.seq, e.attempts);
        self.parked.insert(seq, uid.to_string());
        attempts
    }

    /// A pod taken for a batch failed for a transient reason (a bind error): retry after
    /// its back-off.
    pub fn retry(&mut self, uid: &str, now: Duration) {
        let backoff = self.backoff;
        let Some(e) = self.detach(uid) else { return };
        e.attempts += 1;
        let at = now + backoff.delay(e.attempts);
        e.state = State::Backoff(at);
        let seq = e.seq;
        self.waiting.insert((at, seq));
    }

    /// The cluster changed: every parked pod goes back, to active if its back-off has
    /// passed, otherwise to wait it out. Returns how many moved.
    pub fn cluster_changed(&mut self, now: Duration) -> usize {
        let parked = std::mem::take(&mut self.parked);
        let n = parked.len();
        for (seq, uid) in parked {
            self.requeue(seq, uid, now);
        }
        n
    }

    fn requeue(&mut self, seq: u64, uid: String, now: Duration) {
        let backoff = self.backoff;
        let Some(e) = self.entries.get_mut(&uid) else {
            return;
        };
        let State::Parked(since) = e.state else {
            return;
        };
        let at = since + backoff.delay(e.attempts.max(1));
        if at <= now {
            e.state = State::Active;
            self.active.insert(seq, uid);
        } else {
            e.state = State::Backoff(at);
            self.waiting.insert((at, seq));
        }
    }

    /// Parked pods older than the flush interval go back (kube's periodic flush).
    pub fn flush(&mut self, now: Duration) -> usize {
        let flush = self.backoff.flush;
        let due: Vec<(u64, String)> = self
            .parked
            .iter()
            .filter(|(_, uid)| {
                self.entries
                    .get(*uid)
                    .is_some_and(|e| matches!(e.state, State::Parked(s) if s + flush <= now))
            })
            .map(|(s, u)| (*s, u.clone()))
            .collect();
        for (seq, uid) in &due {
            self.parked.remove(seq);
            self.requeue(*seq, uid.clone(), now);
        }
        due.len()
    }

    /// When the next back-off ends, if any pod waits.
    pub fn next_due(&self) -> Option<Duration> {
        self.waiting.first().map(|(at, _)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn backoff_doubles_to_its_cap() {
        let b = Backoff::default();
        assert_eq!(b.delay(1), S);
        assert_eq!(b.delay(2), 2 * S);
        assert_eq!(b.delay(4), 8 * S);
        assert_eq!(b.delay(5), 10 * S);
        assert_eq!(b.delay(99), 10 * S);
    }

    #[test]
    fn batches_are_in_arrival_order_and_taken_once() {
        let mut q = Queue::new(Backoff::default());
        for u in ["c", "a", "b"] {
            assert!(q.add(u));
        }
        assert!(!q.add("a"));
        assert_eq!(q.take(Duration::ZERO, 2, |_| None), ["c", "a"]);
        assert_eq!(q.take(Duration::ZERO, 9, |_| None), ["b"]);
        assert!(q.take(Duration::ZERO, 9, |_| None).is_empty(), "in flight");
        assert_eq!(q.len(), 3);
        assert!(q.remove("a"));
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn unschedulable_pods_wait_for_a_change_and_their_backoff() {
        let mut q = Queue::new(Backoff::default());
        q.add("p");
        q.take(Duration::ZERO, 9, |_| None);
        assert_eq!(q.unschedulable("p", Duration::ZERO), 1);
        // No change: never retried (no hot loop), whatever the time, until the flush.
        assert!(q.take(30 * S, 9, |_| None).is_empty());
        // A change inside the back-off: waits it out.
        let t = Duration::from_millis(500);
        assert_eq!(q.cluster_changed(t), 1);
        assert!(q.take(t, 9, |_| None).is_empty());
        assert_eq!(q.next_due(), Some(S));
        assert_eq!(q.take(S, 9, |_| None), ["p"]);
        // Second failure: 2 s back-off, and the flush brings it back after 60 s.
        assert_eq!(q.unschedulable("p", 10 * S), 2);
        assert_eq!(q.flush(69 * S), 0);
        assert_eq!(q.flush(70 * S), 1);
        assert_eq!(q.take(70 * S, 9, |_| None), ["p"]);
    }

    #[test]
    fn transient_failures_back_off() {
        let mut q = Queue::new(Backoff::default());
        q.add("p");
        q.take(Duration::ZERO, 9, |_| None);
        q.retry("p", Duration::ZERO);
        assert!(q.take(Duration::from_millis(999), 9, |_| None).is_empty());
        assert_eq!(q.take(S, 9, |_| None), ["p"]);
        q.retry("p", S);
        assert_eq!(q.next_due(), Some(3 * S));
    }

    #[test]
    fn a_gang_is_never_cut_by_the_batch_size() {
        let mut q = Queue::new(Backoff::default());
        for u in ["g1", "x", "g2", "g3", "y"] {
            q.add(u);
        }
        let gang = |u: &str| u.starts_with('g').then(|| "g".to_string());
        assert_eq!(q.take(Duration::ZERO, 2, gang), ["g1", "x", "g2", "g3"]);
        assert_eq!(q.take(Duration::ZERO, 2, gang), ["y"]);
    }
}
