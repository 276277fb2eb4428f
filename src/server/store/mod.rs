//! The store an API server keeps its objects in: keys (`/registry/pods/NS/NAME`) to
//! bytes, with etcd's revision model.
//!
//! - Every successful write (create, update, delete) advances one store-wide
//!   **revision**; an entry remembers the revision that created it and the one that last
//!   modified it. An object's `resourceVersion` is its modification revision.
//! - Writes can be **conditional** on the modification revision the writer last saw
//!   (optimistic concurrency: a stale one is [`StoreError::Conflict`], HTTP 409).
//! - A **list** returns the entries under a prefix and the revision it reflects; a
//!   **watch** from a revision delivers every later change under a prefix, in revision
//!   order — first those already made (from the store's event history), then live ones.
//!   History older than the **compaction** point is gone: a watch from there is
//!   [`StoreError::Compacted`] (HTTP 410 Gone, and the client relists).
//! - A watcher that does not keep up is closed (its channel holds at most
//!   [`WATCH_BUFFER`] events), never buffered without bound.
//!
//! [`EmbeddedStore`] keeps all of it in one redb file, every write durable before it is
//! acknowledged; `EtcdStore` (feature `etcd`) keeps it in an etcd cluster.

mod embedded;
#[cfg(feature = "etcd")]
mod etcd;

pub use embedded::EmbeddedStore;
#[cfg(feature = "etcd")]
pub use etcd::EtcdStore;

use thiserror::Error;
use tokio::sync::mpsc;

/// Events a watcher's channel holds before the watcher is closed as too slow.
pub const WATCH_BUFFER: usize = 4096;

/// A stored value with its revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value (a serialised object).
    pub value: Vec<u8>,
    /// The revision that created the key.
    pub create_revision: u64,
    /// The revision that last modified it (for a deletion event: the deleting
    /// revision). An object's `resourceVersion`.
    pub mod_revision: u64,
}

/// What a watch event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or modified; the entry is its new value.
    Put,
    /// The key was deleted; the entry is its last value, at the deleting revision.
    Delete,
}

/// One change, as a watcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// Put or delete.
    pub kind: EventKind,
    /// The entry (see [`EventKind`]).
    pub entry: Entry,
}

/// A watch: events in revision order until the store closes it (too slow, or the store
/// was dropped).
#[derive(Debug)]
pub struct Watch {
    /// The events.
    pub events: mpsc::Receiver<WatchEvent>,
}

/// Why a store operation failed. A failed write changes nothing.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum StoreError {
    /// Create of a key that exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Update or delete of a key that does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A conditional write whose expected revision is not the key's.
    #[error("{key}: the object has been modified (resourceVersion {expected}, now {actual})")]
    Conflict {
        /// The key.
        key: String,
        /// The modification revision the writer expected.
        expected: u64,
        /// The key's modification revision.
        actual: u64,
    },
    /// A watch (or read) from a revision older than the compaction point.
    #[error("revision {requested} has been compacted (oldest available {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: u64,
        /// The compaction point: history after it is kept.
        compacted: u64,
    },
    /// A revision beyond the store's current one.
    #[error("revision {requested} is in the future (current {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: u64,
        /// The store's revision.
        current: u64,
    },
    /// The backend failed (I/O, corruption).
    #[error("store: {0}")]
    Backend(String),
}

/// A durable key–value store with revisions, conditional writes and watches (see the
/// module docs). Calls block; an async server runs them off its request threads.
pub trait Store: Send + Sync {
    /// The current revision (0 for an empty, never-written store).
    fn revision(&self) -> Result<u64, StoreError>;
    /// The entry at `key`.
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError>;
    /// Every entry whose key starts with `prefix`, in key order, and the revision the
    /// list reflects.
    fn list(&self, prefix: &str) -> Result<(Vec<Entry>, u64), StoreError>;
    /// Creates `key`; fails if it exists.
    fn create(&self, key: &str, value: &[u8]) -> Result<Entry, StoreError>;
    /// Replaces `key`'s value; with `expected`, only if its modification revision is
    /// that one.
    fn update(&self, key: &str, value: &[u8], expected: Option<u64>) -> Result<Entry, StoreError>;
    /// Deletes `key` (with `expected`, only at that modification revision); returns its
    /// last value at the deleting revision.
    fn delete(&self, key: &str, expected: Option<u64>) -> Result<Entry, StoreError>;
    /// Every change under `prefix` after revision `from`, then live ones.
    fn watch(&self, prefix: &str, from: u64) -> Result<Watch, StoreError>;
    /// Forgets the event history up to and including `revision` (watches from there on
    /// are [`StoreError::Compacted`]); current values are kept.
    fn compact(&self, revision: u64) -> Result<(), StoreError>;
    /// The compaction point (0 if never compacted).
    fn compacted(&self) -> Result<u64, StoreError>;
}
