//! `plimsoll predict eval`: train every load predictor on the first part of each usage
//! series and score its peak predictions on the rest.

use crate::output::table;
use crate::Status;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use plimsoll::predict::eval::{evaluate, select_series, train_peak, EvalConfig, EvalReport};
use plimsoll::predict::knn::KnnParams;
use plimsoll::predict::load_series;
use plimsoll::predict::model::ModelOptions;
use plimsoll::predict::series::DEFAULT_STEP_SECS;
use plimsoll::predict::svm::{SvcParams, SvrParams};
use std::path::PathBuf;

/// Arguments of `plimsoll predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    #[command(subcommand)]
    pub which: PredictCommand,
}

/// The `predict` subcommands.
#[derive(Debug, Subcommand)]
pub enum PredictCommand {
    /// Time-split evaluation of every predictor (first 70% trains, last 30% tests).
    Eval(EvalArgs),
}

/// What is predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The peak CPU usage (fraction of provisioned) over the horizon.
    Peak,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalFormat {
    /// Aligned columns.
    Table,
    /// `{"models": [...], "classifier": {...}}`.
    Json,
}

/// Arguments of `plimsoll predict eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A folder of Bitbrains VM files, or an Alibaba 2018 machine_usage CSV file.
    #[arg(long, value_name = "DIR|FILE")]
    pub data: PathBuf,
    /// Prediction horizon: a number with s, m, h or d (a multiple of 5 minutes).
    #[arg(long, default_value = "1h")]
    pub horizon: String,
    /// What is predicted.
    #[arg(long, value_enum, default_value = "peak")]
    pub target: Target,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: EvalFormat,
    /// Comma-separated models (default: all).
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Neighbours of the k-NN.
    #[arg(long, default_value_t = 50)]
    pub k: usize,
    /// k-NN training-set cap.
    #[arg(long, default_value_t = 50_000)]
    pub knn_max_train: usize,
    /// SVR regularisation C.
    #[arg(long, default_value_t = 1.0)]
    pub svr_c: f64,
    /// SVR insensitive band (fraction of capacity).
    #[arg(long, default_value_t = 0.02)]
    pub svr_epsilon: f64,
    /// RBF gamma of the SVMs (standardised features).
    #[arg(long, default_value_t = 0.05)]
    pub gamma: f64,
    /// SVM training-set cap (seeded subsample).
    #[arg(long, default_value_t = 1_000)]
    pub svm_max_train: usize,
    /// Subsampling seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Classifier threshold: "the peak will exceed this fraction of capacity".
    #[arg(long, default_value_t = 0.8)]
    pub threshold: f64,
    /// Skip the SVM classifier.
    #[arg(long)]
    pub no_classifier: bool,
    /// Skip the `+margin` calibrated variants.
    #[arg(long)]
    pub no_margin: bool,
    /// Target under-prediction rates (comma-separated, each in (0, 1)): every model is
    /// calibrated on its training part to each, and its realised rate and mean slack on
    /// the test part are reported.
    #[arg(long, value_delimiter = ',', default_value = "0.05,0.01")]
    pub risk: Vec<f64>,
    /// Skip the fixed-risk calibration.
    #[arg(long)]
    pub no_risk: bool,
    /// Costs of the k-NN's candidate cost rules at a fixed risk (comma-separated, each
    /// > 0; see docs/predict.md).
    #[arg(long, value_delimiter = ',', default_value = "0.5,1,2,5")]
    pub knn_costs: Vec<f64>,
    /// Share of each training part the calibration copies are fitted on; the rest is
    /// the calibration slice.
    #[arg(long, default_value_t = 0.75)]
    pub fit_fraction: f64,
    /// Evaluate only these series: comma-separated names and numeric ranges A-B (e.g.
    /// `1-20,33` for Bitbrains files 1 to 20 and 33).
    #[arg(long, value_name = "LIST")]
    pub series: Option<String>,
    /// Evaluate only the series whose training part never exceeds this fraction of
    /// capacity (e.g. 0.5).
    #[arg(long, value_name = "FRACTION")]
    pub max_train_peak: Option<f64>,
}

/// Parses `90s`, `5m`, `1h`, `2d` into seconds.
fn parse_duration(s: &str) -> Result<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .with_context(|| format!("--horizon {s:?}: expected e.g. 1h"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => bail!("--horizon {s:?}: unit must be s, m, h or d"),
    };
    Ok(n * mult)
}

/// Runs `plimsoll predict`.
pub fn run(args: &PredictArgs) -> Result<Status> {
    match &args.which {
        PredictCommand::Eval(a) => eval(a),
    }
}

fn eval(a: &EvalArgs) -> Result<Status> {
    let Target::Peak = a.target;
    let secs = parse_duration(&a.horizon)?;
    if secs <= 0 || secs % DEFAULT_STEP_SECS != 0 {
        bail!(
            "--horizon {}: must be a positive multiple of 5 minutes",
            a.horizon
        );
    }
    let mut series = load_series(&a.data, DEFAULT_STEP_SECS)?;
    let mut cfg = EvalConfig::new((secs / DEFAULT_STEP_SECS) as usize);
    if let Some(spec) = &a.series {
        series = select_series(series, spec)?;
    }
    if let Some(x) = a.max_train_peak {
        if !(x.is_finite() && x >= 0.0) {
            bail!("--max-train-peak {x}: must be a finite fraction >= 0");
        }
        let before = series.len();
        series.retain(|s| train_peak(s, cfg.train_fraction) <= x);
        if series.is_empty() {
            bail!(
                "--max-train-peak {x}: none of the {before} series stays at or below it in its training part"
            );
        }
    }
    cfg.risks = if a.no_risk {
        Vec::new()
    } else {
        a.risk.clone()
    };
    cfg.knn_costs = a.knn_costs.clone();
    cfg.fit_fraction = a.fit_fraction;
    if let Some(m) = &a.models {
        cfg.models = m.clone();
    }
    cfg.calibrated = !a.no_margin;
    cfg.options = ModelOptions {
        knn: KnnParams::new(a.k)?
            .with_max_train(a.knn_max_train)?
            .with_seed(a.seed),
        svr: SvrParams::new(a.svr_c, a.svr_epsilon, a.gamma)?
            .with_max_train(a.svm_max_train)?
            .with_seed(a.seed),
    };
    if !a.no_classifier {
        cfg.classifier =
            Some(SvcParams::new(a.threshold, a.svr_c, a.gamma)?.with_max_train(a.svm_max_train)?);
    }
    let report = evaluate(&series, &cfg)?;
    match a.output {
        EvalFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        EvalFormat::Table => print!("{}", render(&report, &a.data)),
    }
    Ok(Status::Ok)
}

fn pct(x: f64) -> String {
    let s = format!("{:.2}", x * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

fn render(r: &EvalReport, data: &std::path::Path) -> String {
    let mut out = format!(
        "{}: {} series, {} training samples, {} test predictions per model, horizon {} steps\n\n",
        data.display(),
        r.series,
        r.train_samples,
        r.test_steps,
        r.horizon
    );
    let rows: Vec<Vec<String>> = r
        .models
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                format!("{:.4}", m.rmse),
                format!("{:.4}", m.mae),
                format!("{:.3}", m.under_rate),
                format!("{:.4}", m.slack),
                format!("{:.4}", m.over_mean),
                format!("{:.3}", m.margin),
                format!("{:.2}", m.train_seconds),
                format!("{:.1}", m.predict_us),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "model",
            "rmse",
            "mae",
            "under_rate",
            "slack",
            "over_mean",
            "margin",
            "train_s",
            "predict_us",
        ],
        &rows,
    ));
    for n in &r.not_trained {
        out.push_str(&format!("{}: not trained: {}\n", n.name, n.reason));
    }
    for m in &r.models {
        if let Some(why) = &m.not_calibrated {
            out.push_str(&format!("{}: not calibrated: {why}\n", m.name));
        }
    }
    if !r.risk_comparison.is_empty() {
        let targets: Vec<f64> = r.risk_comparison.iter().map(|c| c.target).collect();
        out.push_str(&format!(
            "\nat a fixed risk: each model offset to under-predict at the target rate on the \
             calibration slice (last 25% of the training parts, {} predictions); realised \
             under_rate and mean slack (reserved - actual, fraction of capacity) on the test part\n",
            r.calibration_steps
        ));
        let mut header = vec!["model".to_string()];
        for t in &targets {
            let p = pct(*t);
            header.extend([
                format!("under@{p}"),
                format!("slack@{p}"),
                format!("margin@{p}"),
                format!("exact_slack@{p}"),
                format!("rule@{p}"),
            ]);
        }
        let rows: Vec<Vec<String>> = r
            .models
            .iter()
            .filter(|m| !m.risk.is_empty())
            .map(|m| {
                let mut row = vec![m.name.clone()];
                for k in &m.risk {
                    row.extend([
                        format!("{:.4}", k.under_rate),
                        format!("{:.4}", k.slack),
                        format!("{:+.4}", k.margin),
                        format!("{:.4}", k.slack_at_target),
                        k.rule.clone(),
                    ]);
                }
                row
            })
            .collect();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        out.push_str(&table(&header, &rows));
        out.push_str(
            "(exact_slack: the slack had the offset been fitted on the test part to hit the target exactly; for diagnosis)\n",
        );
        for c in &r.risk_comparison {
            let side = |name: &Option<String>, slack: Option<f64>| match (name, slack) {
                (Some(n), Some(s)) => format!("{n} {s:.4}"),
                _ => "none within 1 point".to_string(),
            };
            out.push_str(&format!(
                "risk {}: realised within 1 point: best baseline {}, best learned {}{}; \
                 at exactly {}: {} vs {}{}\n",
                pct(c.target),
                side(&c.best_baseline, c.baseline_slack),
                side(&c.best_learned, c.learned_slack),
                c.reduction
                    .map(|x| format!(" ({:.1}% less slack)", x * 100.0))
                    .unwrap_or_default(),
                pct(c.target),
                side(&c.exact_baseline, c.exact_baseline_slack),
                side(&c.exact_learned, c.exact_learned_slack),
                c.exact_reduction
                    .map(|x| format!(" ({:.1}% less)", x * 100.0))
                    .unwrap_or_default()
            ));
        }
    }
    if let Some(c) = &r.classifier {
        let trained = match c.not_trained {
            None => format!("SVM trained in {:.2} s", c.train_seconds),
            Some(_) => "SVM not trained".to_string(),
        };
        out.push_str(&format!(
            "\nclassifier: peak over the horizon > {:.0}% of capacity ({} of {} test steps; {trained})\n",
            c.threshold * 100.0,
            c.positives,
            c.steps,
        ));
        let rows: Vec<Vec<String>> = c
            .scores
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    format!("{:.3}", s.precision),
                    format!("{:.3}", s.recall),
                    format!("{:.3}", s.f1),
                ]
            })
            .collect();
        out.push_str(&table(&["rule", "precision", "recall", "f1"], &rows));
        if let Some(why) = &c.not_trained {
            out.push_str(&format!("svm: not trained: {why}\n"));
        }
    }
    out
}
