//! The batch optimiser: every pending pod at once, as a mixed-integer program solved by
//! HiGHS.
//!
//! # Model
//! Identical pending pods form classes (`classes`); the program (`formulate`) has
//! integer "pods of class c on node n" variables for the nodes where one pod of the class
//! passes every filter now, and models exactly: CPU, memory, ephemeral storage, extended
//! resources, the pod count, GPU devices at device level (shares per device, whole
//! devices, devices already partly used), GPU models, node selector and affinity, taints,
//! host ports, required pod anti-affinity (against bound pods by excluding nodes, among
//! pending pods with per-domain constraints, any topology key), and gangs
//! (all-or-nothing).
//!
//! Pods with required pod **affinity** or **topology spread** constraints are not in the
//! program: they form the *greedy tail*, placed after the program's pods by the warm
//! start's online policy with the full kube filters (so every constraint holds, but their
//! placement is greedy, not optimal). A gang with such a member goes to the tail whole.
//!
//! # Goals
//! Lexicographic, by two solves: first maximise the priority-weighted number of placed
//! pods (`1 + rank of the pod's priority`, see [`priority_weights`]) to proven optimality
//! (absolute gap below one weight unit, the goal is integral); then, with that value
//! fixed as a lower bound and the first solution as the start, minimise the second goal:
//! - `pack`: nodes that are empty now and receive pods;
//! - `balance`: the largest utilisation `u` over CPU, memory and GPU of every node (the
//!   current maximum is a floor);
//! - `fragmentation`: milli-GPU left free on partly used devices (devices with some but
//!   not all of their 1000 milli taken) after placement.
//!
//! Two solves rather than one weighted sum: a weight that provably dominates would
//! multiply the first goal by the second goal's range (thousands of milli-GPU), which
//! makes HiGHS's relative gap meaningless for the second goal.
//! [`SolveStats`] reports the second solve (objective, bound and gap in its units, the
//! fragmentation value including the constant part); if the first solve was not proven
//! optimal in time, it reports the first solve's objective and bound instead.
//!
//! # Warm start and fallback
//! Every online policy runs first, within the warm-start share of the time limit (see
//! "Time" below; the ones suited to the objective first, they win ties); the best by (priority weight placed, then the second goal, see `goal`) is the
//! greedy warm start (passed to HiGHS as its initial solution). It is returned instead,
//! with `fell_back: true`, when HiGHS fails or has no incumbent, when the solution does
//! not pass the sequential kube-filter check, or when the final placement (program plus
//! greedy tail) is lexicographically worse than it. So the MILP is never worse than any
//! online policy it ran on (weight, second goal).
//!
//! # Size: the aggregated path (`pack`)
//! When the objective is `pack`, no modelled pod has pod anti-affinity or host ports,
//! and the exact program would have more than `AGGREGATE_MIN_PAIRS` (class, node)
//! columns, identical empty nodes are grouped into types and the `aggregate` program
//! counts pods per (class, type) (openb: 1,523 nodes form 27 types). It is a relaxation
//! of the exact problem, so its bounds are valid: the reported `bound` is the best of its
//! second-solve dual bound and a volume bound, and is claimed (with `objective` = new
//! nodes of the returned placement) only when every modelled pod is placed (or every
//! pod at all); otherwise the stats are in priority weight against the aggregated
//! first-goal bound. Its solution is realised on concrete nodes per type (`realise`:
//! per-pod first-fit decreasing, and a device-first packing — shares grouped onto
//! devices, units packed node by node keeping device and CPU/memory use level — with
//! seeded restarts while time is left, best kept); pods that do not fit, and the greedy
//! tail, are placed by the warm start's policy; gangs stay all-or-nothing; without a
//! greedy tail, a local search then empties nodes whose pods fit on other nodes in use
//! (`large`). The
//! realisation can need more nodes than the aggregated solution, which is what the gap
//! then shows.
//!
//! # Size: the exact path (small instances, `balance`, `fragmentation`)
//! Identical empty nodes are symmetric; of each group the program keeps a prefix sized
//! from the greedy solution's use of the group and a volume bound (see `formulate`).
//! This keeps instances small, but makes the program a restriction: the reported bound is
//! the bound of the restricted program, not of the full one. `balance` and
//! `fragmentation` always take this path (their goals are per node or per device and do
//! not aggregate).
//! Time limit, gap and threads are passed to HiGHS; the second solve gets what the first
//! left of the time limit (measured with the wall clock, as HiGHS does itself).
//!
//! # Size: the restricted path (large clusters)
//! Above [`MilpOptions::restrict_above_pairs`] (pod classes × nodes, default
//! 300,000) a program that the aggregated path cannot model is built on *candidate*
//! nodes per class (`candidates`): the nodes the greedy warm start gave the class, plus
//! the nodes nearest the class's demand in free-resource space (a kiddo k-d tree; the
//! tightest fits first) that pass its filters, within a budget of about 40,000 columns.
//! Filtering every class against every node is itself too slow at 20,000 nodes, so the
//! candidates are found without it. The program is a restriction: its bound is the
//! restricted program's, and the warm start is one of its points, so the answer is never
//! worse than the warm start.
//!
//! # Time
//! Below, "the time limit" is the part before the search (half of it with
//! [`MilpOptions::lns`], all of it without), except that the warm starts may always use
//! a quarter of the whole limit: once it is spent, the online
//! policies not yet run are skipped (at least one runs; if it alone takes the whole
//! limit, its placement is returned with `fell_back`). The "never worse than any online
//! policy" promise then holds for the policies that ran. HiGHS gets two thirds of what is
//! left after keeping back the estimated time of the greedy tail (its share of the
//! pending pods times the fastest warm start's time, tripled, and 10 µs per program
//! column for HiGHS's set-up, which its own clock does not count); if nothing is left,
//! HiGHS is not started and the warm start is returned (`fell_back`).
//!
//! # Anytime: large-neighbourhood search
//! With [`MilpOptions::lns`] (the default) and no plugins, the warm starts and the
//! program above get half the time limit; their answer (never worse than the best warm
//! start) is then improved until the limit by large-neighbourhood search (`lns`): free
//! the pods of a few nodes — nodes where unplaced pods could fit, or lightly loaded
//! nodes in use for `pack` — and the unplaced pods that fit there, solve that
//! sub-problem exactly (the same program, every other pod fixed, HiGHS with a short time
//! limit), and keep the result when the whole placement is lexicographically better and
//! passes the validator. First, up to two *repair* starts get a fifth of the time left
//! each: placements (online policies' or the program's) at most 1 % lighter than the
//! answer but better on the second goal — a policy that packs tightly but left a pod out
//! — searched the same way; one that ends lexicographically better than the answer
//! replaces it. Neighbourhoods adapt their size to how fast they solve; with
//! `threads > 1` that many disjoint ones are solved at once (one HiGHS thread each). A
//! cluster of at most 16 nodes is one neighbourhood, and the search stops once it is
//! solved to optimality. When the search improves the answer, `fell_back` is false and
//! the stats' objective is the improved placement's.
//!
//! # Plugins
//! [`MilpPlacer::with_plugins`] attaches an embedder's hard rules and cost terms
//! ([`crate::place::plugin`]): forbidden (class, node) pairs get no column, the warm
//! starts and the greedy tail run with the hard rules, and each plugin's cost per
//! assigned pod is added to the second goal's coefficients (and to the comparison with
//! the warm start). With plugins the exact path is always taken, without truncation.

mod aggregate;
mod candidates;
mod classes;
mod error;
mod extract;
mod formulate;
mod goal;
mod large;
mod lex;
mod lns;
mod lpbound;
pub(crate) mod program;
mod realise;
pub(crate) mod solve;
mod tail;

pub use classes::priority_weights;
pub use lpbound::{lp_bound, node_lower_bound, LP_TIME_LIMIT_SECONDS};

use super::online::{OnlineKind, OnlinePolicy};
use super::{Outcome, PlaceError, Placer, Plugins, SolveStats};
use crate::model::{Binding, NodeId, Problem};
use crate::place::clock::{Deadline, WallClock};
use error::MilpError;

pub use super::Objective;

/// Settings of the MILP.
#[derive(Debug, Clone, PartialEq)]
pub struct MilpOptions {
    /// Second goal.
    pub objective: Objective,
    /// Time limit for both solves together, seconds (positive, finite).
    pub time_limit_seconds: f64,
    /// Relative gap at which the second solve may stop, in `[0, 1)`.
    pub mip_rel_gap: f64,
    /// HiGHS threads; 0 lets HiGHS decide.
    pub threads: u32,
    /// Seed for HiGHS and the online warm starts.
    pub seed: u64,
    /// Above this many (pod class, node) pairs the exact program keeps only candidate
    /// nodes per class (the greedy's and the nearest in free-resource space, see
    /// "Size: the restricted path" in the module docs); 0 always restricts.
    pub restrict_above_pairs: usize,
    /// Improve the answer by large-neighbourhood search until the time limit (see
    /// "Anytime: large-neighbourhood search" in the module docs; default true). Off, the
    /// whole limit goes to the warm starts and the program, as before.
    pub lns: bool,
}

impl Default for MilpOptions {
    fn default() -> Self {
        MilpOptions {
            objective: Objective::Pack,
            time_limit_seconds: 10.0,
            mip_rel_gap: 0.01,
            threads: 1,
            seed: 42,
            restrict_above_pairs: candidates::LARGE_PAIRS,
            lns: true,
        }
    }
}

/// The batch MILP policy.
#[derive(Debug, Clone)]
pub struct MilpPlacer {
    opts: MilpOptions,
    plugins: Plugins,
}

impl MilpPlacer {
    /// Checks the options.
    pub fn new(opts: MilpOptions) -> Result<Self, PlaceError> {
        if !(opts.time_limit_seconds.is_finite() && opts.time_limit_seconds > 0.0) {
            return Err(PlaceError::InvalidOption {
                name: "time_limit_seconds",
                msg: format!(
                    "must be positive and finite, got {}",
                    opts.time_limit_seconds
                ),
            });
        }
        if !(opts.mip_rel_gap.is_finite() && (0.0..1.0).contains(&opts.mip_rel_gap)) {
            return Err(PlaceError::InvalidOption {
                name: "mip_rel_gap",
                msg: format!("must be in [0, 1), got {}", opts.mip_rel_gap),
            });
        }
        if opts.threads > 1024 {
            return Err(PlaceError::InvalidOption {
                name: "threads",
                msg: format!("at most 1024, got {}", opts.threads),
            });
        }
        Ok(MilpPlacer {
            opts,
            plugins: Plugins::default(),
        })
    }

    /// Attaches plugins (see [`crate::place::plugin`]): pairs a
    /// [`FilterPlugin`](crate::place::plugin::FilterPlugin) rejects or a
    /// [`MilpPlugin`](crate::place::plugin::MilpPlugin) forbids get no variable (and are
    /// skipped by the warm starts and the greedy tail); each MILP plugin's
    /// [`cost`](crate::place::plugin::MilpPlugin::cost) per assigned pod is added to the
    /// second goal, in the program and in the comparison with the warm start. Score
    /// plugins are not used. With plugins the aggregated `pack` path and the truncation
    /// of identical empty nodes are off: the exact program over every eligible node.
    pub fn with_plugins(mut self, plugins: Plugins) -> Self {
        self.plugins = plugins;
        self
    }

    /// The options.
    pub fn options(&self) -> &MilpOptions {
        &self.opts
    }

    /// A placement's (weight, second goal + plugin cost).
    fn score(&self, problem: &Problem, placement: &[Option<Binding>]) -> goal::Score {
        let mut s = goal::Score::of(problem, placement, self.opts.objective);
        s.goal += self.plugins.placement_cost(problem, placement);
        s
    }

    /// The online policies tried as warm start: every online policy, the ones suited to
    /// the objective first (they win ties).
    fn warm_start_kinds(&self) -> Vec<OnlineKind> {
        let first: &[OnlineKind] = match self.opts.objective {
            // First-fit first: the cheapest (it stops at the first feasible node), so on
            // large clusters where the warm-start budget runs out it is the one that ran.
            Objective::Pack => &[
                OnlineKind::FirstFit,
                OnlineKind::BestFit,
                OnlineKind::DotProduct,
                OnlineKind::MostAllocated,
                OnlineKind::GpuPacking,
            ],
            Objective::Balance => &[OnlineKind::LeastAllocated, OnlineKind::KubeDefault],
            Objective::Fragmentation => &[OnlineKind::GpuPacking, OnlineKind::Fgd],
        };
        let mut kinds = first.to_vec();
        kinds.extend(OnlineKind::ALL.iter().filter(|k| !first.contains(k)));
        kinds
    }
}

/// The first goal's value of a placement: the priority weight of the placed pods.
pub fn weighted_placed(problem: &Problem, placement: &[Option<Binding>]) -> f64 {
    priority_weights(&problem.pending)
        .iter()
        .zip(placement)
        .filter(|(_, b)| b.is_some())
        .map(|(w, _)| w)
        .sum()
}

/// The result of the optimisation proper, before comparing with greedy.
struct Optimised {
    placement: Vec<Option<Binding>>,
    stats: SolveStats,
    /// True if `stats` are in the second goal's units (else in priority weight).
    in_goal_units: bool,
}

impl Placer for MilpPlacer {
    fn name(&self) -> &str {
        "milp"
    }

    fn budget(&self) -> Option<std::time::Duration> {
        std::time::Duration::try_from_secs_f64(self.opts.time_limit_seconds).ok()
    }

    /// Places within the options' time limit, on wall time.
    fn place(&self, problem: &Problem) -> Result<Outcome, PlaceError> {
        let deadline = Deadline::after_seconds(WallClock::shared(), self.opts.time_limit_seconds);
        self.place_by(problem, &deadline)
    }

    /// Places by `deadline`: every stage takes its budget from the deadline's clock
    /// (warm starts, the solves, realisation and repair), never from `Instant::now()`.
    fn place_by(&self, problem: &Problem, full: &Deadline) -> Result<Outcome, PlaceError> {
        // The warm starts and the program get the time limit less the search's share.
        let lns_on = self.opts.lns && self.plugins.is_empty();
        let main = if lns_on {
            full.earlier_by(LNS_SHARE * full.budget_seconds())
        } else {
            full.clone()
        };
        let deadline = &main;
        let mut greedy: Option<(OnlineKind, Vec<Option<Binding>>, goal::Score)> = None;
        // Placements other than the answer, for the search's repair phase.
        let mut alternates: Vec<(Vec<Option<Binding>>, goal::Score)> = Vec::new();
        let mut fastest = f64::INFINITY;
        // A share of the whole limit, not of the part before the search: the warm starts
        // are what the answer is never worse than (on a loaded machine, a quarter of half
        // the limit skipped kube-default on constrained-500).
        let budget = WARM_START_SHARE * full.budget_seconds();
        for k in self.warm_start_kinds() {
            if greedy.is_some() && deadline.elapsed_seconds() > budget {
                tracing::debug!(
                    next = k.name(),
                    "warm-start budget spent; the remaining online policies are skipped"
                );
                break;
            }
            let t = deadline.elapsed_seconds();
            let out = OnlinePolicy::new(k, self.opts.seed)
                .with_plugins(self.plugins.hard_only())
                .place(problem)?;
            fastest = fastest.min(deadline.elapsed_seconds() - t);
            let s = self.score(problem, &out.placement);
            if greedy.as_ref().is_none_or(|g| s.better_than(&g.2)) {
                if let Some((_, p, gs)) = greedy.take() {
                    alternates.push((p, gs));
                }
                greedy = Some((k, out.placement, s));
            } else {
                alternates.push((out.placement, s));
            }
        }
        let (kind, greedy, greedy_score) = greedy.expect("at least one warm start");
        tracing::debug!(
            kind = kind.name(),
            weight = greedy_score.weight,
            goal = greedy_score.goal,
            s = deadline.elapsed_seconds(),
            "best greedy warm start"
        );
        let result = if !deadline.passed() {
            self.optimise(problem, kind, &greedy, deadline, fastest)
        } else {
            Err(MilpError::NoTime {
                left: 0.0,
                kept_back: deadline.elapsed_seconds(),
            })
        };
        let fallback_stats = |o: Option<&Optimised>| {
            let mut st = SolveStats {
                fell_back: true,
                objective: Some(greedy_score.goal),
                ..Default::default()
            };
            if let Some(o) = o.filter(|o| o.in_goal_units) {
                if let Some(b) = o.stats.bound {
                    let b = b.min(greedy_score.goal);
                    st.bound = Some(b);
                    st.gap = Some(gap(greedy_score.goal, b));
                }
            }
            st
        };
        let (mut placement, mut stats, goal_units) = match result {
            Ok(o) => {
                let s = self.score(problem, &o.placement);
                if greedy_score.better_than(&s) {
                    tracing::debug!(
                        milp_weight = s.weight,
                        milp_goal = s.goal,
                        "MILP worse than the greedy warm start; falling back"
                    );
                    alternates.push((o.placement.clone(), s));
                    (greedy, fallback_stats(Some(&o)), true)
                } else {
                    (o.placement, o.stats, o.in_goal_units)
                }
            }
            Err(e) => {
                tracing::debug!("MILP failed ({e}); falling back to greedy");
                (greedy, fallback_stats(None), true)
            }
        };
        // The program's answer proven optimal on both goals: nothing left to search.
        let proven = goal_units && stats.gap.is_some_and(|g| g <= 1e-9);
        if lns_on && !proven && full.remaining_seconds() > 0.0 {
            let before = self.score(problem, &placement);
            let mut best = before;
            let mut changed = false;
            // Repair: a placement slightly lighter but better on the second goal (a
            // policy or the program that left a few pods out) gets a share of the time
            // to place them; if it then beats the answer, the search goes on from it.
            let slack = (REPAIR_WEIGHT_SLACK * best.weight).max(1.0);
            alternates.retain(|(_, s)| s.weight >= best.weight - slack && s.goal < best.goal);
            alternates.sort_by(|a, b| a.1.goal.total_cmp(&b.1.goal));
            for (alt, _) in alternates.into_iter().take(REPAIR_STARTS) {
                let by = full.earlier_by((1.0 - REPAIR_SHARE) * full.remaining_seconds());
                let (repaired, _) = lns::improve(
                    problem,
                    self.opts.objective,
                    alt,
                    self.opts.threads,
                    self.opts.seed,
                    &by,
                );
                let s = self.score(problem, &repaired);
                if s.better_than(&best) {
                    tracing::debug!(
                        weight = s.weight,
                        goal = s.goal,
                        "LNS repair beat the answer"
                    );
                    best = s;
                    placement = repaired;
                    changed = true;
                }
            }
            let (improved, report) = lns::improve(
                problem,
                self.opts.objective,
                placement,
                self.opts.threads,
                self.opts.seed,
                full,
            );
            placement = improved;
            if report.improved > 0 || changed {
                let s = self.score(problem, &placement);
                stats.fell_back = false;
                if goal_units && s.weight <= before.weight + 1e-9 {
                    // Same weight: the second goal's bound still holds.
                    stats.objective = Some(s.goal);
                    stats.bound = stats.bound.map(|b| b.min(s.goal));
                } else if goal_units {
                    // More weight: the bound was for the lower weight's placements.
                    stats.objective = Some(s.goal);
                    stats.bound = None;
                } else {
                    stats.objective = Some(s.weight);
                    stats.bound = stats.bound.map(|b| b.max(s.weight));
                }
                stats.gap = match (stats.objective, stats.bound) {
                    (Some(o), Some(b)) => Some(gap(o, b)),
                    _ => None,
                };
            }
        }
        stats.solve_seconds = full.elapsed_seconds();
        Ok(Outcome {
            policy: self.name().to_string(),
            placement,
            stats,
        })
    }
}

impl MilpPlacer {
    fn optimise(
        &self,
        problem: &Problem,
        kind: OnlineKind,
        greedy: &[Option<Binding>],
        deadline: &Deadline,
        greedy_seconds: f64,
    ) -> Result<Optimised, MilpError> {
        let classes = classes::group(&problem.pending);
        let cls = extract::class_of(problem, &classes);
        let greedy_part: Vec<Option<Binding>> = greedy
            .iter()
            .zip(&cls)
            .map(|(b, c)| c.and(b.clone()))
            .collect();
        // Large and not for the aggregated path: candidate nodes per class only.
        let restricted = self.plugins.is_empty()
            && classes.classes.len() * problem.cluster.node_count()
                > self.opts.restrict_above_pairs
            && !self.aggregable(problem, &classes);
        let mut eligible = if restricted {
            let e = candidates::restricted(problem, &classes, &greedy_part, &cls);
            tracing::debug!(
                s = deadline.elapsed_seconds(),
                "candidate nodes per class found"
            );
            e
        } else {
            formulate::eligible_nodes(problem, &classes)
        };
        if self.plugins.has_hard() {
            for (c, ns) in classes.classes.iter().zip(&mut eligible) {
                let pod = &problem.pending[c.rep()];
                ns.retain(|&n| self.plugins.check(pod, n, &problem.cluster).is_ok());
            }
        }
        if !restricted && self.use_aggregate(problem, &classes, &eligible) {
            return self.optimise_aggregated(
                problem,
                &classes,
                &cls,
                &eligible,
                kind,
                &greedy_part,
                deadline,
            );
        }
        let kept = if restricted {
            eligible.iter().flatten().copied().collect()
        } else if self.plugins.is_empty() {
            formulate::truncate(problem, &classes, &eligible, &greedy_part)
        } else {
            eligible.iter().flatten().copied().collect()
        };
        let mut f = formulate::build(problem, &classes, &eligible, &kept, self.opts.objective);
        if !self.plugins.milp.is_empty() {
            for (&(c, n), &col) in &f.x {
                let pod = &problem.pending[classes.classes[c].rep()];
                f.program.cols[col].secondary += self.plugins.cost_of(pod, n, &problem.cluster);
            }
        }
        let warm = extract::warm_start(problem, &classes, &f, &greedy_part);
        tracing::debug!(
            classes = classes.classes.len(),
            tail = classes.greedy_tail.len(),
            kept_nodes = kept.len(),
            cols = f.program.cols.len(),
            rows = f.program.rows.len(),
            warm = warm.is_some(),
            restricted,
            built_s = deadline.elapsed_seconds(),
            "MILP program built"
        );
        // Time kept back for extracting the solution and placing the greedy tail (its
        // share of the fastest warm start's time, tripled: its pods have spread or affinity
        // constraints and cost more than the average pod; plus a margin).
        let tail_share = classes.greedy_tail.len() as f64 / problem.pending.len().max(1) as f64;
        let reserve = 0.1 + 3.0 * greedy_seconds * tail_share;
        let left = || deadline.remaining_seconds() - reserve;
        if warm.is_none() {
            tracing::debug!("greedy warm start is not a point of the program");
        }
        // Passing the program to HiGHS and setting it up takes time its own clock does not
        // count (about 2 s for 200,000 columns): that is kept back too, and with less than
        // that left, the warm start is returned.
        let overhead = f.program.cols.len() as f64 * HIGHS_SECONDS_PER_COLUMN;
        let left = || left() - overhead;
        if !f.program.cols.is_empty() && left() < lex::MIN_SECONDS_FOR_SECOND {
            return Err(MilpError::NoTime {
                left: left(),
                kept_back: reserve + overhead,
            });
        }
        let mut stats = SolveStats::default();
        let mut in_goal_units = false;
        let values = if f.program.cols.is_empty() {
            Vec::new()
        } else {
            let settings = solve::Settings {
                time_limit: 0.0,
                rel_gap: 0.0,
                abs_gap: 1e-6,
                threads: self.opts.threads,
                seed: self.opts.seed,
            };
            let all: f64 = classes
                .classes
                .iter()
                .map(|c| c.weight * c.size() as f64)
                .sum();
            let lex = lex::solve(
                &f.program,
                warm.as_deref(),
                all,
                &settings,
                self.opts.mip_rel_gap,
                || highs_share(left()),
            )?;
            stats.objective = Some(lex.weight);
            stats.bound = Some(lex.weight_bound);
            stats.gap = Some(gap(lex.weight, lex.weight_bound));
            if let Some(second_bound) = lex.second_bound {
                let obj = f.program.secondary_value(&lex.values) + f.secondary_offset;
                let mut bound = second_bound + f.secondary_offset;
                if self.opts.objective == Objective::Pack
                    && lex.weight >= all - 0.5
                    && self.plugins.milp.is_empty()
                {
                    let members = classes
                        .classes
                        .iter()
                        .flat_map(|c| c.members.iter().copied());
                    bound = bound.max(pack_volume_bound(problem, members));
                }
                let bound = if bound.is_finite() {
                    bound.min(obj)
                } else {
                    bound
                };
                stats.objective = Some(obj);
                stats.bound = Some(bound);
                stats.gap = Some(gap(obj, bound));
                in_goal_units = true;
            }
            lex.values
        };
        let mut placement = extract::placement_from(problem, &classes, &f, &values)?;
        let cluster = extract::bind_checked(problem, &placement)?;
        tail::place_greedy(
            problem,
            &classes.greedy_tail,
            kind,
            self.opts.seed,
            &self.plugins,
            cluster,
            &mut placement,
        )?;
        Ok(Optimised {
            placement,
            stats,
            in_goal_units,
        })
    }

    /// True for `pack` when no modelled pod has anti-affinity or host ports and the
    /// exact program would have more than [`AGGREGATE_MIN_PAIRS`] (class, node) columns.
    fn use_aggregate(
        &self,
        problem: &Problem,
        classes: &classes::Classes,
        eligible: &[Vec<NodeId>],
    ) -> bool {
        let pairs: usize = eligible.iter().map(Vec::len).sum();
        pairs > AGGREGATE_MIN_PAIRS && self.aggregable(problem, classes)
    }

    /// True for `pack` without plugins when no modelled pod has anti-affinity or host
    /// ports: the aggregated program can model it.
    fn aggregable(&self, problem: &Problem, classes: &classes::Classes) -> bool {
        self.opts.objective == Objective::Pack
            && self.plugins.is_empty()
            && classes.classes.iter().all(|c| {
                let p = &problem.pending[c.rep()];
                p.pod_anti_affinity.is_empty() && p.host_ports.is_empty()
            })
    }
}

/// Seconds per program column that HiGHS spends outside its own clock (taking the
/// program in, setting up): measured 3.6 s used for a 1.6-s limit on 211,146 columns.
const HIGHS_SECONDS_PER_COLUMN: f64 = 1e-5;

/// The share of the time limit the greedy warm starts may use: once it is spent, the
/// online policies not yet run are skipped (at least one always runs).
const WARM_START_SHARE: f64 = 0.25;

/// The share of the time limit kept for the large-neighbourhood search (when on): the
/// warm starts and the program must finish before it starts.
const LNS_SHARE: f64 = 0.5;

/// Repair starts for the search: placements at most this share of the answer's weight
/// lighter (at least one unit) and better on the second goal.
const REPAIR_WEIGHT_SLACK: f64 = 0.01;
/// At most this many repair starts, the best on the second goal first.
const REPAIR_STARTS: usize = 2;
/// Each repair start gets this share of the time left.
const REPAIR_SHARE: f64 = 0.2;

/// Above this many (class, eligible node) pairs, `pack` uses the aggregated program.
const AGGREGATE_MIN_PAIRS: usize = 2000;

/// A lower bound on the nodes that are empty now and must be put in use to hold `pods`
/// (all of them placed): per dimension (CPU, memory, milli-GPU), the demand beyond what
/// the non-empty nodes have free, covered by the largest empty nodes first. Valid for the
/// full problem, not only the truncated program.
fn pack_volume_bound(problem: &Problem, pods: impl Iterator<Item = usize>) -> f64 {
    let c = &problem.cluster;
    let mut demand = [0u64; 3];
    for i in pods {
        let p = &problem.pending[i];
        demand[0] += p.requests.cpu_milli;
        demand[1] += p.requests.memory_bytes;
        demand[2] += p.gpu.amount.total_milli();
    }
    let mut free = [0u64; 3];
    let mut caps: [Vec<u64>; 3] = Default::default();
    for (n, node) in c.nodes() {
        let a = &node.allocatable;
        let gpu = u64::from(node.gpu_count()) * u64::from(crate::model::MILLI_PER_GPU);
        if c.pods_on(n).is_empty() {
            caps[0].push(a.cpu_milli);
            caps[1].push(a.memory_bytes);
            caps[2].push(gpu);
        } else {
            let u = c.used(n);
            free[0] += a.cpu_milli.saturating_sub(u.cpu_milli);
            free[1] += a.memory_bytes.saturating_sub(u.memory_bytes);
            free[2] += c.gpu_free_total(n);
        }
    }
    let mut best = 0usize;
    for d in 0..3 {
        let mut need = demand[d].saturating_sub(free[d]);
        caps[d].sort_unstable_by(|a, b| b.cmp(a));
        let mut k = 0;
        for &cap in &caps[d] {
            if need == 0 {
                break;
            }
            need = need.saturating_sub(cap);
            k += 1;
        }
        best = best.max(k);
    }
    best as f64
}

/// The part of the time left that HiGHS is given. HiGHS 1.16 checks its time limit only
/// between steps of its root-node loop, and one step (cut separation and the heuristics
/// after it) was measured to take 7 s on the demo's 39,000-column program: given 9.7 s
/// it returned after 16.4 s, given 5 s after 4.8 s. Two thirds of the time left keeps
/// the whole solve near the caller's limit on such programs.
fn highs_share(left_seconds: f64) -> f64 {
    left_seconds * 2.0 / 3.0
}

fn gap(objective: f64, bound: f64) -> f64 {
    if !bound.is_finite() {
        return f64::INFINITY;
    }
    (bound - objective).abs() / objective.abs().max(1e-9)
}
