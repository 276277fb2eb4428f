//! `plimsoll bench`: run a named, versioned suite of placement problems against every
//! policy and print one table (or JSON).

use crate::output::{opt, table};
use crate::Status;
use anyhow::Result;
use clap::{Args, ValueEnum};
use plimsoll::bench::{run_suite, suite::builtin_names, RunOptions, Suite, SuiteReport};

/// Output formats of `plimsoll bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchFormat {
    /// Aligned columns.
    Table,
    /// One JSON object.
    Json,
}

/// Arguments of `plimsoll bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A built-in suite (smoke, standard, large) or a path to a suite file (.yaml).
    #[arg(long, value_name = "NAME|FILE", required_unless_present = "list")]
    pub suite: Option<String>,
    /// List the built-in suites and exit.
    #[arg(long)]
    pub list: bool,
    /// Comma-separated policies to run instead of the suite's.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub policies: Option<Vec<String>>,
    /// Comma-separated cases to run (default: all of the suite's).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub cases: Option<Vec<String>>,
    /// The MILP's time limit in seconds, instead of the suite's.
    #[arg(long = "time-limit", value_name = "SECS")]
    pub time_limit: Option<f64>,
    /// HiGHS threads, instead of the suite's (0: HiGHS decides).
    #[arg(long, value_name = "N")]
    pub threads: Option<u32>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: BenchFormat,
}

/// Runs the subcommand.
pub fn run(args: &BenchArgs) -> Result<Status> {
    if args.list {
        for name in builtin_names() {
            let s = Suite::load(name)?;
            println!(
                "{name} (version {}): {}",
                s.file.version,
                s.file.description.as_deref().unwrap_or("")
            );
        }
        return Ok(Status::Ok);
    }
    let suite = Suite::load(args.suite.as_deref().unwrap_or_default())?;
    let opts = RunOptions {
        policies: args
            .policies
            .as_ref()
            .map(|p| p.iter().map(|s| s.trim().to_string()).collect()),
        cases: args
            .cases
            .as_ref()
            .map(|c| c.iter().map(|s| s.trim().to_string()).collect()),
        time_limit: args.time_limit,
        threads: args.threads,
    };
    let report = run_suite(&suite, &opts)?;
    match args.output {
        BenchFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        BenchFormat::Table => print_table(&report),
    }
    if report.all_valid() {
        return Ok(Status::Ok);
    }
    for r in report
        .cases
        .iter()
        .flat_map(|c| &c.rows)
        .filter(|r| !r.valid)
    {
        eprintln!(
            "error: case {} policy {} is invalid or failed (a bug):",
            r.case, r.policy
        );
        for e in &r.errors {
            eprintln!("  {e}");
        }
    }
    Ok(Status::Invalid)
}

fn print_table(report: &SuiteReport) {
    println!(
        "Suite {} version {} ({}): MILP time limit {} s, {} thread(s), seed {}\n",
        report.suite, report.version, report.source, report.time_limit, report.threads, report.seed
    );
    for c in &report.cases {
        match &c.skipped {
            Some(why) => println!("{}: skipped: {why}", c.name),
            None => println!(
                "{}: {}; {} nodes, {} bound pods, {} pending pods (weight {}), LP bound {} ({:.2} s)",
                c.name,
                c.source,
                c.nodes,
                c.bound_pods,
                c.pending_pods,
                c.total_weight,
                c.lp_bound.map_or_else(
                    || format!("unknown: {}", c.bound_error.as_deref().unwrap_or("-")),
                    |b| b.to_string()
                ),
                c.bound_seconds
            ),
        }
    }
    println!();
    let rows: Vec<Vec<String>> = report
        .cases
        .iter()
        .flat_map(|c| &c.rows)
        .map(|r| {
            if !r.valid {
                let mut v = vec![r.case.clone(), r.policy.clone()];
                v.extend(std::iter::repeat_n("-".to_string(), 7));
                v.push(format!("{:.2}", r.seconds));
                v.push("INVALID".into());
                return v;
            }
            vec![
                r.case.clone(),
                if r.fell_back {
                    format!("{}*", r.policy)
                } else {
                    r.policy.clone()
                },
                r.placed.to_string(),
                r.unplaced.to_string(),
                r.nodes_used.to_string(),
                opt(r.nodes_lb, 0),
                format!("{:.1}", r.gpu_alloc_pct),
                format!("{}", r.weighted_placed),
                opt(r.gap_pct, 2),
                format!("{:.2}", r.seconds),
                "yes".into(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "CASE",
                "POLICY",
                "PLACED",
                "UNPLACED",
                "NODES USED",
                "NODES LB",
                "GPU ALLOC %",
                "WEIGHTED",
                "GAP %",
                "TIME S",
                "VALID",
            ],
            &rows
        )
    );
    println!();
    println!("NODES USED: nodes receiving new pods. NODES LB: no valid placement of at least this row's WEIGHTED uses fewer (LP bound).");
    println!("GPU ALLOC %: allocated / total milli-GPU after placement.");
    println!(
        "WEIGHTED: placed pods weighted by 1 + the rank of their priority (the MILP's first goal)."
    );
    println!(
        "GAP %: (LP bound - WEIGHTED) / LP bound; the LP bound holds for every valid placement."
    );
    println!("milp*: the MILP returned its greedy warm start. VALID: checked by the independent validator.");
}
