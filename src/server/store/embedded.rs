//! The embedded store: one redb file, every write committed with
//! `Durability::Immediate` (fsynced) before it returns, so an acknowledged write survives
//! a crash of the process or the machine.
//!
//! Tables: `objects` (key → create revision, modification revision, value), `events`
//! (revision → kind, key, create revision, value: the watch history since the last
//! compaction) and `meta` (`revision`, `compacted`).
//!
//! **Group commit.** Writers queue their operation; one of them, the leader, takes every
//! queued operation, applies them in queue order in one redb transaction (each sees the
//! ones before it and gets the next revision; one that fails, a conflict say, changes
//! nothing and the others go on), commits once — one fsync for the group — and only then
//! answers each writer. So concurrent clients share fsyncs, and still no write is
//! acknowledged before it is durable. The leader holds the watchers' lock from before its
//! commit until every watcher is notified, and a watch registers under that lock, so a
//! watcher sees every event after its start revision exactly once, in order.

use super::{Entry, EventKind, Store, StoreError, Watch, WatchEvent, WATCH_BUFFER};
use redb::{Database, Durability, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::mpsc;

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";
const COMPACTED: &str = "compacted";

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// An object as stored: create revision, modification revision, value.
fn encode_object(create: u64, modified: u64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + value.len());
    v.extend_from_slice(&create.to_le_bytes());
    v.extend_from_slice(&modified.to_le_bytes());
    v.extend_from_slice(value);
    v
}

fn decode_object(key: &str, raw: &[u8]) -> Result<Entry, StoreError> {
    if raw.len() < 16 {
        return Err(backend(format!("{key}: stored object is truncated")));
    }
    let word = |i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().expect("8 bytes"));
    Ok(Entry {
        key: key.to_string(),
        create_revision: word(0),
        mod_revision: word(8),
        value: raw[16..].to_vec(),
    })
}

/// An event as stored: kind, create revision, key length, key, value.
fn encode_event(kind: EventKind, e: &Entry) -> Vec<u8> {
    let mut v = Vec::with_capacity(13 + e.key.len() + e.value.len());
    v.push(match kind {
        EventKind::Put => 0,
        EventKind::Delete => 1,
    });
    v.extend_from_slice(&e.create_revision.to_le_bytes());
    v.extend_from_slice(&(e.key.len() as u32).to_le_bytes());
    v.extend_from_slice(e.key.as_bytes());
    v.extend_from_slice(&e.value);
    v
}

fn decode_event(revision: u64, raw: &[u8]) -> Result<WatchEvent, StoreError> {
    let bad = || backend(format!("event {revision}: stored event is truncated"));
    if raw.len() < 13 {
        return Err(bad());
    }
    let kind = match raw[0] {
        0 => EventKind::Put,
        1 => EventKind::Delete,
        k => return Err(backend(format!("event {revision}: unknown kind {k}"))),
    };
    let create = u64::from_le_bytes(raw[1..9].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(raw[9..13].try_into().expect("4 bytes")) as usize;
    let key = raw.get(13..13 + len).ok_or_else(bad)?;
    let key = std::str::from_utf8(key).map_err(|_| bad())?.to_string();
    Ok(WatchEvent {
        kind,
        entry: Entry {
            key,
            value: raw[13 + len..].to_vec(),
            create_revision: create,
            mod_revision: revision,
        },
    })
}

/// A registered watcher.
struct Watcher {
    prefix: String,
    tx: mpsc::Sender<WatchEvent>,
}

/// A queued write.
enum Op {
    Create(String, Vec<u8>),
    Update(String, Vec<u8>, Option<u64>),
    Delete(String, Option<u64>),
}

/// A queued write and where its result goes.
struct Pending {
    op: Op,
    reply: std::sync::mpsc::SyncSender<Result<Entry, StoreError>>,
}

/// Writes waiting for a leader, and whether one is at work.
#[derive(Default)]
struct Queue {
    ops: Vec<Pending>,
    leader: bool,
}

/// The embedded, durable store (see the module docs).
pub struct EmbeddedStore {
    db: Database,
    /// Held from before each commit until its watchers are notified, and across watch
    /// registration and compaction.
    watchers: Mutex<Vec<Watcher>>,
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens the store in file `path`, creating it (and its tables) if needed.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(backend)?;
        let txn = db.begin_write().map_err(backend)?;
        {
            txn.open_table(OBJECTS).map_err(backend)?;
            txn.open_table(EVENTS).map_err(backend)?;
            txn.open_table(META).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        Ok(EmbeddedStore {
            db,
            watchers: Mutex::new(Vec::new()),
            queue: Mutex::new(Queue::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Watcher>> {
        // A panic while holding it left no half-made write (redb's transaction did not
        // commit): carry on.
        self.watchers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn meta(&self, name: &str) -> Result<u64, StoreError> {
        let r = self.db.begin_read().map_err(backend)?;
        let t = r.open_table(META).map_err(backend)?;
        Ok(t.get(name).map_err(backend)?.map_or(0, |v| v.value()))
    }

    /// Queues `op` and returns once it is committed durably (or failed): either a
    /// leader takes it into its group, or this writer becomes the leader.
    fn submit(&self, op: Op) -> Result<Entry, StoreError> {
        let (reply, result) = std::sync::mpsc::sync_channel(1);
        let lead = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.ops.push(Pending { op, reply });
            !std::mem::replace(&mut q.leader, true)
        };
        if lead {
            loop {
                let group = {
                    let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                    if q.ops.is_empty() {
                        q.leader = false;
                        break;
                    }
                    std::mem::take(&mut q.ops)
                };
                self.commit_group(group);
            }
        }
        result
            .recv()
            .unwrap_or_else(|_| Err(backend("the store's writer stopped")))
    }

    /// Applies `group` in one transaction, commits it, notifies the watchers and answers
    /// each writer.
    fn commit_group(&self, group: Vec<Pending>) {
        let mut watchers = self.lock();
        let results = match self.apply(&group) {
            Ok(results) => results,
            Err(e) => {
                // Nothing committed: every writer of the group gets the error.
                for p in group {
                    let _ = p.reply.send(Err(e.clone()));
                }
                return;
            }
        };
        for (p, r) in group.into_iter().zip(results) {
            if let Ok((kind, entry)) = &r {
                let event = WatchEvent {
                    kind: *kind,
                    entry: entry.clone(),
                };
                // A watcher whose channel is full or gone is dropped: closed, not
                // buffered.
                watchers.retain(|w| {
                    !entry.key.starts_with(&w.prefix) || w.tx.try_send(event.clone()).is_ok()
                });
            }
            let _ = p.reply.send(r.map(|(_, e)| e));
        }
    }

    /// One transaction for the group: each operation's result, committed durably.
    #[allow(clippy::type_complexity)]
    fn apply(
        &self,
        group: &[Pending],
    ) -> Result<Vec<Result<(EventKind, Entry), StoreError>>, StoreError> {
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(Durability::Immediate);
        let mut results = Vec::with_capacity(group.len());
        {
            let mut meta = txn.open_table(META).map_err(backend)?;
            let mut objects = txn.open_table(OBJECTS).map_err(backend)?;
            let mut events = txn.open_table(EVENTS).map_err(backend)?;
            let mut revision = meta
                .get(REVISION)
                .map_err(backend)?
                .map_or(0, |v| v.value());
            for p in group {
                let key = match &p.op {
                    Op::Create(k, _) | Op::Update(k, _, _) | Op::Delete(k, _) => k.as_str(),
                };
                let current = objects
                    .get(key)
                    .map_err(backend)?
                    .map(|v| decode_object(key, v.value()))
                    .transpose()?;
                // The checks first: an operation that fails writes nothing.
                let new = match (&p.op, &current) {
                    (Op::Create(..), Some(_)) => Err(StoreError::AlreadyExists(key.into())),
                    (Op::Create(_, v), None) => Ok(Some(v.clone())),
                    (Op::Update(..) | Op::Delete(..), None) => {
                        Err(StoreError::NotFound(key.into()))
                    }
                    (Op::Update(_, v, expected), Some(c)) => {
                        check_expected(key, c, *expected).map(|()| Some(v.clone()))
                    }
                    (Op::Delete(_, expected), Some(c)) => {
                        check_expected(key, c, *expected).map(|()| None)
                    }
                };
                let new = match new {
                    Ok(n) => n,
                    Err(e) => {
                        results.push(Err(e));
                        continue;
                    }
                };
                revision += 1;
                let (kind, entry) = match (new, current) {
                    (Some(value), current) => {
                        let create = current.as_ref().map_or(revision, |c| c.create_revision);
                        objects
                            .insert(key, encode_object(create, revision, &value).as_slice())
                            .map_err(backend)?;
                        let entry = Entry {
                            key: key.to_string(),
                            value,
                            create_revision: create,
                            mod_revision: revision,
                        };
                        (EventKind::Put, entry)
                    }
                    (None, Some(old)) => {
                        objects.remove(key).map_err(backend)?;
                        let entry = Entry {
                            mod_revision: revision,
                            ..old
                        };
                        (EventKind::Delete, entry)
                    }
                    (None, None) => unreachable!("a delete of a missing key failed above"),
                };
                events
                    .insert(revision, encode_event(kind, &entry).as_slice())
                    .map_err(backend)?;
                results.push(Ok((kind, entry)));
            }
            meta.insert(REVISION, revision).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        Ok(results)
    }
}

fn check_expected(key: &str, current: &Entry, expected: Option<u64>) -> Result<(), StoreError> {
    match expected {
        Some(e) if e != current.mod_revision => Err(StoreError::Conflict {
            key: key.to_string(),
            expected: e,
            actual: current.mod_revision,
        }),
        _ => Ok(()),
    }
}

impl Store for EmbeddedStore {
    fn revision(&self) -> Result<u64, StoreError> {
        self.meta(REVISION)
    }

    fn compacted(&self) -> Result<u64, StoreError> {
        self.meta(COMPACTED)
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let r = self.db.begin_read().map_err(backend)?;
        let t = r.open_table(OBJECTS).map_err(backend)?;
        let v = t.get(key).map_err(backend)?;
        v.map(|v| decode_object(key, v.value())).transpose()
    }

    fn list(&self, prefix: &str) -> Result<(Vec<Entry>, u64), StoreError> {
        // One read transaction: the entries and the revision are one snapshot.
        let r = self.db.begin_read().map_err(backend)?;
        let meta = r.open_table(META).map_err(backend)?;
        let revision = meta
            .get(REVISION)
            .map_err(backend)?
            .map_or(0, |v| v.value());
        let t = r.open_table(OBJECTS).map_err(backend)?;
        let mut out = Vec::new();
        for item in t.range(prefix..).map_err(backend)? {
            let (k, v) = item.map_err(backend)?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            out.push(decode_object(key, v.value())?);
        }
        Ok((out, revision))
    }

    fn create(&self, key: &str, value: &[u8]) -> Result<Entry, StoreError> {
        self.submit(Op::Create(key.to_string(), value.to_vec()))
    }

    fn update(&self, key: &str, value: &[u8], expected: Option<u64>) -> Result<Entry, StoreError> {
        self.submit(Op::Update(key.to_string(), value.to_vec(), expected))
    }

    fn delete(&self, key: &str, expected: Option<u64>) -> Result<Entry, StoreError> {
        self.submit(Op::Delete(key.to_string(), expected))
    }

    fn watch(&self, prefix: &str, from: u64) -> Result<Watch, StoreError> {
        let mut watchers = self.lock();
        let r = self.db.begin_read().map_err(backend)?;
        let meta = r.open_table(META).map_err(backend)?;
        let current = meta
            .get(REVISION)
            .map_err(backend)?
            .map_or(0, |v| v.value());
        let compacted = meta
            .get(COMPACTED)
            .map_err(backend)?
            .map_or(0, |v| v.value());
        if from < compacted {
            return Err(StoreError::Compacted {
                requested: from,
                compacted,
            });
        }
        if from > current {
            return Err(StoreError::FutureRevision {
                requested: from,
                current,
            });
        }
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let events = r.open_table(EVENTS).map_err(backend)?;
        for item in events.range(from + 1..).map_err(backend)? {
            let (rev, raw) = item.map_err(backend)?;
            let e = decode_event(rev.value(), raw.value())?;
            if !e.entry.key.starts_with(prefix) {
                continue;
            }
            if tx.try_send(e).is_err() {
                // More history than a watcher may hold: too old to serve as a watch;
                // the client relists, as after a compaction.
                return Err(StoreError::Compacted {
                    requested: from,
                    compacted: current,
                });
            }
        }
        watchers.push(Watcher {
            prefix: prefix.to_string(),
            tx,
        });
        Ok(Watch { events: rx })
    }

    fn compact(&self, revision: u64) -> Result<(), StoreError> {
        let _order = self.lock();
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(Durability::Immediate);
        {
            let mut meta = txn.open_table(META).map_err(backend)?;
            let current = meta
                .get(REVISION)
                .map_err(backend)?
                .map_or(0, |v| v.value());
            if revision > current {
                return Err(StoreError::FutureRevision {
                    requested: revision,
                    current,
                });
            }
            let done = meta
                .get(COMPACTED)
                .map_err(backend)?
                .map_or(0, |v| v.value());
            if revision <= done {
                return Ok(());
            }
            let mut events = txn.open_table(EVENTS).map_err(backend)?;
            let old: Vec<u64> = events
                .range(..=revision)
                .map_err(backend)?
                .map(|item| item.map(|(k, _)| k.value()).map_err(backend))
                .collect::<Result<_, _>>()?;
            for rev in old {
                events.remove(rev).map_err(backend)?;
            }
            meta.insert(COMPACTED, revision).map_err(backend)?;
        }
        txn.commit().map_err(backend)
    }
}
