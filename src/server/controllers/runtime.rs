//! A small controller runtime in kube-runtime's style that owns its work queue, so queue
//! depth is exported and every delay is measured on the injected clock.
//!
//! # API
//!
//! - [`ObjectKey`] — `namespace/name` of an object (cluster-scoped: just `name`);
//!   [`ObjectKey::of`] an object, [`ObjectKey::to_ref`] for [`Store::get`].
//! - [`WorkQueue<K>`] — client-go workqueue semantics: [`WorkQueue::add`],
//!   [`WorkQueue::add_after`], [`WorkQueue::add_rate_limited`] (per-key exponential
//!   back-off, 5 ms doubling up to 1000 s), [`WorkQueue::forget`], async
//!   [`WorkQueue::get`] (`None` after [`WorkQueue::shutdown`]), [`WorkQueue::done`],
//!   [`WorkQueue::len`] (ready + delayed). A key is held at most once; a key added while
//!   it is being processed is handed out again after `done`. Delays are on the clock
//!   given to [`WorkQueue::new`]; the queue re-reads the clock at least every
//!   [`CLOCK_POLL`] of tokio time (and on [`WorkQueue::wake`]), so a manual clock moved
//!   by a simulator releases delayed keys promptly.
//! - [`watch`] — a watch-fed cache: `watch(api, watcher::Config)` gives a [`Watched<K>`]:
//!   its `store` ([`Store<K>`], a reflector cache) and a stream of the objects that
//!   changed (added, modified or deleted). The stream must be polled for the store to
//!   fill: hand it to [`Controller::watches`].
//! - [`controller_owner`] / [`owner_keys`] — map an owned object to the key of its
//!   controller owner of kind `O` (ownerReference with `controller: true`).
//! - [`Controller`] — register watches and run workers:
//!
//! ```ignore
//! let pods = runtime::watch(Api::<Pod>::all(client.clone()), watcher::Config::default());
//! let rss = runtime::watch(Api::<ReplicaSet>::all(client.clone()), watcher::Config::default());
//! let state = Arc::new(MyState { pods: pods.store.clone(), rss: rss.store.clone(), ctx });
//! Controller::new("replicaset", ctx.clone())
//!     .watches(rss, |rs| vec![ObjectKey::of(rs.as_ref())])
//!     .watches(pods, runtime::owner_keys::<ReplicaSet, Pod>)
//!     .workers(2)
//!     .run(state, |key, state| async move { reconcile(key, state).await }, shutdown)
//!     .await;
//! ```
//!
//! `run` waits until every watched store has its first complete list, then `workers`
//! tasks pull keys and call `reconcile(key, Arc<S>) -> Result<Action, E>`. On `Ok`, the
//! key's back-off is forgotten and [`Action::RequeueAfter`] re-adds it after the delay.
//! On `Err`, the error policy runs (default: log, count `reconcile_errors`,
//! `add_rate_limited`; replace with [`Controller::on_error`]). `run` returns when the
//! `shutdown` future completes (the queue shuts down, workers finish the key in hand).
//! Reconcilers must be idempotent: compute the desired state from the caches and act on
//! the difference.

use super::context::Context;
use crate::place::clock::SharedClock;
use crate::server::metrics::ControllerLabel;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use prometheus_client::metrics::gauge::Gauge;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The longest the queue sleeps (tokio time) before re-reading its clock.
pub const CLOCK_POLL: Duration = Duration::from_millis(50);
/// First back-off of [`WorkQueue::add_rate_limited`].
pub const BACKOFF_BASE: Duration = Duration::from_millis(5);
/// Longest back-off of [`WorkQueue::add_rate_limited`].
pub const BACKOFF_MAX: Duration = Duration::from_secs(1000);

/// The key of an object: its namespace (none if cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key `namespace/name`.
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        ObjectKey {
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// The key of `obj`.
    pub fn of<K: Resource>(obj: &K) -> Self {
        ObjectKey {
            namespace: obj.meta().namespace.clone(),
            name: obj.meta().name.clone().unwrap_or_default(),
        }
    }

    /// A reference for looking the object up in a [`Store`].
    pub fn to_ref<K: Resource<DynamicType = ()>>(&self) -> ObjectRef<K> {
        let r = ObjectRef::new(&self.name);
        match &self.namespace {
            Some(ns) => r.within(ns),
            None => r,
        }
    }

    /// The namespace, or `""`.
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

/// What to do with a key after a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until something changes.
    Done,
    /// Reconcile again after this long (on the injected clock).
    RequeueAfter(Duration),
}

struct QueueState<K> {
    queue: VecDeque<K>,
    dirty: HashSet<K>,
    processing: HashSet<K>,
    /// Delayed keys by (due time, sequence).
    waiting: BTreeMap<(Duration, u64), K>,
    /// Due time of each delayed key (the earliest wins).
    waiting_due: HashMap<K, (Duration, u64)>,
    failures: HashMap<K, u32>,
    seq: u64,
    shutdown: bool,
}

struct QueueInner<K> {
    state: Mutex<QueueState<K>>,
    notify: Notify,
    clock: SharedClock,
    gauge: Option<Gauge>,
}

/// A work queue with client-go's semantics (see the module documentation). Clones share
/// the same queue.
pub struct WorkQueue<K = ObjectKey> {
    inner: Arc<QueueInner<K>>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        WorkQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Clone + Eq + Hash + fmt::Debug + Send + 'static> WorkQueue<K> {
    /// An empty queue measuring delays on `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self::build(clock, None)
    }

    /// An empty queue whose length is mirrored into `gauge`.
    pub fn with_gauge(clock: SharedClock, gauge: Gauge) -> Self {
        Self::build(clock, Some(gauge))
    }

    fn build(clock: SharedClock, gauge: Option<Gauge>) -> Self {
        WorkQueue {
            inner: Arc::new(QueueInner {
                state: Mutex::new(QueueState {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    waiting: BTreeMap::new(),
                    waiting_due: HashMap::new(),
                    failures: HashMap::new(),
                    seq: 0,
                    shutdown: false,
                }),
                notify: Notify::new(),
                clock,
                gauge,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState<K>> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, st: &QueueState<K>) {
        if let Some(g) = &self.inner.gauge {
            g.set((st.queue.len() + st.waiting.len()) as i64);
        }
    }

    /// Adds `key` now: ready keys are held once; a key being processed is queued again
    /// when it is `done`.
    pub fn add(&self, key: K) {
        let mut st = self.lock();
        if Self::add_locked(&mut st, key) {
            self.publish(&st);
            drop(st);
            self.inner.notify.notify_waiters();
        }
    }

    /// Returns whether a key became ready.
    fn add_locked(st: &mut QueueState<K>, key: K) -> bool {
        if st.shutdown || st.dirty.contains(&key) {
            return false;
        }
        // A delayed copy is superseded by the ready one.
        if let Some(due) = st.waiting_due.remove(&key) {
            st.waiting.remove(&due);
        }
        st.dirty.insert(key.clone());
        if st.processing.contains(&key) {
            return false;
        }
        st.queue.push_back(key);
        true
    }

    /// Adds `key` once `delay` has passed on the queue's clock (an earlier pending delay
    /// of the same key wins).
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let mut st = self.lock();
        if st.shutdown {
            return;
        }
        let due = self.inner.clock.now().saturating_add(delay);
        if let Some(&(old, seq)) = st.waiting_due.get(&key) {
            if old <= due {
                return;
            }
            st.waiting.remove(&(old, seq));
        }
        st.seq += 1;
        let slot = (due, st.seq);
        st.waiting.insert(slot, key.clone());
        st.waiting_due.insert(key, slot);
        self.publish(&st);
        drop(st);
        self.inner.notify.notify_waiters();
    }

    /// The back-off the next [`WorkQueue::add_rate_limited`] of `key` would use.
    pub fn next_backoff(&self, key: &K) -> Duration {
        let n = self.lock().failures.get(key).copied().unwrap_or(0);
        backoff(n)
    }

    /// Adds `key` after its per-key exponential back-off, and grows the back-off.
    pub fn add_rate_limited(&self, key: K) {
        let delay = {
            let mut st = self.lock();
            let n = st.failures.entry(key.clone()).or_insert(0);
            let d = backoff(*n);
            *n = n.saturating_add(1);
            d
        };
        self.add_after(key, delay);
    }

    /// Times `key` has been rate-limited since it was last forgotten.
    pub fn num_requeues(&self, key: &K) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Resets the back-off of `key`.
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// Marks `key` as processed; if it was added meanwhile, it is ready again.
    pub fn done(&self, key: &K) {
        let mut st = self.lock();
        st.processing.remove(key);
        if st.dirty.contains(key) && !st.shutdown {
            st.queue.push_back(key.clone());
            self.publish(&st);
            drop(st);
            self.inner.notify.notify_waiters();
        }
    }

    /// Keys waiting (ready or delayed).
    pub fn len(&self) -> usize {
        let st = self.lock();
        st.queue.len() + st.waiting.len()
    }

    /// Whether no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the queue: [`WorkQueue::get`] returns `None` from now on.
    pub fn shutdown(&self) {
        let mut st = self.lock();
        st.shutdown = true;
        drop(st);
        self.inner.notify.notify_waiters();
    }

    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        self.lock().shutdown
    }

    /// Makes waiting `get`s re-read the clock now (after moving a manual clock).
    pub fn wake(&self) {
        self.inner.notify.notify_waiters();
    }

    /// The next ready key (waiting for one), or `None` once the queue is shut down. The
    /// caller must call [`WorkQueue::done`] with it.
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let sleep_for = {
                let mut st = self.lock();
                if st.shutdown {
                    return None;
                }
                let now = self.inner.clock.now();
                let mut promoted = false;
                while let Some((&slot, _)) = st.waiting.iter().next() {
                    if slot.0 > now {
                        break;
                    }
                    let key = st.waiting.remove(&slot).expect("present");
                    st.waiting_due.remove(&key);
                    promoted |= Self::add_locked(&mut st, key);
                }
                if let Some(key) = st.queue.pop_front() {
                    st.dirty.remove(&key);
                    st.processing.insert(key.clone());
                    self.publish(&st);
                    if promoted || !st.queue.is_empty() {
                        drop(st);
                        self.inner.notify.notify_waiters();
                    }
                    return Some(key);
                }
                self.publish(&st);
                st.waiting
                    .keys()
                    .next()
                    .map(|&(due, _)| due.saturating_sub(now).min(CLOCK_POLL))
            };
            match sleep_for {
                Some(d) => {
                    let _ = tokio::time::timeout(d.max(Duration::from_millis(1)), notified).await;
                }
                None => notified.await,
            }
        }
    }
}

fn backoff(failures: u32) -> Duration {
    let factor = 2u64.checked_pow(failures).unwrap_or(u64::MAX);
    let nanos = (BACKOFF_BASE.as_nanos() as u64).saturating_mul(factor);
    Duration::from_nanos(nanos).min(BACKOFF_MAX)
}

/// A watch-fed cache: the store and the stream of changed objects that fills it.
pub struct Watched<K: Resource<DynamicType = ()> + 'static> {
    /// The cache (complete once [`Store::wait_until_ready`] returns).
    pub store: Store<K>,
    /// Objects added, modified or deleted; polling it keeps `store` current.
    pub stream: BoxStream<'static, Arc<K>>,
}

/// Watches `api` into a cache (see [`Watched`]). Watch errors are logged and retried
/// with back-off.
pub fn watch<K>(api: Api<K>, config: watcher::Config) -> Watched<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let kind = K::kind(&()).into_owned();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff())
        .touched_objects()
        .filter_map(move |r| {
            let kind = kind.clone();
            async move {
                match r {
                    Ok(obj) => Some(Arc::new(obj)),
                    Err(e) => {
                        tracing::warn!(%kind, error = %e, "watch error");
                        None
                    }
                }
            }
        })
        .boxed();
    Watched { store, stream }
}

/// The controller ownerReference of `obj` if it is of kind `O` (apiVersion and kind).
pub fn controller_owner<O: Resource<DynamicType = ()>>(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|r| {
        r.controller == Some(true) && r.kind == O::kind(&()) && r.api_version == O::api_version(&())
    })
}

/// The key of the controller owner of kind `O` of `obj` (same namespace), if any: the
/// mapper of owned kinds for [`Controller::watches`].
pub fn owner_keys<O: Resource<DynamicType = ()>, K: Resource>(obj: Arc<K>) -> Vec<ObjectKey> {
    match controller_owner::<O>(obj.meta()) {
        Some(r) => vec![ObjectKey {
            namespace: obj.meta().namespace.clone(),
            name: r.name.clone(),
        }],
        None => vec![],
    }
}

type ErrorPolicy<E> = Arc<dyn Fn(&ObjectKey, &E) -> Option<Action> + Send + Sync>;

/// A controller: watches feeding a work queue, and workers reconciling its keys.
pub struct Controller<E> {
    name: String,
    ctx: Context,
    queue: WorkQueue<ObjectKey>,
    feeds: Vec<BoxFuture<'static, ()>>,
    ready: Vec<BoxFuture<'static, ()>>,
    workers: usize,
    on_error: Option<ErrorPolicy<E>>,
}

impl<E: fmt::Display + Send + Sync + 'static> Controller<E> {
    /// A controller called `name` (the `controller` label of its metrics), with a queue on
    /// `ctx.clock` whose depth feeds `ctx.metrics.queue_depth`.
    pub fn new(name: &str, ctx: Context) -> Self {
        let gauge = ctx
            .metrics
            .queue_depth
            .get_or_create(&ControllerLabel::new(name))
            .clone();
        let queue = WorkQueue::with_gauge(ctx.clock.mono().clone(), gauge);
        Controller {
            name: name.to_string(),
            ctx,
            queue,
            feeds: vec![],
            ready: vec![],
            workers: 1,
            on_error: None,
        }
    }

    /// The controller's queue (to add keys from elsewhere).
    pub fn queue(&self) -> WorkQueue<ObjectKey> {
        self.queue.clone()
    }

    /// Feeds the keys `map` gives for each changed object of `watched` into the queue;
    /// workers start only once `watched.store` is complete.
    pub fn watches<K, F>(mut self, watched: Watched<K>, map: F) -> Self
    where
        K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
        F: Fn(Arc<K>) -> Vec<ObjectKey> + Send + Sync + 'static,
    {
        let queue = self.queue.clone();
        let mut stream = watched.stream;
        self.feeds.push(
            async move {
                while let Some(obj) = stream.next().await {
                    for key in map(obj) {
                        queue.add(key);
                    }
                }
            }
            .boxed(),
        );
        let store = watched.store;
        self.ready.push(
            async move {
                let _ = store.wait_until_ready().await;
            }
            .boxed(),
        );
        self
    }

    /// Number of concurrent reconciles (at least one; a key is never reconciled by two
    /// workers at once).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Replaces the default error policy: `Some(action)` forgets the back-off and
    /// applies `action`; `None` falls back to the default (rate-limited requeue).
    pub fn on_error(
        mut self,
        f: impl Fn(&ObjectKey, &E) -> Option<Action> + Send + Sync + 'static,
    ) -> Self {
        self.on_error = Some(Arc::new(f));
        self
    }

    /// Runs until `shutdown` completes.
    pub async fn run<S, R, Fut>(
        self,
        state: Arc<S>,
        reconcile: R,
        shutdown: impl Future<Output = ()> + Send,
    ) where
        S: Send + Sync + 'static,
        R: Fn(ObjectKey, Arc<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let Controller {
            name,
            ctx,
            queue,
            feeds,
            ready,
            workers,
            on_error,
        } = self;
        let feed_tasks: Vec<_> = feeds.into_iter().map(tokio::spawn).collect();
        let reconcile = Arc::new(reconcile);
        let label = ControllerLabel::new(&name);
        let work = {
            let queue = queue.clone();
            let name = name.clone();
            async move {
                futures::future::join_all(ready).await;
                tracing::debug!(controller = %name, "caches synced");
                let mut tasks = Vec::new();
                for _ in 0..workers {
                    let queue = queue.clone();
                    let reconcile = reconcile.clone();
                    let state = state.clone();
                    let ctx = ctx.clone();
                    let label = label.clone();
                    let name = name.clone();
                    let on_error = on_error.clone();
                    tasks.push(tokio::spawn(async move {
                        while let Some(key) = queue.get().await {
                            ctx.metrics.reconciles.get_or_create(&label).inc();
                            let result = reconcile(key.clone(), state.clone()).await;
                            match result {
                                Ok(action) => {
                                    queue.forget(&key);
                                    if let Action::RequeueAfter(d) = action {
                                        queue.add_after(key.clone(), d);
                                    }
                                }
                                Err(e) => {
                                    ctx.metrics.reconcile_errors.get_or_create(&label).inc();
                                    match on_error.as_ref().and_then(|f| f(&key, &e)) {
                                        Some(action) => {
                                            queue.forget(&key);
                                            if let Action::RequeueAfter(d) = action {
                                                queue.add_after(key.clone(), d);
                                            }
                                        }
                                        None => {
                                            tracing::info!(controller = %name, %key, error = %e, "reconcile failed");
                                            queue.add_rate_limited(key.clone());
                                        }
                                    }
                                }
                            }
                            queue.done(&key);
                        }
                    }));
                }
                futures::future::join_all(tasks).await;
            }
        };
        let work = tokio::spawn(work);
        shutdown.await;
        queue.shutdown();
        for t in &feed_tasks {
            t.abort();
        }
        let _ = work.await;
        for t in feed_tasks {
            let _ = t.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::place::clock::ManualClock;

    fn k(n: &str) -> ObjectKey {
        ObjectKey::new(Some("ns"), n)
    }

    fn manual() -> (ManualClock, WorkQueue<ObjectKey>) {
        let c = ManualClock::new();
        let q = WorkQueue::new(Arc::new(c.clone()));
        (c, q)
    }

    #[test]
    fn key_display() {
        assert_eq!(k("a").to_string(), "ns/a");
        assert_eq!(ObjectKey::new(None, "n1").to_string(), "n1");
    }

    #[tokio::test]
    async fn dedupes_ready_keys() {
        let (_c, q) = manual();
        q.add(k("a"));
        q.add(k("a"));
        q.add(k("b"));
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await, Some(k("a")));
        assert_eq!(q.get().await, Some(k("b")));
        assert_eq!(q.len(), 0);
    }

    #[tokio::test]
    async fn readd_during_processing_comes_back_after_done() {
        let (_c, q) = manual();
        q.add(k("a"));
        let got = q.get().await.unwrap();
        q.add(k("a"));
        q.add(k("a"));
        // Not handed out while being processed.
        assert!(tokio::time::timeout(Duration::from_millis(30), q.get())
            .await
            .is_err());
        q.done(&got);
        assert_eq!(q.get().await, Some(k("a")));
        q.done(&k("a"));
        assert!(q.is_empty());
    }

    #[test]
    fn backoff_grows_and_caps_and_forget_resets() {
        let c = ManualClock::new();
        let q: WorkQueue<ObjectKey> = WorkQueue::new(Arc::new(c));
        let key = k("a");
        let mut seen = vec![];
        for _ in 0..4 {
            seen.push(q.next_backoff(&key));
            q.add_rate_limited(key.clone());
        }
        assert_eq!(
            seen,
            vec![
                Duration::from_millis(5),
                Duration::from_millis(10),
                Duration::from_millis(20),
                Duration::from_millis(40)
            ]
        );
        assert_eq!(q.num_requeues(&key), 4);
        for _ in 0..100 {
            q.add_rate_limited(key.clone());
        }
        assert_eq!(q.next_backoff(&key), BACKOFF_MAX);
        q.forget(&key);
        assert_eq!(q.next_backoff(&key), BACKOFF_BASE);
        assert_eq!(q.len(), 1, "delayed copies of one key are deduplicated");
    }

    #[tokio::test]
    async fn delayed_add_waits_for_the_clock() {
        let (c, q) = manual();
        q.add_after(k("a"), Duration::from_secs(10));
        assert_eq!(q.len(), 1);
        assert!(tokio::time::timeout(Duration::from_millis(120), q.get())
            .await
            .is_err());
        c.advance(Duration::from_secs(9));
        assert!(tokio::time::timeout(Duration::from_millis(120), q.get())
            .await
            .is_err());
        c.advance(Duration::from_secs(1));
        let got = tokio::time::timeout(Duration::from_millis(500), q.get())
            .await
            .unwrap();
        assert_eq!(got, Some(k("a")));
    }

    #[tokio::test]
    async fn earlier_delay_wins_and_ready_add_supersedes() {
        let (c, q) = manual();
        q.add_after(k("a"), Duration::from_secs(10));
        q.add_after(k("a"), Duration::from_secs(5));
        q.add_after(k("a"), Duration::from_secs(20));
        assert_eq!(q.len(), 1);
        c.advance(Duration::from_secs(5));
        assert_eq!(
            tokio::time::timeout(Duration::from_millis(500), q.get())
                .await
                .unwrap(),
            Some(k("a"))
        );
        q.done(&k("a"));
        q.add_after(k("b"), Duration::from_secs(5));
        q.add(k("b"));
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, Some(k("b")));
    }

    #[tokio::test]
    async fn shutdown_wakes_getters() {
        let (_c, q) = manual();
        let q2 = q.clone();
        let h = tokio::spawn(async move { q2.get().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.shutdown();
        assert_eq!(h.await.unwrap(), None);
    }

    #[tokio::test]
    async fn wall_clock_delay() {
        let q: WorkQueue<ObjectKey> = WorkQueue::new(crate::place::clock::WallClock::shared());
        q.add_after(k("a"), Duration::from_millis(30));
        let t = std::time::Instant::now();
        assert_eq!(q.get().await, Some(k("a")));
        assert!(t.elapsed() >= Duration::from_millis(25));
    }
}
