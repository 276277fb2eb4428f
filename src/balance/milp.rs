//! The minimum-migration program (good_lp with HiGHS).
//!
//! # Model
//! One binary `y[p][t]` per movable pod `p` and candidate target `t` (nodes passing the
//! static filters, large enough for the pod alone, not to be emptied, not ruled out by
//! anti-affinity with unmovable pods); staying is `1 − Σ_t y[p][t]`, and `Σ_t y[p][t] ≤ 1`.
//! Per node, rows normalised by allocatable:
//! - requests (cpu, memory, ephemeral storage, pods, extended resources) of the pods
//!   there in the end at most allocatable (only on nodes that can receive pods);
//! - predicted CPU (and memory, with [`BalanceOptions::memory`]) usage at most
//!   `high × allocatable`, plus a slack `s_n ≥ 0` in the phases that allow excess;
//! - on a node to empty, every pod leaves (`Σ_t y[p][t] = 1`) in the hard phase; in the
//!   other phases each pod that stays adds its excess (see [`crate::balance`]);
//! - required anti-affinity between movable pods, per term and topology domain `d`:
//!   `M·[owner in d] + Σ_q [q in d] ≤ M` with `M` the matched pods that can be in `d`.
//!
//! # Goals (lexicographic, by solves)
//! When the greedy baseline meets every target, the targets are feasible: one solve
//! minimises the total move cost with the targets as hard rows. Otherwise a first solve
//! minimises the total excess; if it is zero the hard solve follows, else a second solve
//! minimises the cost with the excess at most the first solve's. Each solve starts from
//! the previous answer (the first from the better greedy assignment of both
//! [`GreedyOrder`]s on (excess, cost), which is also the fallback). The time limit covers
//! all solves; when HiGHS stops at it, its incumbent is used; when it has none, or its
//! plan is worse than the greedy one on (excess, cost), the greedy plan is returned with
//! `fell_back`. `optimal` is true only if every solve was proven optimal (relative gap
//! 1e-6).
//! HiGHS presolve is off: on the skewed cluster it halved the solve times.

use super::instance::Instance;
use super::{
    greedy, validate_moves, BalanceError, BalanceOptions, GreedyOrder, Method, Plan, Usage,
};
use crate::model::{NodeId, Problem};
use good_lp::solvers::highs::highs;
use good_lp::{
    constraint, variable, Expression, ProblemVariables, ResolutionError, Solution, SolutionStatus,
    SolverModel, Variable, WithInitialSolution,
};
use std::collections::BTreeMap;
use std::time::Instant;

/// Excess below this counts as zero.
const EXCESS_TOL: f64 = 1e-7;

/// Which program a solve runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Targets as hard rows; minimise cost.
    Hard,
    /// Minimise total excess.
    MinExcess,
    /// Excess at most the value; minimise cost.
    CappedExcess(f64),
}

/// What one solve returned.
enum Solved {
    /// An assignment, and whether HiGHS proved it optimal.
    Found(Vec<NodeId>, bool),
    /// HiGHS proved the program infeasible.
    Infeasible,
    /// No incumbent (time limit) or a solver failure (logged).
    Nothing,
}

/// Runs the MILP (warm-started from the greedy baselines) and validates its plan. At a
/// time limit the result depends on how far HiGHS got, so it can vary between runs.
pub fn plan(
    problem: &Problem,
    usage: &Usage,
    options: &BalanceOptions,
) -> Result<Plan, BalanceError> {
    options.check()?;
    let start = Instant::now();
    let inst = Instance::build(problem, usage, options, true);
    // Warm start: the better of both greedy orders on (excess, cost).
    let mut greedy_assign = greedy::run(&inst, options.greedy_order)?;
    for order in [GreedyOrder::PriorityFirst, GreedyOrder::LargestFirst] {
        let other = greedy::run(&inst, order)?;
        let (e0, e1) = (inst.excess(&greedy_assign).0, inst.excess(&other).0);
        if e1 < e0 - EXCESS_TOL
            || (e1 <= e0 + EXCESS_TOL && inst.cost(&other) < inst.cost(&greedy_assign) - 1e-9)
        {
            greedy_assign = other;
        }
    }
    let left = |start: Instant| options.time_limit_seconds - start.elapsed().as_secs_f64();
    let (g_excess, _) = inst.excess(&greedy_assign);
    let hard_possible = inst
        .pods
        .iter()
        .enumerate()
        .all(|(i, p)| !inst.to_empty[p.node] || !inst.candidates[i].is_empty());
    let mut found: Option<(Vec<NodeId>, bool)> = None;
    if g_excess <= EXCESS_TOL {
        if let Solved::Found(a, opt) = solve(&inst, Phase::Hard, left(start), &greedy_assign) {
            found = Some((a, opt));
        }
    } else if let Solved::Found(a1, opt1) =
        solve(&inst, Phase::MinExcess, left(start) / 2.0, &greedy_assign)
    {
        let (v, _) = inst.excess(&a1);
        let phase = if v <= EXCESS_TOL && hard_possible {
            Phase::Hard
        } else {
            Phase::CappedExcess(v + EXCESS_TOL)
        };
        found = match solve(&inst, phase, left(start), &a1) {
            Solved::Found(a2, opt2) => Some((a2, opt1 && opt2)),
            Solved::Infeasible | Solved::Nothing => Some((a1, false)),
        };
    }
    let seconds = || start.elapsed().as_secs_f64();
    let better = |a: &[NodeId]| {
        let (e, _) = inst.excess(a);
        e < g_excess - EXCESS_TOL
            || (e <= g_excess + EXCESS_TOL && inst.cost(a) <= inst.cost(&greedy_assign) + 1e-9)
    };
    let mut plan = match found {
        Some((a, optimal)) if better(&a) => {
            let mut p = inst.plan(&a, Method::Milp, seconds());
            p.optimal = optimal;
            match validate_moves(problem, &p.moves) {
                Ok(()) => Some(p),
                Err(e) => {
                    tracing::error!("MILP plan rejected by the validator (a bug): {e}");
                    None
                }
            }
        }
        _ => None,
    };
    if plan.is_none() {
        let mut p = inst.plan(&greedy_assign, Method::Greedy, seconds());
        p.fell_back = true;
        validate_moves(problem, &p.moves)?;
        plan = Some(p);
    }
    Ok(plan.expect("set above"))
}

/// The variables of one program.
struct Vars {
    /// Per pod: (target, variable).
    y: Vec<Vec<(NodeId, Variable)>>,
}

impl Vars {
    /// Expression "pod i moves" (`Σ_t y[i][t]`).
    fn moved(&self, i: usize) -> Expression {
        self.y[i].iter().map(|&(_, v)| v).sum()
    }
}

fn solve(inst: &Instance, phase: Phase, seconds: f64, start: &[NodeId]) -> Solved {
    if seconds < 0.01 {
        return Solved::Nothing;
    }
    let mut pv = ProblemVariables::new();
    let vars = Vars {
        y: inst
            .candidates
            .iter()
            .map(|c| {
                c.iter()
                    .map(|&t| (t, pv.add(variable().binary())))
                    .collect()
            })
            .collect(),
    };
    if vars.y.iter().all(Vec::is_empty) {
        // Nothing may move (HiGHS rejects a start for a model without columns): the
        // current placement is the only plan, hence optimal.
        let stay = inst.current_assignment();
        let (excess, _) = inst.excess(&stay);
        return match phase {
            Phase::Hard if excess > EXCESS_TOL => Solved::Infeasible,
            _ => Solved::Found(stay, true),
        };
    }
    let n_nodes = inst.cap_cpu.len();
    let slack_phase = phase != Phase::Hard;
    // Per node: pods there now that may move, and (pod, variable) arriving.
    let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); n_nodes];
    let mut incoming: Vec<Vec<(usize, Variable)>> = vec![Vec::new(); n_nodes];
    for (i, ys) in vars.y.iter().enumerate() {
        if !ys.is_empty() {
            outgoing[inst.pods[i].node].push(i);
        }
        for &(t, v) in ys {
            incoming[t].push((i, v));
        }
    }
    let usage = inst.node_usage(&inst.current_assignment());
    let mut cost = Expression::from(0.0);
    for (i, p) in inst.pods.iter().enumerate() {
        cost += p.weight * vars.moved(i);
    }
    let mut excess = Expression::from(0.0);
    let mut rows = Vec::new();
    let mut slacks: Vec<(Variable, f64)> = Vec::new();
    let start_usage = inst.node_usage(start);
    for n in (0..n_nodes).map(NodeId::from_index) {
        if incoming[n].is_empty() && outgoing[n].is_empty() {
            continue;
        }
        let mut threshold = |used: u64,
                             lim: u64,
                             cap: u64,
                             start_used: u64,
                             amount: &dyn Fn(usize) -> u64,
                             pv: &mut ProblemVariables| {
            if cap == 0 || (used <= lim && incoming[n].is_empty()) {
                return;
            }
            let c = cap as f64;
            let mut e = Expression::from(used as f64 / c);
            for &i in &outgoing[n] {
                e -= (amount(i) as f64 / c) * vars.moved(i);
            }
            for &(i, v) in &incoming[n] {
                e += (amount(i) as f64 / c) * v;
            }
            if slack_phase {
                let s = pv.add(variable().min(0.0));
                slacks.push((s, (start_used.saturating_sub(lim)) as f64 / c));
                excess += s;
                rows.push(constraint!(e - s <= lim as f64 / c));
            } else {
                rows.push(constraint!(e <= lim as f64 / c));
            }
        };
        let cpu = |i: usize| inst.pods[i].cpu;
        let mem = |i: usize| inst.pods[i].mem;
        let (u_cpu, u_mem) = usage[n];
        threshold(
            u_cpu,
            inst.limit_cpu[n],
            inst.cap_cpu[n],
            start_usage[n].0,
            &cpu,
            &mut pv,
        );
        if inst.memory {
            threshold(
                u_mem,
                inst.limit_mem[n],
                inst.cap_mem[n],
                start_usage[n].1,
                &mem,
                &mut pv,
            );
        }
        if !incoming[n].is_empty() {
            request_rows(inst, n, &outgoing[n], &incoming[n], &vars, &mut rows);
        }
    }
    for (i, p) in inst.pods.iter().enumerate() {
        if vars.y[i].len() > 1 {
            rows.push(constraint!(vars.moved(i) <= 1.0));
        }
        if inst.to_empty[p.node] {
            if slack_phase {
                excess += inst.empty_excess(i) * (1.0 - vars.moved(i));
            } else {
                rows.push(constraint!(vars.moved(i) == 1.0));
            }
        }
    }
    anti_affinity_rows(inst, &vars, &mut rows);
    let objective = match phase {
        Phase::Hard | Phase::CappedExcess(_) => cost,
        Phase::MinExcess => excess.clone(),
    };
    if let Phase::CappedExcess(v) = phase {
        rows.push(constraint!(excess <= v));
    }
    let mut init: Vec<(Variable, f64)> = slacks;
    for (i, ys) in vars.y.iter().enumerate() {
        for &(t, v) in ys {
            init.push((v, if start[i] == t { 1.0 } else { 0.0 }));
        }
    }
    let mut model = pv
        .minimise(objective)
        .using(highs)
        .set_time_limit(seconds)
        .set_option("output_flag", false)
        .set_option("log_to_console", false)
        .set_option("mip_rel_gap", 1e-6)
        .set_option("mip_abs_gap", 1e-7)
        .set_option("presolve", "off")
        .with_initial_solution(init);
    for r in rows {
        model.add_constraint(r);
    }
    // good_lp unwraps some HiGHS errors (e.g. a rejected start); a panic there must not
    // take the plan down: the greedy fallback covers it.
    let solved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.solve()));
    let Ok(solved) = solved else {
        tracing::warn!(
            ?phase,
            "HiGHS panicked inside good_lp; using the greedy plan"
        );
        return Solved::Nothing;
    };
    match solved {
        Ok(sol) => {
            let optimal = !matches!(sol.status(), SolutionStatus::TimeLimit);
            let mut assign = inst.current_assignment();
            for (i, ys) in vars.y.iter().enumerate() {
                for &(t, v) in ys {
                    if sol.value(v) > 0.5 {
                        assign[i] = t;
                    }
                }
            }
            Solved::Found(assign, optimal)
        }
        Err(ResolutionError::Infeasible) => Solved::Infeasible,
        Err(e) => {
            tracing::info!(?phase, "HiGHS returned no plan: {e}");
            Solved::Nothing
        }
    }
}

/// One resource's request row on one node: allocatable, requested now, and each pod's
/// request.
struct ResourceRow {
    cap: u64,
    now: u64,
    items: Vec<(usize, u64)>,
}

/// Request rows of node `n`: every resource some arriving pod requests.
fn request_rows(
    inst: &Instance,
    n: NodeId,
    outgoing: &[usize],
    incoming: &[(usize, Variable)],
    vars: &Vars,
    rows: &mut Vec<good_lp::Constraint>,
) {
    let cluster = &inst.problem.cluster;
    let req = |i: usize| {
        let mut r = cluster
            .pod(inst.pods[i].id)
            .expect("bound")
            .0
            .requests
            .clone();
        r.pods = 1;
        r
    };
    let alloc = &cluster[n].allocatable;
    let used = cluster.used(n);
    let mut amounts: BTreeMap<String, ResourceRow> = BTreeMap::new();
    let mut add = |name: &str, i: usize, v: u64, cap: u64, now: u64| {
        amounts
            .entry(name.to_string())
            .or_insert(ResourceRow {
                cap,
                now,
                items: Vec::new(),
            })
            .items
            .push((i, v));
    };
    let all: Vec<usize> = outgoing
        .iter()
        .copied()
        .chain(incoming.iter().map(|&(i, _)| i))
        .collect();
    let needed =
        |f: &dyn Fn(&crate::model::Resources) -> u64| incoming.iter().any(|&(i, _)| f(&req(i)) > 0);
    type Getter = fn(&crate::model::Resources) -> u64;
    let basic: [(&str, Getter); 4] = [
        ("cpu", |r| r.cpu_milli),
        ("memory", |r| r.memory_bytes),
        ("ephemeral-storage", |r| r.ephemeral_storage_bytes),
        ("pods", |r| r.pods),
    ];
    for (name, get) in basic {
        if needed(&get) {
            for &i in &all {
                add(name, i, get(&req(i)), get(alloc), get(used));
            }
        }
    }
    let ext: std::collections::BTreeSet<String> = incoming
        .iter()
        .flat_map(|&(i, _)| req(i).extended.into_keys())
        .collect();
    for k in ext {
        let cap = alloc.extended.get(&k).copied().unwrap_or(0);
        let now = used.extended.get(&k).copied().unwrap_or(0);
        for &i in &all {
            add(
                &k,
                i,
                req(i).extended.get(&k).copied().unwrap_or(0),
                cap,
                now,
            );
        }
    }
    for ResourceRow { cap, now, items } in amounts.into_values() {
        let c = cap.max(1) as f64;
        let mut e = Expression::from(now as f64 / c);
        for (i, v) in items {
            if v == 0 {
                continue;
            }
            if inst.pods[i].node == n {
                e -= (v as f64 / c) * vars.moved(i);
            } else if let Some(&(_, var)) = vars.y[i].iter().find(|(t, _)| *t == n) {
                e += (v as f64 / c) * var;
            }
        }
        rows.push(constraint!(e <= cap as f64 / c));
    }
}

/// "Pod i is in domain d" for a term's domain map.
fn presence(
    inst: &Instance,
    vars: &Vars,
    domain: &[Option<usize>],
    i: usize,
    d: usize,
) -> Expression {
    let here = domain[inst.pods[i].node] == Some(d);
    let mut e = Expression::from(if here { 1.0 } else { 0.0 });
    for &(t, v) in &vars.y[i] {
        let there = domain[t] == Some(d);
        if here && !there {
            e -= v;
        } else if !here && there {
            e += v;
        }
    }
    e
}

fn can_be_in(inst: &Instance, vars: &Vars, domain: &[Option<usize>], i: usize, d: usize) -> bool {
    domain[inst.pods[i].node] == Some(d) || vars.y[i].iter().any(|&(t, _)| domain[t] == Some(d))
}

fn anti_affinity_rows(inst: &Instance, vars: &Vars, rows: &mut Vec<good_lp::Constraint>) {
    for term in &inst.anti {
        for d in 0..term.domains {
            if term.violated[d] || !can_be_in(inst, vars, &term.domain, term.owner, d) {
                continue;
            }
            let qs: Vec<usize> = term
                .matched
                .iter()
                .copied()
                .filter(|&q| can_be_in(inst, vars, &term.domain, q, d))
                .collect();
            if qs.is_empty() {
                continue;
            }
            let m = qs.len() as f64;
            let mut e = m * presence(inst, vars, &term.domain, term.owner, d);
            for q in qs {
                e += presence(inst, vars, &term.domain, q, d);
            }
            rows.push(constraint!(e <= m));
        }
    }
}
