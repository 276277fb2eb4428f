//! The etcd store, for control planes that outgrow one host: the same [`Store`] on etcd's
//! v3 API through a maintained client (etcd-client). Revisions are etcd's own: an
//! entry's `mod_revision` is etcd's mod revision, conditional writes are etcd
//! transactions comparing it, watches are etcd watches from `from + 1`, compaction is
//! etcd's. etcd acknowledges a write once its raft log entry is committed and fsynced.
//!
//! The trait is blocking: the store runs its own small tokio runtime and blocks on it, so
//! call it from plain threads (or `spawn_blocking`), not from inside another runtime.
//! A fresh etcd starts at revision 1, not 0.

use super::{Entry, EventKind, Store, StoreError, Watch, WatchEvent, WATCH_BUFFER};
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions, KeyValue, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Keys per page of a list.
const LIST_PAGE: i64 = 1000;

/// The end of the key range of `prefix` (etcd's prefix end: the last byte below 0xff
/// incremented, the rest cut; `\0` — every key — for an empty or all-0xff prefix).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(&last) = end.last() {
        if last < 0xff {
            *end.last_mut().expect("not empty") += 1;
            return end;
        }
        end.pop();
    }
    vec![0]
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn entry(kv: &KeyValue) -> Result<Entry, StoreError> {
    Ok(Entry {
        key: String::from_utf8(kv.key().to_vec()).map_err(|_| backend("a key is not UTF-8"))?,
        value: kv.value().to_vec(),
        create_revision: kv.create_revision() as u64,
        mod_revision: kv.mod_revision() as u64,
    })
}

/// The etcd store (see the module docs).
pub struct EtcdStore {
    client: Client,
    /// Always `Some` until dropped.
    rt: Option<tokio::runtime::Runtime>,
    /// The highest compaction point this store made or an etcd watch reported.
    compacted: Arc<AtomicU64>,
}

impl Drop for EtcdStore {
    /// The store's runtime is shut down in the background: dropping a runtime blocks,
    /// which tokio forbids where the last owner of the store may be (a task of the API
    /// server's runtime).
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore").finish_non_exhaustive()
    }
}

impl EtcdStore {
    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.rt
            .as_ref()
            .expect("the runtime lives until the store is dropped")
    }

    /// Connects to the etcd cluster at `endpoints` (`http://host:port`).
    pub fn connect(endpoints: &[String]) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(backend)?;
        let client = rt
            .block_on(Client::connect(endpoints, None))
            .map_err(backend)?;
        Ok(EtcdStore {
            client,
            rt: Some(rt),
            compacted: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The key's current entry (inside a transaction's failure branch).
    fn current(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.get(key)
    }

    /// A conditional put or delete: `when` must hold; otherwise the reason is read back.
    fn conditional(
        &self,
        key: &str,
        when: Vec<Compare>,
        op: TxnOp,
        expected: Option<u64>,
        on_fail_missing: StoreError,
    ) -> Result<(i64, Vec<TxnOpResponse>), StoreError> {
        let mut c = self.client.clone();
        let txn = Txn::new().when(when).and_then(vec![op]);
        let r = self.runtime().block_on(c.txn(txn)).map_err(backend)?;
        if r.succeeded() {
            let rev = r.header().map_or(0, |h| h.revision());
            return Ok((rev, r.op_responses()));
        }
        match self.current(key)? {
            None => Err(on_fail_missing),
            Some(cur) => match expected {
                Some(e) if e != cur.mod_revision => Err(StoreError::Conflict {
                    key: key.to_string(),
                    expected: e,
                    actual: cur.mod_revision,
                }),
                _ => Err(StoreError::AlreadyExists(key.to_string())),
            },
        }
    }
}

impl Store for EtcdStore {
    fn revision(&self) -> Result<u64, StoreError> {
        let mut c = self.client.clone();
        let r = self
            .runtime()
            .block_on(c.get("\0", Some(GetOptions::new().with_count_only())))
            .map_err(backend)?;
        Ok(r.header().map_or(0, |h| h.revision()) as u64)
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let mut c = self.client.clone();
        let r = self.runtime().block_on(c.get(key, None)).map_err(backend)?;
        r.kvs().first().map(entry).transpose()
    }

    fn list(&self, prefix: &str) -> Result<(Vec<Entry>, u64), StoreError> {
        // In pages of LIST_PAGE keys, every page read at the first page's revision (one
        // snapshot): a single response would outgrow gRPC's message limit.
        let end = prefix_end(prefix);
        let mut c = self.client.clone();
        let mut from = if prefix.is_empty() {
            vec![0u8]
        } else {
            prefix.as_bytes().to_vec()
        };
        let mut revision = None;
        let mut out = Vec::new();
        loop {
            let mut opts = GetOptions::new()
                .with_range(end.clone())
                .with_limit(LIST_PAGE);
            if let Some(r) = revision {
                opts = opts.with_revision(r);
            }
            let r = self
                .runtime()
                .block_on(c.get(from.clone(), Some(opts)))
                .map_err(backend)?;
            revision.get_or_insert(r.header().map_or(0, |h| h.revision()));
            for kv in r.kvs() {
                out.push(entry(kv)?);
            }
            match r.kvs().last() {
                Some(last) if r.more() => {
                    from = last.key().to_vec();
                    from.push(0); // the next key after it
                }
                _ => break,
            }
        }
        Ok((out, revision.unwrap_or(0) as u64))
    }

    fn create(&self, key: &str, value: &[u8]) -> Result<Entry, StoreError> {
        let (rev, _) = self.conditional(
            key,
            vec![Compare::create_revision(key, CompareOp::Equal, 0)],
            TxnOp::put(key, value, None),
            None,
            StoreError::Backend(format!("{key}: create failed")),
        )?;
        Ok(Entry {
            key: key.to_string(),
            value: value.to_vec(),
            create_revision: rev as u64,
            mod_revision: rev as u64,
        })
    }

    fn update(&self, key: &str, value: &[u8], expected: Option<u64>) -> Result<Entry, StoreError> {
        let mut when = vec![Compare::create_revision(key, CompareOp::Greater, 0)];
        if let Some(e) = expected {
            when.push(Compare::mod_revision(key, CompareOp::Equal, e as i64));
        }
        let before = self.current(key)?;
        let (rev, _) = self.conditional(
            key,
            when,
            TxnOp::put(key, value, None),
            expected,
            StoreError::NotFound(key.to_string()),
        )?;
        Ok(Entry {
            key: key.to_string(),
            value: value.to_vec(),
            // The key existed (the transaction compared it): its creation stands.
            create_revision: before.map_or(rev as u64, |b| b.create_revision),
            mod_revision: rev as u64,
        })
    }

    fn delete(&self, key: &str, expected: Option<u64>) -> Result<Entry, StoreError> {
        let mut when = vec![Compare::create_revision(key, CompareOp::Greater, 0)];
        if let Some(e) = expected {
            when.push(Compare::mod_revision(key, CompareOp::Equal, e as i64));
        }
        let (rev, responses) = self.conditional(
            key,
            when,
            TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key())),
            expected,
            StoreError::NotFound(key.to_string()),
        )?;
        let prev = responses
            .iter()
            .find_map(|r| match r {
                TxnOpResponse::Delete(d) => d.prev_kvs().first().cloned(),
                _ => None,
            })
            .ok_or_else(|| backend(format!("{key}: etcd returned no previous value")))?;
        Ok(Entry {
            mod_revision: rev as u64,
            ..entry(&prev)?
        })
    }

    fn watch(&self, prefix: &str, from: u64) -> Result<Watch, StoreError> {
        let current = self.revision()?;
        if from > current {
            return Err(StoreError::FutureRevision {
                requested: from,
                current,
            });
        }
        let mut c = self.client.clone();
        if from < current {
            // A read at the first revision the watch needs fails if it was compacted.
            let probe = GetOptions::new()
                .with_revision(from as i64 + 1)
                .with_count_only();
            if let Err(e) = self.runtime().block_on(c.get("\0", Some(probe))) {
                if e.to_string().contains("compacted") {
                    let compacted = self.compacted.load(Ordering::SeqCst).max(from + 1);
                    return Err(StoreError::Compacted {
                        requested: from,
                        compacted,
                    });
                }
                return Err(backend(e));
            }
        }
        let opts = WatchOptions::new()
            .with_start_revision(from as i64 + 1)
            .with_prev_key();
        let opts = if prefix.is_empty() {
            opts.with_all_keys()
        } else {
            opts.with_prefix()
        };
        let mut stream = self
            .runtime()
            .block_on(c.watch(prefix, Some(opts)))
            .map_err(backend)?;
        // The first response says whether the watch was created or refused as compacted.
        let first = self
            .runtime()
            .block_on(stream.message())
            .map_err(backend)?
            .ok_or_else(|| backend("etcd closed the watch"))?;
        if first.compact_revision() > 0 {
            let compacted = first.compact_revision() as u64 - 1;
            self.compacted.fetch_max(compacted, Ordering::SeqCst);
            return Err(StoreError::Compacted {
                requested: from,
                compacted,
            });
        }
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let mut pending = Some(first);
        self.runtime().spawn(async move {
            loop {
                let resp = match pending.take() {
                    Some(r) => r,
                    None => match stream.message().await {
                        Ok(Some(r)) => r,
                        _ => return,
                    },
                };
                if resp.canceled() {
                    return;
                }
                for e in resp.events() {
                    let Some(kv) = e.kv() else { continue };
                    let Ok(mut en) = entry(kv) else { return };
                    let kind = match e.event_type() {
                        EventType::Put => EventKind::Put,
                        EventType::Delete => {
                            // A delete event carries the key only; its value is the
                            // previous one.
                            if let Some(prev) = e.prev_kv() {
                                en.value = prev.value().to_vec();
                                en.create_revision = prev.create_revision() as u64;
                            }
                            EventKind::Delete
                        }
                    };
                    // Closed, not buffered, when the watcher falls behind (or left).
                    if tx.try_send(WatchEvent { kind, entry: en }).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Watch { events: rx })
    }

    fn compact(&self, revision: u64) -> Result<(), StoreError> {
        let current = self.revision()?;
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current,
            });
        }
        if revision <= self.compacted.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut c = self.client.clone();
        match self.runtime().block_on(c.compact(revision as i64, None)) {
            Ok(_) => {}
            // Already compacted further by someone else.
            Err(e) if e.to_string().contains("compacted") => {}
            Err(e) => return Err(backend(e)),
        }
        self.compacted.fetch_max(revision, Ordering::SeqCst);
        Ok(())
    }

    fn compacted(&self) -> Result<u64, StoreError> {
        Ok(self.compacted.load(Ordering::SeqCst))
    }
}
