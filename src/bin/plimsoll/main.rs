//! `plimsoll`: place Kubernetes pods on nodes from manifests, or run the built-in demo.
//!
//! Exit codes: 0 success (pods left unplaced are a normal outcome, listed with their
//! reasons); 1 a policy returned a placement the validator rejects, or a policy failed
//! (a bug: the violations are printed); 2 bad input or bad usage (the error names the
//! file, document or option).

mod agent;
mod balance;
mod bench;
mod control;
mod demo;
mod experiment;
mod extender;
mod image;
mod loadgen;
mod options;
mod output;
mod place;
mod predict;
mod server;
mod simulate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Pod placement as an optimisation problem: greedy kube-scheduler-style policies and a
/// MILP (HiGHS), every result checked by an independent validator.
#[derive(Debug, Parser)]
#[command(name = "plimsoll", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success (unplaced pods are listed, not an error); \
1 a result failed validation or a policy failed; 2 bad input or usage.\n\
Logs go to stderr: -v info, -vv debug, -vvv trace, or set RUST_LOG."
)]
struct Cli {
    /// More log output on stderr (repeat for more); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Place the pending pods of Kubernetes manifests (YAML/JSON) or openb CSV files.
    Place(place::PlaceArgs),
    /// Run every policy on a seeded synthetic GPU cluster and compare them side by side.
    Demo(demo::DemoArgs),
    /// Reproduce a published experiment (`saturation`: the FGD paper's openb run).
    Experiment(experiment::ExperimentArgs),
    /// Replay a trace (openb, Alibaba 2017) over simulated time under several policies.
    Simulate(simulate::SimulateArgs),
    /// Plan the fewest pod migrations that bring every node under a usage threshold.
    Balance(balance::BalanceArgs),
    /// Load prediction: evaluate peak-usage predictors on usage traces.
    Predict(predict::PredictArgs),
    /// Serve the kube-scheduler extender verbs (filter, prioritize, bind, preempt) over HTTP.
    Extender(extender::ExtenderArgs),
    /// Run a named, versioned suite of placement problems against every policy.
    Bench(bench::BenchArgs),
    /// Run the reference orchestrator's API server (HTTPS; writes DATA_DIR/admin.kubeconfig).
    Server(server::ServerArgs),
    /// Run the orchestrator's scheduling loop against an API server (kubeconfig).
    Scheduler(control::StandaloneSchedulerArgs),
    /// Run the orchestrator's controllers against an API server (kubeconfig).
    Controllers(control::StandaloneControllersArgs),
    /// Run the node agent: register a Node and run the pods bound to it in containers.
    Agent(agent::AgentArgs),
    /// Manage the node agent's image store (import OCI / docker save archives).
    Image(image::ImageArgs),
    /// Send HTTP GETs at a fixed rate (open loop) and report latencies and failures.
    Loadgen(loadgen::LoadgenArgs),
}

/// How a command ended when it did not fail with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything valid.
    Ok,
    /// A policy failed or produced an invalid placement (already reported on stderr).
    Invalid,
}

/// Runs a policy, turning a panic inside it into an error (a policy bug must not take
/// the other results down with it). The panic message itself goes to stderr as usual.
pub fn place_guarded(
    policy: &dyn plimsoll::place::Placer,
    problem: &plimsoll::model::Problem,
) -> Result<plimsoll::place::Outcome, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| policy.place(problem))) {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("policy {} panicked (a bug)", policy.name())),
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        // HiGHS reports hitting its time limit as a warning through `log`; the time
        // limit is an option, and the result says whether the solve was optimal.
        0 => "warn,highs=error",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => EnvFilter::try_new(s).unwrap_or_else(|_| EnvFilter::new(default)),
        _ => EnvFilter::new(default),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Place(args) => place::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Experiment(args) => experiment::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Balance(args) => balance::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Extender(args) => extender::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Server(args) => server::run(&args),
        Command::Scheduler(args) => control::run_scheduler(&args),
        Command::Controllers(args) => control::run_controllers(&args),
        Command::Agent(args) => agent::run(&args),
        Command::Image(args) => image::run(&args),
        Command::Loadgen(args) => loadgen::run(&args),
    };
    match result {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Invalid) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
