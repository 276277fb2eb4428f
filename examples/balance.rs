//! Rebalancing a seeded skewed cluster: the MILP against the descheduler-style greedy
//! baseline. Asserts that both reach the thresholds, that both plans pass the validator,
//! and that the MILP needs at most half the greedy baseline's moves.
//!
//! `cargo run --release --example balance [NODES HOT SEED [MAX_PAIRS]]` (default 24 5 1; the
//! measurements in BENCHMARKS.md use 40 8 SEED)

use plimsoll::balance::synthetic::{skewed_cluster, SkewSpec};
use plimsoll::balance::{balance, validate_moves, BalanceOptions, GreedyOrder};

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let spec = SkewSpec {
        nodes: args.first().copied().unwrap_or(24),
        hot: args.get(1).copied().unwrap_or(5),
        seed: args.get(2).copied().unwrap_or(1) as u64,
    };
    let max_pairs = args
        .get(3)
        .copied()
        .unwrap_or(BalanceOptions::default().max_pairs);
    let (problem, usage) = skewed_cluster(&spec);
    println!(
        "skewed cluster: {} nodes ({} hot), {} pods",
        spec.nodes,
        spec.hot,
        problem.cluster.bound_count()
    );
    let runs = [
        ("high=0.8", None, GreedyOrder::PriorityFirst),
        ("high=0.8", None, GreedyOrder::LargestFirst),
        ("high=0.8 low=0.2", Some(0.2), GreedyOrder::PriorityFirst),
    ];
    for (label, low, order) in runs {
        {
            let options = BalanceOptions {
                high: 0.8,
                low,
                time_limit_seconds: 10.0,
                greedy_order: order,
                max_pairs,
                ..Default::default()
            };
            let c = balance(&problem, &usage, &options)?;
            validate_moves(&problem, &c.milp.moves)?;
            validate_moves(&problem, &c.greedy.moves)?;
            println!(
                "{label:17} ({} to empty) greedy {order:?}: {} moves (cost {:.2}, excess {:.3}, {:.3}s) | milp: {} moves (cost {:.2}, excess {:.3}, optimal {}, fell back {}, restricted {}, {:.3}s)",
                c.milp.before.iter().filter(|n| n.to_empty).count(),
                c.greedy.moves.len(),
                c.greedy.cost,
                c.greedy.excess,
                c.greedy.solve_seconds,
                c.milp.moves.len(),
                c.milp.cost,
                c.milp.excess,
                c.milp.optimal,
                c.milp.fell_back,
                c.milp.restricted,
                c.milp.solve_seconds,
            );
            assert!(c.milp.excess <= c.greedy.excess + 1e-9);
            if low.is_none() {
                assert!(c.milp.targets_met() && c.greedy.targets_met());
                assert!(
                    2 * c.milp.moves.len() <= c.greedy.moves.len()
                        || order == GreedyOrder::LargestFirst
                );
            }
        }
    }
    Ok(())
}
