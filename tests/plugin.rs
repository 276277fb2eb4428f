//! The plugin API: each hook changes the outcome as expected, online and in the MILP; a
//! plugin's reason reaches the explanation; the validator with plugins catches what the
//! plugins forbid; a neutral plugin set changes nothing.

use plimsoll::model::{Cluster, GpuAmount, Node, NodeId, Pod, Problem, GIB};
use plimsoll::place::online::{OnlineKind, OnlinePolicy};
use plimsoll::place::plugin::{
    explain_with, policy_with_plugins, validate_with, FilterPlugin, MilpPlugin, Plugins,
    ScorePlugin,
};
use plimsoll::place::validate::{validate, ViolationKind};
use plimsoll::place::{Placer, Reason};
use plimsoll::place::{PolicyOptions, POLICY_NAMES};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn node(name: &str, cores: u64, gpus: u32) -> Node {
    Node::new(name, cores * 1000, cores * 4 * GIB)
        .with_ephemeral_storage(100 * GIB)
        .with_gpus("V100", gpus)
}

fn pod(name: &str, cpu_milli: u64, gpu: GpuAmount) -> Pod {
    Pod::new(name, cpu_milli, cpu_milli / 1000 * GIB).with_gpu(gpu)
}

fn problem(nodes: Vec<Node>, pending: Vec<Pod>) -> Problem {
    Problem {
        cluster: Cluster::new(nodes).unwrap(),
        pending,
    }
}

/// Rejects every node whose name is in the list.
struct Deny(Vec<&'static str>);

impl FilterPlugin for Deny {
    fn name(&self) -> &str {
        "Deny"
    }
    fn filter(&self, _: &Pod, node: &Node, _: &Cluster) -> Result<(), String> {
        if self.0.contains(&node.name.as_str()) {
            Err(format!("{} is denied", node.name))
        } else {
            Ok(())
        }
    }
}

/// Scores 100 on one node, 0 elsewhere.
struct Prefer(&'static str, f64);

impl ScorePlugin for Prefer {
    fn name(&self) -> &str {
        "Prefer"
    }
    fn score(&self, _: &Pod, node: &Node, _: &Cluster) -> f64 {
        if node.name == self.0 {
            100.0
        } else {
            0.0
        }
    }
    fn weight(&self) -> f64 {
        self.1
    }
}

/// Forbids the listed nodes and charges `cost` per pod on `pricey`.
struct Rule {
    forbid: Vec<&'static str>,
    pricey: &'static str,
    cost: f64,
}

impl MilpPlugin for Rule {
    fn name(&self) -> &str {
        "Rule"
    }
    fn forbid(&self, _: &Pod, node: &Node, _: &Cluster) -> bool {
        self.forbid.contains(&node.name.as_str())
    }
    fn cost(&self, _: &Pod, node: &Node, _: &Cluster) -> f64 {
        if node.name == self.pricey {
            self.cost
        } else {
            0.0
        }
    }
}

/// Accepts everything, scores 0: must change nothing.
struct Neutral;

impl FilterPlugin for Neutral {
    fn name(&self) -> &str {
        "Neutral"
    }
    fn filter(&self, _: &Pod, _: &Node, _: &Cluster) -> Result<(), String> {
        Ok(())
    }
}

impl ScorePlugin for Neutral {
    fn name(&self) -> &str {
        "Neutral"
    }
    fn score(&self, _: &Pod, _: &Node, _: &Cluster) -> f64 {
        0.0
    }
}

fn nodes_of(p: &[Option<plimsoll::model::Binding>]) -> Vec<Option<usize>> {
    p.iter()
        .map(|b| b.as_ref().map(|b| b.node.index()))
        .collect()
}

fn four_nodes() -> Vec<Node> {
    (0..4).map(|i| node(&format!("n{i}"), 8, 2)).collect()
}

#[test]
fn filter_plugin_keeps_every_online_kind_off_denied_nodes() {
    let pods: Vec<Pod> = (0..6)
        .map(|i| pod(&format!("p{i}"), 1000, GpuAmount::Shared(300)))
        .collect();
    let pr = problem(four_nodes(), pods);
    let plugins = Plugins::new().filter(Deny(vec!["n0", "n2"]));
    for kind in OnlineKind::ALL {
        let plain = OnlinePolicy::new(kind, 3).place(&pr).unwrap();
        let out = OnlinePolicy::new(kind, 3)
            .with_plugins(plugins.clone())
            .place(&pr)
            .unwrap();
        assert_eq!(out.placed(), 6, "{kind:?}");
        for n in nodes_of(&out.placement).into_iter().flatten() {
            assert!(n == 1 || n == 3, "{kind:?} used denied node {n}");
        }
        validate_with(&pr, &out.placement, &plugins).unwrap();
        if kind != OnlineKind::Random {
            // Every deterministic plugin-less kind uses n0 here (lowest index wins ties).
            assert!(nodes_of(&plain.placement).contains(&Some(0)), "{kind:?}");
        }
    }
}

#[test]
fn score_plugin_steers_the_choice_and_its_weight_matters() {
    let pr = problem(four_nodes(), vec![pod("p", 1000, GpuAmount::None)]);
    let best_fit = OnlinePolicy::new(OnlineKind::BestFit, 1);
    assert_eq!(nodes_of(&best_fit.place(&pr).unwrap().placement), [Some(0)]);
    let strong = best_fit
        .clone()
        .with_plugins(Plugins::new().score(Prefer("n3", 2.0)));
    assert_eq!(nodes_of(&strong.place(&pr).unwrap().placement), [Some(3)]);
    // The plugin's score is in the totals, times its weight.
    let plain = best_fit.scores(&pr.cluster, &pr.pending[0]);
    let with = strong.scores(&pr.cluster, &pr.pending[0]);
    assert_eq!(plain.len(), with.len());
    for ((n, a), (m, b)) in plain.iter().zip(&with) {
        assert_eq!(n, m);
        let want = if n.index() == 3 { a + 200.0 } else { *a };
        assert!((b - want).abs() < 1e-9, "node {n}: {b} vs {want}");
    }
    // Weight 0 leaves the choice to the policy.
    let none = best_fit.with_plugins(Plugins::new().score(Prefer("n3", 0.0)));
    assert_eq!(nodes_of(&none.place(&pr).unwrap().placement), [Some(0)]);
}

#[test]
fn session_and_first_fit_honour_filters() {
    let plugins = Plugins::new().filter(Deny(vec!["n0", "n1"]));
    let mut s = OnlinePolicy::new(OnlineKind::FirstFit, 0)
        .with_plugins(plugins)
        .session(Cluster::new(four_nodes()).unwrap());
    let (_, b) = s.place(pod("p", 1000, GpuAmount::None)).unwrap().unwrap();
    assert_eq!(b.node.index(), 2);
}

#[test]
fn plugin_reason_appears_in_the_explanation_of_an_unplaced_pod() {
    let pods = vec![pod("big", 6000, GpuAmount::None)];
    let mut nodes = four_nodes();
    nodes[0].allocatable.cpu_milli = 4000; // too small: a built-in reason
    let pr = problem(nodes, pods);
    let plugins = Plugins::new().filter(Deny(vec!["n1", "n2", "n3"]));
    let out = OnlinePolicy::new(OnlineKind::KubeDefault, 0)
        .with_plugins(plugins.clone())
        .place(&pr)
        .unwrap();
    assert_eq!(out.placed(), 0);
    let e = &explain_with(&pr, &out.placement, &plugins)[0];
    assert!(e.feasible_nodes.is_empty());
    assert_eq!(e.per_node.len(), 4);
    assert_eq!(
        e.per_node[1].1,
        vec![Reason::Plugin {
            name: "Deny".into(),
            message: "n1 is denied".into()
        }]
    );
    assert_eq!(
        e.summary,
        "0/4 nodes are available: 1 Deny: n1 is denied, 1 Deny: n2 is denied, \
         1 Deny: n3 is denied, 1 Insufficient cpu."
    );
    // Without the plugins, the same pod is explained as fitting.
    let plain = &plimsoll::place::explain::explain(&pr, &out.placement)[0];
    assert_eq!(
        plain.feasible_nodes,
        [1, 2, 3].map(NodeId::from_index).to_vec()
    );
}

#[test]
fn validator_with_plugins_catches_a_plugin_violation() {
    let pr = problem(four_nodes(), vec![pod("a", 1000, GpuAmount::None); 2]);
    let plain = OnlinePolicy::new(OnlineKind::BestFit, 0)
        .place(&pr)
        .unwrap();
    validate(&pr, &plain.placement).unwrap();
    let plugins = Plugins::new().milp(Rule {
        forbid: vec!["n0"],
        pricey: "",
        cost: 0.0,
    });
    let v = validate_with(&pr, &plain.placement, &plugins).unwrap_err();
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|v| v.node == Some(NodeId::FIRST)
        && matches!(&v.kind, ViolationKind::Plugin { plugin, .. } if plugin == "Rule")));
}

/// The MILP's side of the plugin API (needs the `milp` feature).
#[cfg(feature = "milp")]
mod milp_plugins {
    use super::*;
    use plimsoll::model::{LabelSelector, TopologySpreadConstraint, WhenUnsatisfiable};
    use plimsoll::place::milp::{MilpOptions, MilpPlacer, Objective};

    fn milp(objective: Objective) -> MilpPlacer {
        MilpPlacer::new(MilpOptions {
            objective,
            time_limit_seconds: 10.0,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn milp_forbid_and_cost_change_the_optimum() {
        // Four 2-core pods fit on one 8-core node: pack uses n0.
        let pods: Vec<Pod> = (0..4)
            .map(|i| pod(&format!("p{i}"), 2000, GpuAmount::None))
            .collect();
        let pr = problem(four_nodes(), pods);
        let plain = milp(Objective::Pack).place(&pr).unwrap();
        let used = |p: &[Option<plimsoll::model::Binding>]| {
            let mut v: Vec<usize> = nodes_of(p).into_iter().flatten().collect();
            v.sort();
            v.dedup();
            v
        };
        assert_eq!(used(&plain.placement), vec![0]);
        // Forbid n0 and n1, make n2 pricey: all four go to n3.
        let rule = Plugins::new().milp(Rule {
            forbid: vec!["n0", "n1"],
            pricey: "n2",
            cost: 0.1,
        });
        let out = milp(Objective::Pack)
            .with_plugins(rule.clone())
            .place(&pr)
            .unwrap();
        assert_eq!(out.placed(), 4);
        assert_eq!(used(&out.placement), vec![3]);
        validate_with(&pr, &out.placement, &rule).unwrap();
        assert!(validate_with(&pr, &plain.placement, &rule).is_err());
        // A reward (negative cost) on n2 under balance: everything the goal allows goes there.
        let reward = Plugins::new().milp(Rule {
            forbid: vec![],
            pricey: "n2",
            cost: -1.0,
        });
        let out = milp(Objective::Balance)
            .with_plugins(reward)
            .place(&pr)
            .unwrap();
        assert_eq!(out.placed(), 4);
        assert_eq!(used(&out.placement), vec![2]);
    }

    #[test]
    fn milp_filter_plugin_binds_the_greedy_tail_and_the_large_pack_path() {
        // 3 classes × 720 nodes > 2,000 pairs: without plugins `pack` would aggregate.
        let nodes: Vec<Node> = (0..720).map(|i| node(&format!("n{i}"), 8, 0)).collect();
        let mut pods: Vec<Pod> = (0..12)
            .map(|i| pod(&format!("p{i}"), 1000 * (1 + i % 3), GpuAmount::None))
            .collect();
        // A soft-spread pod goes to the greedy tail.
        let mut spread = pod("tail", 1000, GpuAmount::None);
        spread.labels.insert("app".into(), "tail".into());
        spread.topology_spread.push(TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".into(),
            when_unsatisfiable: WhenUnsatisfiable::ScheduleAnyway,
            selector: LabelSelector {
                match_labels: [("app".to_string(), "tail".to_string())].into(),
                ..Default::default()
            },
        });
        pods.push(spread);
        let pr = problem(nodes, pods);
        let deny: Vec<&'static str> = vec!["n0", "n1", "n2", "n3"];
        let plugins = Plugins::new().filter(Deny(deny));
        let out = milp(Objective::Pack)
            .with_plugins(plugins.clone())
            .place(&pr)
            .unwrap();
        assert_eq!(out.placed(), 13);
        validate_with(&pr, &out.placement, &plugins).unwrap();
        assert!(nodes_of(&out.placement).iter().flatten().all(|&n| n >= 4));
    }
}

#[test]
fn neutral_plugins_change_no_online_placement() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let nodes: Vec<Node> = (0..24)
        .map(|i| {
            node(
                &format!("n{i}"),
                rng.gen_range(4..=32),
                rng.gen_range(0..=4),
            )
        })
        .collect();
    let pods: Vec<Pod> = (0..60)
        .map(|i| {
            let gpu = match rng.gen_range(0..4) {
                0 => GpuAmount::None,
                1 => GpuAmount::Shared(rng.gen_range(1..10) * 100),
                2 => GpuAmount::Whole(1),
                _ => GpuAmount::Whole(rng.gen_range(1..=2)),
            };
            pod(&format!("p{i}"), rng.gen_range(1..=8) * 500, gpu)
        })
        .collect();
    let pr = problem(nodes, pods);
    let neutral = Plugins::new().filter(Neutral).score(Neutral);
    for kind in OnlineKind::ALL {
        let a = OnlinePolicy::new(kind, 5).place(&pr).unwrap();
        let b = OnlinePolicy::new(kind, 5)
            .with_plugins(neutral.clone())
            .place(&pr)
            .unwrap();
        assert_eq!(a.placement, b.placement, "{kind:?}");
    }
}

#[test]
fn every_named_policy_takes_plugins() {
    let pods: Vec<Pod> = (0..5)
        .map(|i| pod(&format!("p{i}"), 1500, GpuAmount::None))
        .collect();
    let pr = problem(four_nodes(), pods);
    let plugins = Plugins::new().filter(Deny(vec!["n0", "n3"]));
    let opts = PolicyOptions {
        time_limit_seconds: 5.0,
        ..Default::default()
    };
    for name in POLICY_NAMES {
        let p = policy_with_plugins(name, &opts, plugins.clone()).unwrap();
        assert_eq!(p.name(), *name);
        let out = p.place(&pr).unwrap();
        assert_eq!(out.placed(), 5, "{name}");
        validate_with(&pr, &out.placement, &plugins).unwrap();
    }
    assert!(policy_with_plugins("nope", &opts, plugins).is_err());
}
