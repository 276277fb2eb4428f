//! The event queue: events ordered by simulated time, equal times in insertion order.
//!
//! A [`BinaryHeap`] keyed on `(time, sequence)`: the sequence number is a counter
//! incremented on every push, so two events at the same second come out in the order
//! they were pushed, and a run never depends on heap internals.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Simulated time in whole seconds since the trace start.
pub type Time = u64;

/// What happens at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Trace pod `pod` arrives (index into [`crate::sim::Trace::pods`]).
    Arrival {
        /// Trace pod index.
        pod: usize,
    },
    /// Run `run` of trace pod `pod` ends. Ignored if that run was already cut short by
    /// its node failing or leaving (the pod then has a newer run number).
    Departure {
        /// Trace pod index.
        pod: usize,
        /// Which start of the pod this departure belongs to (0 for the first).
        run: u32,
    },
    /// Trace node `node` joins (or rejoins) the cluster.
    NodeAdd {
        /// Trace node index.
        node: usize,
    },
    /// Trace node `node` fails: its pods go back to pending.
    NodeFail {
        /// Trace node index.
        node: usize,
    },
    /// Trace node `node` is removed (drained): its pods go back to pending.
    NodeRemove {
        /// Trace node index.
        node: usize,
    },
    /// Periodic tick on which a batch policy places the pending queue.
    Tick,
}

/// One scheduled event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// When it happens.
    pub time: Time,
    /// Insertion sequence number (unique per queue).
    pub seq: u64,
    /// What happens.
    pub kind: EventKind,
}

/// Min-queue of events by `(time, seq)`.
#[derive(Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Reverse<(Time, u64, Slot)>>,
    next_seq: u64,
}

/// The event kind wrapped so the heap key never compares it (the seq is unique).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot(EventKind);

impl PartialOrd for Slot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Slot {
    fn cmp(&self, _other: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl EventQueue {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue::default()
    }

    /// Schedules `kind` at `time`; returns its sequence number.
    pub fn push(&mut self, time: Time, kind: EventKind) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse((time, seq, Slot(kind))));
        seq
    }

    /// Removes and returns the earliest event (lowest sequence among equal times).
    pub fn pop(&mut self) -> Option<Event> {
        self.heap
            .pop()
            .map(|Reverse((time, seq, Slot(kind)))| Event { time, seq, kind })
    }

    /// The time of the earliest event, if any.
    pub fn peek_time(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Number of scheduled events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True if nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_times_keep_insertion_order() {
        let mut q = EventQueue::new();
        q.push(5, EventKind::Tick);
        q.push(3, EventKind::Arrival { pod: 7 });
        q.push(3, EventKind::Arrival { pod: 1 });
        q.push(3, EventKind::NodeAdd { node: 0 });
        q.push(0, EventKind::Arrival { pod: 9 });
        let order: Vec<_> = std::iter::from_fn(|| q.pop())
            .map(|e| (e.time, e.kind))
            .collect();
        assert_eq!(
            order,
            vec![
                (0, EventKind::Arrival { pod: 9 }),
                (3, EventKind::Arrival { pod: 7 }),
                (3, EventKind::Arrival { pod: 1 }),
                (3, EventKind::NodeAdd { node: 0 }),
                (5, EventKind::Tick),
            ]
        );
    }
}
