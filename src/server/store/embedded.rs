//! The embedded store: one redb file, every write committed with
//! `Durability::Immediate` (fsynced) before it returns, so an acknowledged write survives
//! a crash of the process or the machine.
//!
//! Tables: `objects` (key → create revision, modification revision, value), `events`
//! (revision → kind, key, create revision, value: the watch history since the last
//! compaction) and `meta` (`revision`, `compacted`). One mutex orders writes, watch
//! registration and notification, so a watcher sees every event after its start
//! revision exactly once, in order.

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

/// The embedded, durable store (see the module docs).
pub struct EmbeddedStore {
    db: Database,
    /// Held across every write and its notification, and across watch registration.
    watchers: Mutex<Vec<Watcher>>,
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

    /// One write: `change` sees the key's current entry and returns the new value (or
    /// `None` to delete) or an error; the write is committed durably at the next
    /// revision and then sent to the watchers.
    fn write(
        &self,
        key: &str,
        change: impl FnOnce(Option<&Entry>) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<Entry, StoreError> {
        let mut watchers = self.lock();
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(Durability::Immediate);
        let (kind, entry) = {
            let mut meta = txn.open_table(META).map_err(backend)?;
            let mut objects = txn.open_table(OBJECTS).map_err(backend)?;
            let mut events = txn.open_table(EVENTS).map_err(backend)?;
            let current = objects
                .get(key)
                .map_err(backend)?
                .map(|v| decode_object(key, v.value()))
                .transpose()?;
            let new = change(current.as_ref())?;
            let revision = meta
                .get(REVISION)
                .map_err(backend)?
                .map_or(0, |v| v.value())
                + 1;
            let (kind, entry) = match new {
                Some(value) => {
                    let create = current.as_ref().map_or(revision, |c| c.create_revision);
                    objects
                        .insert(key, encode_object(create, revision, &value).as_slice())
                        .map_err(backend)?;
                    (
                        EventKind::Put,
                        Entry {
                            key: key.to_string(),
                            value,
                            create_revision: create,
                            mod_revision: revision,
                        },
                    )
                }
                None => {
                    let old = current.ok_or_else(|| StoreError::NotFound(key.to_string()))?;
                    objects.remove(key).map_err(backend)?;
                    (
                        EventKind::Delete,
                        Entry {
                            mod_revision: revision,
                            ..old
                        },
                    )
                }
            };
            events
                .insert(revision, encode_event(kind, &entry).as_slice())
                .map_err(backend)?;
            meta.insert(REVISION, revision).map_err(backend)?;
            (kind, entry)
        };
        txn.commit().map_err(backend)?;
        let event = WatchEvent {
            kind,
            entry: entry.clone(),
        };
        // A watcher whose channel is full or gone is dropped: closed, not buffered.
        watchers
            .retain(|w| !entry.key.starts_with(&w.prefix) || w.tx.try_send(event.clone()).is_ok());
        Ok(entry)
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
        self.write(key, |current| match current {
            Some(_) => Err(StoreError::AlreadyExists(key.to_string())),
            None => Ok(Some(value.to_vec())),
        })
    }

    fn update(&self, key: &str, value: &[u8], expected: Option<u64>) -> Result<Entry, StoreError> {
        self.write(key, |current| {
            let current = current.ok_or_else(|| StoreError::NotFound(key.to_string()))?;
            check_expected(key, current, expected)?;
            Ok(Some(value.to_vec()))
        })
    }

    fn delete(&self, key: &str, expected: Option<u64>) -> Result<Entry, StoreError> {
        self.write(key, |current| {
            let current = current.ok_or_else(|| StoreError::NotFound(key.to_string()))?;
            check_expected(key, current, expected)?;
            Ok(None)
        })
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
