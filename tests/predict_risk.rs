//! Load prediction at a fixed risk (issue 17): the calibrated offset hits its
//! under-prediction rate, the k-NN's quantile prediction is monotone in the risk and
//! reads no data after `t`, a model that cannot be trained is reported and the others
//! still evaluated (library and CLI), the JSON carries `under_rate` and `slack` per
//! risk, and the series filters select what they say.

use plimsoll::predict::eval::{
    calibrate_offset, evaluate, reserve_scores, select_series, train_peak, EvalConfig,
};
use plimsoll::predict::features::features;
use plimsoll::predict::knn::{KnnModel, KnnParams};
use plimsoll::predict::model::{train, ModelOptions};
use plimsoll::predict::svm::{SvcParams, SvrParams};
use plimsoll::predict::{PredictError, Series, TrainingData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

const HORIZON: usize = 12;

/// A seeded series: a daily wave around `level`, noise, and occasional spikes.
fn synthetic(name: &str, seed: u64, days: usize, level: f64) -> Series {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let phase: f64 = rng.gen_range(0.0..6.0);
    let values = (0..days * 288)
        .map(|i| {
            let wave = 0.5 * level * ((i as f64 / 288.0) * std::f64::consts::TAU + phase).sin();
            let spike = if rng.gen_bool(0.02) {
                rng.gen_range(0.0..level)
            } else {
                0.0
            };
            (level + wave + rng.gen_range(-0.1..0.1) * level + spike).max(0.0)
        })
        .collect();
    Series::new(name, 1_372_629_600, 300, values, 4.0).unwrap()
}

fn options(k: usize) -> ModelOptions {
    ModelOptions {
        knn: KnnParams::new(k).unwrap(),
        svr: SvrParams::new(1.0, 0.02, 0.05)
            .unwrap()
            .with_max_train(300)
            .unwrap(),
    }
}

#[test]
fn calibrated_offset_hits_its_rate_on_fresh_samples() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Heteroscedastic residuals: actual = prediction + noise whose scale varies.
    let mut draw = |n: usize| -> Vec<(f64, f64)> {
        (0..n)
            .map(|_| {
                let p: f64 = rng.gen_range(0.0..1.0);
                let scale = 0.02 + 0.1 * p;
                let noise: f64 = rng.gen_range(-1.0f64..1.0).powi(3) * scale;
                (p, (p + noise).max(0.0))
            })
            .collect()
    };
    let cal = draw(20_000);
    let test = draw(50_000);
    for target in [0.2, 0.05, 0.01] {
        let c = calibrate_offset(&cal, target);
        let (cal_rate, _) = reserve_scores(&cal, c);
        assert!(cal_rate <= target, "calibration rate {cal_rate} > {target}");
        assert!(
            cal_rate > target - 2.0 / cal.len() as f64,
            "offset {c} not minimal: calibration rate {cal_rate}"
        );
        let (rate, slack) = reserve_scores(&test, c);
        assert!(
            (rate - target).abs() < 0.25 * target,
            "target {target}: realised {rate}"
        );
        assert!(slack.is_finite());
    }
    // Lower risk, more slack.
    let (_, s5) = reserve_scores(&test, calibrate_offset(&cal, 0.05));
    let (_, s1) = reserve_scores(&test, calibrate_offset(&cal, 0.01));
    assert!(s1 > s5, "{s1} <= {s5}");
    // A signed offset: over-predictions are pulled down.
    let high: Vec<(f64, f64)> = (0..100).map(|i| (1.0, i as f64 / 200.0)).collect();
    assert!(calibrate_offset(&high, 0.1) < 0.0);
    assert_eq!(calibrate_offset(&[], 0.1), 0.0);
}

#[test]
fn knn_quantile_is_monotone_in_risk_and_reads_no_future() {
    let series: Vec<Series> = (0..3)
        .map(|k| synthetic(&format!("s{k}"), k, 3, 0.2 + 0.1 * k as f64))
        .collect();
    let data = TrainingData::build(&series, HORIZON);
    let m = KnnModel::train(&data, KnnParams::new(30).unwrap()).unwrap();
    let probe = synthetic("probe", 9, 2, 0.3);
    let levels = [0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0];
    for t in (0..probe.len()).step_by(17) {
        let x = features(&probe, t, HORIZON);
        let (point, q) = m.predict_quantiles(&x, &levels);
        assert_eq!(point, m.predict_features(&x));
        for w in q.windows(2) {
            assert!(w[0] <= w[1], "t={t}: {q:?}");
        }
        // Never below the current usage; the top quantile covers the point prediction.
        assert!(q[0] >= probe.values[t], "t={t}");
        assert!(point <= q[6] + 1e-12, "t={t}");
    }
    let model = train("knn", &data, &options(30)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for t in [0, 5, 100, 300, probe.len() - 2] {
        let mut changed = probe.clone();
        for v in &mut changed.values[t + 1..] {
            *v = rng.gen_range(0.0..3.0);
        }
        assert_eq!(
            model.predict_levels(&probe, t, &levels),
            model.predict_levels(&changed, t, &levels),
            "t={t}"
        );
    }
    // Through the evaluation: less risk, more slack.
    let mut cfg = EvalConfig::new(HORIZON);
    cfg.models = vec!["knn".into()];
    cfg.calibrated = false;
    cfg.options = options(30);
    cfg.risks = vec![0.2, 0.05, 0.01];
    let r = evaluate(&series, &cfg).unwrap();
    let risk = &r.models[0].risk;
    assert_eq!(risk.len(), 3);
    assert!(
        risk[0].slack < risk[1].slack && risk[1].slack < risk[2].slack,
        "{risk:?}"
    );
}

#[test]
fn evaluation_calibrates_every_model_near_its_target() {
    // Stationary synthetic series: the calibration slice and the test part are alike,
    // so the realised rates must land near the targets.
    let series: Vec<Series> = (0..6)
        .map(|k| synthetic(&format!("s{k}"), 100 + k, 12, 0.1 + 0.1 * k as f64))
        .collect();
    let mut cfg = EvalConfig::new(HORIZON);
    cfg.models = vec![
        "last-value".into(),
        "moving-max".into(),
        "n-sigma".into(),
        "knn".into(),
        "svr".into(),
    ];
    cfg.options = options(50);
    cfg.risks = vec![0.1, 0.05];
    let r = evaluate(&series, &cfg).unwrap();
    assert!(r.calibration_steps > 1000, "{}", r.calibration_steps);
    for m in r.models.iter().filter(|m| !m.name.ends_with("+margin")) {
        assert_eq!(m.risk.len(), 2, "{}", m.name);
        for k in &m.risk {
            assert!(k.calibration_under_rate <= k.target, "{} {k:?}", m.name);
            assert!(
                (k.under_rate - k.target).abs() < 0.5 * k.target,
                "{}: {k:?}",
                m.name
            );
            assert!(k.slack.is_finite() && k.slack_at_target.is_finite());
        }
    }
    assert_eq!(r.risk_comparison.len(), 2);
    assert!(r.risk_comparison.iter().all(|c| c.target > 0.0));
    assert!(matches!(
        evaluate(
            &series,
            &EvalConfig {
                risks: vec![0.0],
                ..cfg.clone()
            }
        ),
        Err(PredictError::InvalidParam { name: "risk", .. })
    ));
}

#[test]
fn untrainable_models_are_reported_and_the_others_evaluated() {
    let series: Vec<Series> = (0..2)
        .map(|k| synthetic(&format!("s{k}"), k, 2, 0.2))
        .collect();
    let mut cfg = EvalConfig::new(HORIZON);
    cfg.models = vec!["last-value".into(), "knn".into(), "n-sigma".into()];
    // More neighbours than training samples: the k-NN cannot be trained.
    cfg.options = ModelOptions {
        knn: KnnParams::new(1000)
            .unwrap()
            .with_max_train(50_000)
            .unwrap(),
        ..options(5)
    };
    // The usage never reaches 95%: the classifier has no positive sample.
    cfg.classifier = Some(SvcParams::new(0.95, 1.0, 0.05).unwrap());
    let r = evaluate(&series, &cfg).unwrap();
    let names: Vec<&str> = r.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["last-value", "n-sigma"]);
    assert_eq!(r.not_trained.len(), 1);
    assert_eq!(r.not_trained[0].name, "knn");
    assert!(
        r.not_trained[0].reason.contains("at least k = 1000"),
        "{:?}",
        r.not_trained
    );
    let c = r.classifier.unwrap();
    let why = c.not_trained.unwrap();
    assert!(why.contains("both sides of 0.95"), "{why}");
    assert_eq!(c.scores.len(), 1);
    assert_eq!(c.scores[0].name, "above-now");
    // Nothing evaluable at all is still an error, naming every reason.
    cfg.models = vec!["knn".into()];
    let e = evaluate(&series, &cfg).unwrap_err().to_string();
    assert!(
        e.contains("nothing could be evaluated") && e.contains("knn:") && e.contains("classifier:"),
        "{e}"
    );
    // An unknown name stays an error.
    cfg.models = vec!["oracle".into()];
    assert!(matches!(
        evaluate(&series, &cfg),
        Err(PredictError::UnknownModel(_))
    ));
}

#[test]
fn series_filters_select_by_name_range_and_training_peak() {
    let all: Vec<Series> = ["1", "2", "10", "x"]
        .iter()
        .enumerate()
        .map(|(k, n)| synthetic(n, k as u64, 1, 0.1 * (k + 1) as f64))
        .collect();
    let names = |v: Vec<Series>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
    assert_eq!(
        names(select_series(all.clone(), "1-2, x").unwrap()),
        ["1", "2", "x"]
    );
    assert_eq!(names(select_series(all.clone(), "10").unwrap()), ["10"]);
    for bad in ["3-9", "y", "5-1", ""] {
        assert!(
            matches!(
                select_series(all.clone(), bad),
                Err(PredictError::InvalidParam { name: "series", .. })
            ),
            "{bad:?}"
        );
    }
    let mut s = synthetic("p", 1, 1, 0.1);
    s.values.iter_mut().for_each(|v| *v = 0.1);
    let n = s.len();
    s.values[n - 1] = 0.9; // in the test part
    assert_eq!(train_peak(&s, 0.7), 0.1);
    s.values[1] = 0.6; // in the training part
    assert_eq!(train_peak(&s, 0.7), 0.6);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plimsoll-risk-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `series` as Bitbrains VM files `1.csv`, `2.csv`… into `dir`.
fn write_vms(dir: &Path, series: &[Series]) {
    let header = plimsoll::datasets::bitbrains::HEADER.join(";\t");
    for (k, s) in series.iter().enumerate() {
        let mut text = format!("{header}\n");
        for (i, v) in s.values.iter().enumerate() {
            let t = s.start + 300 * i as i64;
            text.push_str(&format!(
                "{t};\t2;\t5000.0;\t{:.3};\t{:.4};\t8000000.0;\t1000000.0;\t0.0;\t0.0;\t0.0;\t0.0\n",
                v * 5000.0,
                v * 100.0
            ));
        }
        std::fs::write(dir.join(format!("{}.csv", k + 1)), text).unwrap();
    }
}

fn plimsoll(dir: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["predict", "eval", "--data"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn cli_reports_risk_columns_and_untrainable_classifier() {
    let dir = temp_dir("cli");
    // Low usage: no training sample reaches the default classifier threshold of 0.8.
    let series: Vec<Series> = (0..3)
        .map(|k| synthetic("vm", 40 + k, 3, 0.1 + 0.05 * k as f64))
        .collect();
    write_vms(&dir, &series);
    let args = [
        "--models",
        "last-value,moving-max,knn",
        "--k",
        "10",
        "--svm-max-train",
        "200",
        "--risk",
        "0.1,0.05",
    ];
    let out = plimsoll(&dir, &[&args[..], &["--output", "json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let why = v["classifier"]["not_trained"].as_str().unwrap();
    assert!(why.contains("both sides of 0.8"), "{why}");
    let models = v["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["last-value", "moving-max", "knn", "knn+margin"]);
    for m in models.iter().filter(|m| m["name"] != "knn+margin") {
        for key in ["under_rate", "slack"] {
            assert!(m[key].as_f64().is_some_and(f64::is_finite), "{key} in {m}");
        }
        let risk = m["risk"].as_array().unwrap();
        let targets: Vec<f64> = risk.iter().map(|r| r["target"].as_f64().unwrap()).collect();
        assert_eq!(targets, [0.1, 0.05]);
        for r in risk {
            for key in ["under_rate", "slack", "margin", "slack_at_target"] {
                assert!(r[key].as_f64().is_some_and(f64::is_finite), "{key} in {r}");
            }
        }
    }
    assert_eq!(v["risk_comparison"].as_array().unwrap().len(), 2);
    // The table names the untrained classifier and prints the risk columns.
    let out = plimsoll(&dir, &args);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("svm: not trained: no training samples"),
        "{text}"
    );
    assert!(
        text.contains("under@10%") && text.contains("slack@5%"),
        "{text}"
    );
    // --max-train-peak keeps only the series below it; none left is an error.
    let out = plimsoll(
        &dir,
        &["--models", "last-value", "--max-train-peak", "0.01"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-train-peak"));
    // Nothing trainable (one series has fewer than 1,000 samples) and no classifier: a
    // failure, not an empty table.
    let out = plimsoll(
        &dir,
        &[
            "--series",
            "1",
            "--models",
            "knn",
            "--k",
            "1000",
            "--no-classifier",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing could be evaluated"));
    std::fs::remove_dir_all(&dir).unwrap();
}
