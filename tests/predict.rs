//! Load prediction: k-NN against brute force, no feature or prediction reads data after
//! `t`, model save/load round trip, typed errors for bad hyper-parameters and malformed
//! files, and the evaluation on the real Bitbrains data (skipped without it).

use plimsoll::datasets::{data_dir, DatasetError};
use plimsoll::predict::baselines::Baseline;
use plimsoll::predict::eval::{calibrate_margin, evaluate, EvalConfig};
use plimsoll::predict::features::features;
use plimsoll::predict::knn::{KnnModel, KnnParams};
use plimsoll::predict::model::{train, Model, ModelOptions};
use plimsoll::predict::svm::{SvcModel, SvcParams, SvrModel, SvrParams};
use plimsoll::predict::{load_series, PredictError, Predictor, Series, TrainingData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

const HORIZON: usize = 12;

/// A seeded series: a daily wave, noise and occasional spikes, `days` long.
fn synthetic(name: &str, seed: u64, days: usize, capacity: f64) -> Series {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let phase: f64 = rng.gen_range(0.0..6.0);
    let level: f64 = rng.gen_range(0.1..0.5);
    let values = (0..days * 288)
        .map(|i| {
            let wave = 0.15 * ((i as f64 / 288.0) * std::f64::consts::TAU + phase).sin();
            let spike = if rng.gen_bool(0.02) {
                rng.gen_range(0.0..0.4)
            } else {
                0.0
            };
            (level + wave + rng.gen_range(-0.05..0.05) + spike).max(0.0)
        })
        .collect();
    Series::new(name, 1_372_629_600, 300, values, capacity).unwrap()
}

fn small_set() -> Vec<Series> {
    (0..3)
        .map(|k| synthetic(&format!("s{k}"), k, 3, [1.0, 4.0, 16.0][k as usize]))
        .collect()
}

fn small_models() -> Vec<Model> {
    let data = TrainingData::build(&small_set(), HORIZON);
    let opts = ModelOptions {
        knn: KnnParams::new(5).unwrap(),
        svr: SvrParams::new(1.0, 0.02, 0.05)
            .unwrap()
            .with_max_train(300)
            .unwrap(),
    };
    plimsoll::predict::model::MODEL_NAMES
        .iter()
        .map(|n| train(n, &data, &opts).unwrap())
        .collect()
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plimsoll-predict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn knn_neighbours_equal_brute_force() {
    let data = TrainingData::build(&small_set(), HORIZON);
    let model = KnnModel::train(
        &data,
        KnnParams::new(7).unwrap().with_max_train(500).unwrap(),
    )
    .unwrap();
    assert_eq!(model.len(), 500);
    let probe = synthetic("probe", 99, 2, 2.0);
    for t in (0..probe.len()).step_by(37) {
        let x = features(&probe, t, HORIZON);
        let tree = model.neighbours(&x);
        let brute = model.neighbours_brute_force(&x);
        assert_eq!(tree.len(), 7);
        let mut td: Vec<f64> = tree.iter().map(|n| n.1).collect();
        td.sort_by(f64::total_cmp);
        let bd: Vec<f64> = brute.iter().map(|n| n.1).collect();
        for (a, b) in td.iter().zip(&bd) {
            assert!((a - b).abs() < 1e-9, "t={t}: tree {td:?} vs brute {bd:?}");
        }
    }
}

#[test]
fn no_feature_or_prediction_reads_values_after_t() {
    let models = small_models();
    let base = synthetic("leak", 7, 3, 4.0);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for t in [0, 1, 5, 11, 12, 100, 287, 288, 300, 500, base.len() - 2] {
        let mut changed = base.clone();
        for v in &mut changed.values[t + 1..] {
            *v = rng.gen_range(0.0..3.0);
        }
        let mut cut = base.prefix(t + 1);
        cut.values.shrink_to_fit();
        for other in [&changed, &cut] {
            assert_eq!(
                features(&base, t, HORIZON),
                features(other, t, HORIZON),
                "features at t={t}"
            );
            for m in &models {
                assert_eq!(
                    m.predict(&base, t),
                    m.predict(other, t),
                    "{} at t={t}",
                    m.name()
                );
            }
        }
    }
}

#[test]
fn models_round_trip_through_json_with_identical_predictions() {
    let probe = synthetic("probe", 5, 2, 8.0);
    for (i, m) in small_models().into_iter().enumerate() {
        let m = Model {
            margin: 0.01 * i as f64,
            ..m
        };
        let path = temp_path(&format!("model-{i}.json"));
        m.save_json(&path).unwrap();
        let back = Model::load_json(&path).unwrap();
        assert!(back == m, "{} differs after the round trip", m.name());
        for t in (0..probe.len()).step_by(13) {
            assert_eq!(
                back.predict(&probe, t).to_bits(),
                m.predict(&probe, t).to_bits(),
                "{}",
                m.name()
            );
        }
    }
    let bad = temp_path("bad-model.json");
    std::fs::write(&bad, "{\"margin\": 0.0,\n \"kind\": 3}").unwrap();
    match Model::load_json(&bad) {
        Err(PredictError::ModelFile { path, .. }) => assert_eq!(path, bad),
        other => panic!("expected ModelFile, got {other:?}"),
    }
}

fn param_name<T: std::fmt::Debug>(r: Result<T, PredictError>) -> &'static str {
    match r {
        Err(PredictError::InvalidParam { name, .. }) => name,
        other => panic!("expected InvalidParam, got {other:?}"),
    }
}

#[test]
fn bad_hyper_parameters_are_typed_errors() {
    assert_eq!(param_name(KnnParams::new(0)), "k");
    assert_eq!(
        param_name(KnnParams::new(5).unwrap().with_max_train(4)),
        "max_train"
    );
    assert_eq!(param_name(SvrParams::new(0.0, 0.1, 0.1)), "c");
    assert_eq!(param_name(SvrParams::new(1.0, -0.1, 0.1)), "epsilon");
    assert_eq!(param_name(SvrParams::new(1.0, 0.1, f64::NAN)), "gamma");
    assert_eq!(
        param_name(
            SvrParams::new(1.0, 0.1, 0.1)
                .unwrap()
                .with_max_train(1_000_000)
        ),
        "max_train"
    );
    assert_eq!(param_name(SvcParams::new(0.0, 1.0, 0.1)), "threshold");
    assert_eq!(
        param_name(
            Baseline::NSigma {
                window_secs: 3600,
                n: -1.0
            }
            .validate()
        ),
        "n"
    );
    assert_eq!(
        param_name(Baseline::MovingMax { window_secs: 0 }.validate()),
        "window"
    );
    let data = TrainingData::build(&small_set(), HORIZON);
    assert!(matches!(
        train("oracle", &data, &ModelOptions::default()),
        Err(PredictError::UnknownModel(n)) if n == "oracle"
    ));
    assert!(matches!(
        KnnModel::train(&TrainingData::default(), KnnParams::new(3).unwrap()),
        Err(PredictError::NoTrainingData(_))
    ));
    assert!(matches!(
        Series::new("x", 0, 0, vec![0.1], 1.0),
        Err(PredictError::InvalidSeries { .. })
    ));
    assert!(matches!(
        Series::new("x", 0, 300, vec![0.1, f64::NAN], 1.0),
        Err(PredictError::InvalidSeries { .. })
    ));
}

#[test]
fn malformed_series_files_name_file_and_line() {
    let dir = temp_path("vms");
    std::fs::create_dir_all(&dir).unwrap();
    let header = plimsoll::datasets::bitbrains::HEADER.join(";\t");
    let good =
        "1372629804;\t2;\t5851.9;\t87.7;\t1.5;\t8218624.0;\t1034592.8;\t0.0;\t0.0;\t0.0;\t0.0";
    let bad =
        "1372630104;\t2;\t5851.9;\t87.7;\tlots;\t8218624.0;\t1034592.8;\t0.0;\t0.0;\t0.0;\t0.0";
    std::fs::write(dir.join("1.csv"), format!("{header}\n{good}\n{bad}\n")).unwrap();
    match load_series(&dir, 300) {
        Err(PredictError::Dataset(DatasetError::Malformed { path, line, .. })) => {
            assert!(path.ends_with("1.csv"), "{path:?}");
            assert_eq!(line, 3);
        }
        other => panic!("expected a malformed-row error, got {other:?}"),
    }
    let usage = temp_path("machine_usage.csv");
    std::fs::write(&usage, "m_1,0,41,92,,,43,33,5\nm_1,10,abc,92,,,43,33,5\n").unwrap();
    let err = load_series(&usage, 300).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("machine_usage.csv") && msg.contains("line 2"),
        "{msg}"
    );
}

#[test]
fn resampling_averages_duplicates_and_fills_gaps_forward() {
    let s = Series::resample(
        "r",
        &[(600, 0.2), (0, 0.1), (0, 0.3), (1500, 0.4)],
        300,
        2.0,
    )
    .unwrap();
    assert_eq!(s.start, 0);
    assert_eq!(s.values, vec![0.2, 0.2, 0.2, 0.2, 0.2, 0.4]);
}

#[test]
fn calibrated_margin_meets_the_target_under_rate() {
    let pairs: Vec<(f64, f64)> = (0..100).map(|i| (0.5, 0.4 + i as f64 / 500.0)).collect();
    let m = calibrate_margin(&pairs, 0.1);
    let under = pairs.iter().filter(|(p, y)| *y > p + m).count();
    assert!(under <= 10, "{under}");
    assert!(
        pairs.iter().filter(|(p, y)| *y > p + m - 1e-3).count() > 10,
        "margin {m} not minimal"
    );
    assert_eq!(calibrate_margin(&pairs, 1.0), 0.0);
}

#[test]
fn classifier_learns_a_threshold_on_synthetic_series() {
    let data = TrainingData::build(&small_set(), HORIZON);
    let svc = SvcModel::train(
        &data,
        SvcParams::new(0.5, 1.0, 0.05)
            .unwrap()
            .with_max_train(400)
            .unwrap(),
    )
    .unwrap();
    let probe = synthetic("probe", 11, 2, 4.0);
    let (mut right, mut n) = (0, 0);
    for t in (300..probe.len() - HORIZON).step_by(5) {
        let actual = plimsoll::predict::peak_after(&probe, t, HORIZON).unwrap() > 0.5;
        right += usize::from(svc.will_exceed(&probe, t) == actual);
        n += 1;
    }
    assert!(right as f64 / n as f64 > 0.7, "{right}/{n}");
}

#[test]
fn svr_is_deterministic_for_a_seed() {
    let data = TrainingData::build(&small_set(), HORIZON);
    let p = SvrParams::new(1.0, 0.02, 0.05)
        .unwrap()
        .with_max_train(200)
        .unwrap();
    let a = SvrModel::train(&data, p).unwrap();
    let b = SvrModel::train(&data, p).unwrap();
    assert_eq!(a, b);
    assert!(a.support_vectors() > 0);
}

#[test]
fn eval_on_bitbrains_when_present() {
    let Some(dir) = data_dir()
        .map(|d| d.join("bitbrains-rnd/2013-7"))
        .filter(|d| d.is_dir())
    else {
        eprintln!("note: bitbrains data not found; skipping (set PLIMSOLL_DATA)");
        return;
    };
    let series: Vec<Series> = load_series(&dir, 300)
        .unwrap()
        .into_iter()
        .take(6)
        .collect();
    assert!(series.iter().all(|s| s.step == 300 && s.len() > 400));
    let mut cfg = EvalConfig::new(HORIZON);
    cfg.models = vec![
        "last-value".into(),
        "moving-max".into(),
        "n-sigma".into(),
        "knn".into(),
    ];
    cfg.options.knn = KnnParams::new(20).unwrap().with_max_train(5_000).unwrap();
    let r = evaluate(&series, &cfg).unwrap();
    assert_eq!(r.models.len(), 5, "four models and knn+margin");
    for m in &r.models {
        assert!(m.rmse.is_finite() && m.rmse >= m.mae * 0.999, "{m:?}");
        assert!((0.0..=1.0).contains(&m.under_rate), "{m:?}");
    }
    let by = |n: &str| r.models.iter().find(|m| m.name == n).unwrap();
    // The moving maximum is never below the last value, so it under-predicts less often.
    assert!(by("moving-max").under_rate <= by("last-value").under_rate);
    assert!(by("knn+margin").under_rate <= by("knn").under_rate);
}
