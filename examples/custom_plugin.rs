//! Custom plugins: an embedder adds its own hard filter and score to an online policy and
//! its own hard constraint and objective term to the MILP, without forking Plimsoll.
//!
//! Run with `cargo run --release --example custom_plugin`. The example asserts the effect
//! of each plugin against the plugin-less run, and that the validator *with* the plugins
//! accepts the plugin runs and rejects the plugin-less ones.
//!
//! - `Maintenance` (filter): nodes labelled `maintenance=true` take no pods.
//! - `PreferZone` (score): nodes in zone `b` score 100, others 0, at weight 2.
//! - `DbPlacement` (MILP): pods labelled `app=db` may not run in zone `a` (hard), and
//!   each pod on a node labelled `price=high` costs 0.01 (a tie-breaker below one node of
//!   the `pack` goal).

use anyhow::{ensure, Result};
use plimsoll::model::{Cluster, Node, NodeId, Pod, Problem, GIB};
use plimsoll::place::milp::{MilpOptions, MilpPlacer};
use plimsoll::place::online::{OnlineKind, OnlinePolicy};
use plimsoll::place::plugin::{validate_with, FilterPlugin, MilpPlugin, Plugins, ScorePlugin};
use plimsoll::place::validate::{validate, ViolationKind};
use plimsoll::place::Placer;

const ZONE: &str = "topology.kubernetes.io/zone";

struct Maintenance;

impl FilterPlugin for Maintenance {
    fn name(&self) -> &str {
        "Maintenance"
    }

    fn filter(&self, _pod: &Pod, node: &Node, _cluster: &Cluster) -> Result<(), String> {
        match node.labels.get("maintenance").map(String::as_str) {
            Some("true") => Err("node is under maintenance".into()),
            _ => Ok(()),
        }
    }
}

struct PreferZone(&'static str);

impl ScorePlugin for PreferZone {
    fn name(&self) -> &str {
        "PreferZone"
    }

    fn score(&self, _pod: &Pod, node: &Node, _cluster: &Cluster) -> f64 {
        if node.labels.get(ZONE).map(String::as_str) == Some(self.0) {
            100.0
        } else {
            0.0
        }
    }

    fn weight(&self) -> f64 {
        2.0
    }
}

struct DbPlacement;

impl MilpPlugin for DbPlacement {
    fn name(&self) -> &str {
        "DbPlacement"
    }

    fn forbid(&self, pod: &Pod, node: &Node, _cluster: &Cluster) -> bool {
        pod.labels.get("app").map(String::as_str) == Some("db")
            && node.labels.get(ZONE).map(String::as_str) == Some("a")
    }

    fn cost(&self, _pod: &Pod, node: &Node, _cluster: &Cluster) -> f64 {
        if node.labels.get("price").map(String::as_str) == Some("high") {
            0.01
        } else {
            0.0
        }
    }
}

/// A node of `cores` cores and 4 GiB per core, with `labels` only (no hostname label).
fn node(name: &str, cores: u64, labels: &[(&str, &str)]) -> Node {
    labels.iter().fold(
        Node::new(name, cores * 1000, cores * 4 * GIB).without_labels(),
        |n, (k, v)| n.with_label(k, v),
    )
}

fn problem() -> Result<Problem> {
    let nodes = vec![
        node("a-big", 32, &[(ZONE, "a"), ("maintenance", "true")]),
        node("a-1", 8, &[(ZONE, "a")]),
        node("b-1", 8, &[(ZONE, "b"), ("price", "high")]),
        node("b-2", 8, &[(ZONE, "b"), ("price", "high")]),
        node("b-3", 8, &[(ZONE, "b")]),
        node("b-4", 8, &[(ZONE, "b")]),
    ];
    let pending = (0..4)
        .map(|i| Pod::new(&format!("db-{i}"), 4000, 8 * GIB).with_label("app", "db"))
        .collect();
    Ok(Problem {
        cluster: Cluster::new(nodes)?,
        pending,
    })
}

/// Node indices of a placement (every pod must be placed).
fn nodes_of(placement: &[Option<plimsoll::model::Binding>]) -> Result<Vec<NodeId>> {
    placement
        .iter()
        .map(|b| b.as_ref().map(|b| b.node))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| anyhow::anyhow!("a pod was left pending"))
}

fn main() -> Result<()> {
    let problem = problem()?;
    let zone = |n: NodeId| problem.cluster[n].labels[ZONE].clone();

    // Online: least-allocated spreads, so the big node (under maintenance) comes first.
    let policy = OnlinePolicy::new(OnlineKind::LeastAllocated, 42);
    let plain = policy.place(&problem)?;
    let filter_only = Plugins::new().filter(Maintenance);
    let both = Plugins::new().filter(Maintenance).score(PreferZone("b"));
    let filtered = policy
        .clone()
        .with_plugins(filter_only.clone())
        .place(&problem)?;
    let scored = policy.clone().with_plugins(both.clone()).place(&problem)?;
    let (p, f, s) = (
        nodes_of(&plain.placement)?,
        nodes_of(&filtered.placement)?,
        nodes_of(&scored.placement)?,
    );
    println!("least-allocated             : {p:?}");
    println!("  + Maintenance             : {f:?}");
    println!("  + Maintenance + PreferZone: {s:?}");
    ensure!(
        p.contains(&NodeId::FIRST),
        "plugin-less run should use the big node"
    );
    ensure!(
        !f.contains(&NodeId::FIRST),
        "the filter must keep pods off a-big"
    );
    ensure!(
        f.iter().any(|&n| zone(n) == "a"),
        "without the score, zone a is used"
    );
    ensure!(!s.contains(&NodeId::FIRST) && s.iter().all(|&n| zone(n) == "b"));
    validate(&problem, &plain.placement).map_err(|v| anyhow::anyhow!("{v:?}"))?;
    validate_with(&problem, &scored.placement, &both).map_err(|v| anyhow::anyhow!("{v:?}"))?;
    let caught = validate_with(&problem, &plain.placement, &filter_only).unwrap_err();
    ensure!(caught.iter().all(
        |v| matches!(&v.kind, ViolationKind::Plugin { plugin, .. } if plugin == "Maintenance")
    ));
    println!(
        "validator with plugins on the plugin-less run: {}",
        caught[0]
    );

    // MILP: `pack` puts all four pods on the big node; the plugin forbids zone a for
    // databases and prices b-1 and b-2 out.
    let milp = MilpPlacer::new(MilpOptions {
        time_limit_seconds: 5.0,
        ..Default::default()
    })?;
    let db = Plugins::new().milp(DbPlacement);
    let plain = milp.place(&problem)?;
    let ruled = milp.clone().with_plugins(db.clone()).place(&problem)?;
    let (p, r) = (nodes_of(&plain.placement)?, nodes_of(&ruled.placement)?);
    println!("milp pack                   : {p:?}");
    println!("  + DbPlacement             : {r:?}");
    ensure!(
        p.iter().all(|&n| n == NodeId::FIRST),
        "plugin-less pack uses a-big alone"
    );
    ensure!(
        r.iter().all(|&n| n.index() == 4 || n.index() == 5),
        "zone b, cheap nodes only"
    );
    validate_with(&problem, &ruled.placement, &db).map_err(|v| anyhow::anyhow!("{v:?}"))?;
    ensure!(validate_with(&problem, &plain.placement, &db).is_err());
    println!("custom_plugin: every assertion holds");
    Ok(())
}
