//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection`
//! does it, so that of several `plimsoll server` processes on one etcd only one runs the
//! controllers and the scheduler.
//!
//! A candidate tries every `retry_period` to take the Lease: it may when the Lease has no
//! holder, is its own, or has not changed for `lease_duration` *as observed locally*
//! (the holder's clock is never trusted: the candidate times the record from the moment
//! it saw it change). The leader renews every `retry_period`; if it has not renewed for
//! `renew_deadline` it stops leading at once — before `lease_duration` has passed, so no
//! other candidate can have taken over while it still acts. Writes use the Lease's
//! `resourceVersion`, so two candidates can never both win. On shutdown the leader gives
//! the Lease up (empty holder), so a follower takes over without waiting.

use crate::server::clock::OrchClock;
use crate::server::metrics::{LeaseLabel, Metrics};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How to elect.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    /// Namespace of the Lease (`kube-system`).
    pub namespace: String,
    /// Name of the Lease (`plimsoll-control-plane`).
    pub name: String,
    /// This candidate's identity (host name and a random suffix).
    pub identity: String,
    /// How long a Lease that has not changed stays the holder's (15 s).
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal (10 s).
    pub renew_deadline: Duration,
    /// How often candidates try and the leader renews (2 s).
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// kube's defaults for a Lease `namespace/name` held by `identity`.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        LeaderConfig {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// A unique identity for this process: the host name and a random suffix.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "plimsoll".into());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// What the candidate last saw of the Lease, and when (monotonic).
#[derive(Debug, Default)]
struct Observed {
    record: Option<(Option<String>, Option<MicroTime>, Option<i32>)>,
    at: Duration,
}

/// One candidate.
#[derive(Debug)]
pub struct Elector {
    api: Api<Lease>,
    config: LeaderConfig,
    clock: OrchClock,
    observed: Observed,
}

impl Elector {
    /// A candidate for `config`'s Lease.
    pub fn new(client: kube::Client, config: LeaderConfig, clock: OrchClock) -> Self {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            clock,
            observed: Observed::default(),
        }
    }

    /// One attempt to take or renew the Lease: whether this candidate now holds it.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(self.clock.now());
        let secs = self
            .config
            .lease_duration
            .as_secs()
            .clamp(1, i32::MAX as u64) as i32;
        let me = self.config.identity.clone();
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = (
            holder.clone(),
            spec.renew_time.clone(),
            spec.lease_transitions,
        );
        let mono = self.clock.elapsed();
        if self.observed.record.as_ref() != Some(&record) {
            self.observed = Observed {
                record: Some(record),
                at: mono,
            };
        }
        let held_by_other = holder.as_ref().is_some_and(|h| *h != me);
        let duration = spec
            .lease_duration_seconds
            .map_or(self.config.lease_duration, |s| {
                Duration::from_secs(s.max(0) as u64)
            });
        if held_by_other && self.observed.at + duration > mono {
            return Ok(false);
        }
        let mut new = spec.clone();
        if holder.as_deref() != Some(me.as_str()) {
            new.acquire_time = Some(now.clone());
            new.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        new.holder_identity = Some(me);
        new.renew_time = Some(now);
        new.lease_duration_seconds = Some(secs);
        lease.spec = Some(new);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(l) => {
                let s = l.spec.unwrap_or_default();
                self.observed = Observed {
                    record: Some((s.holder_identity, s.renew_time, s.lease_transitions)),
                    at: mono,
                };
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this candidate holds it (empty holder, 1 s duration).
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(self.clock.now()));
        lease.spec = Some(spec);
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}

/// Runs `lead` whenever this candidate holds the Lease, until `shutdown` is set.
/// `lead` gets a receiver that turns `true` when leadership is lost or shutdown begins;
/// the task it returns is also aborted if it has not finished within a second of that,
/// so a deposed leader stops acting before another can have taken over.
pub async fn run_elected<F, Fut>(
    client: kube::Client,
    config: LeaderConfig,
    clock: OrchClock,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
    mut lead: F,
) where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let label = LeaseLabel {
        name: config.name.clone(),
    };
    let gauge = metrics.leader.is_leader.get_or_create(&label).clone();
    let retry = config.retry_period;
    let renew_deadline = config.renew_deadline;
    let mut elector = Elector::new(client, config.clone(), clock.clone());
    while !*shutdown.borrow() {
        // Candidate.
        match elector.try_acquire_or_renew().await {
            Ok(true) => {}
            Ok(false) => {
                sleep_or_shutdown(retry, &mut shutdown).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(lease = %config.name, error = %e, "leader election");
                sleep_or_shutdown(retry, &mut shutdown).await;
                continue;
            }
        }
        tracing::info!(lease = %config.name, identity = %config.identity, "became leader");
        gauge.set(1);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut task = tokio::spawn(lead(stop_rx));
        let mut last_renew = clock.elapsed();
        let mut finished = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = shutdown.changed() => {}
                _ = &mut task => { finished = true; }
            }
            if *shutdown.borrow() || finished {
                break;
            }
            match tokio::time::timeout(retry, elector.try_acquire_or_renew()).await {
                Ok(Ok(true)) => last_renew = clock.elapsed(),
                Ok(Ok(false)) => {
                    tracing::warn!(lease = %config.name, "lost the lease to another holder");
                    break;
                }
                Ok(Err(e)) => {
                    tracing::warn!(lease = %config.name, error = %e, "lease renewal failed")
                }
                Err(_) => tracing::warn!(lease = %config.name, "lease renewal timed out"),
            }
            if clock.elapsed().saturating_sub(last_renew) > renew_deadline {
                tracing::warn!(lease = %config.name, "no renewal within the deadline: stepping down");
                break;
            }
        }
        let _ = stop_tx.send(true);
        if !finished
            && tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
        {
            task.abort();
            let _ = task.await;
        }
        gauge.set(0);
        tracing::info!(lease = %config.name, "stopped leading");
        if *shutdown.borrow() {
            let _ = tokio::time::timeout(retry, elector.release()).await;
        }
    }
}

async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.changed() => {}
    }
}
