//! Load prediction hot paths on seeded synthetic series (a daily wave, noise and
//! spikes, 5-minute steps): a k-NN query (sweeping the number of stored points), an SVR
//! prediction, feature extraction, and training the k-NN and the SVR on one month of
//! data of 10 workloads (86,400 samples; the SVR trains on its default 1,000-sample cap).
//!
//! Run briefly with `cargo bench --bench predict -- --warm-up-time 1 --measurement-time 3`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use plimsoll::predict::features::features;
use plimsoll::predict::knn::{KnnModel, KnnParams};
use plimsoll::predict::svm::{SvrModel, SvrParams};
use plimsoll::predict::{FeatureVec, Series, TrainingData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

const HORIZON: usize = 12;

fn synthetic(seed: u64, days: usize) -> Series {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let phase: f64 = rng.gen_range(0.0..6.0);
    let level: f64 = rng.gen_range(0.02..0.4);
    let values = (0..days * 288)
        .map(|i| {
            let wave = 0.1 * ((i as f64 / 288.0) * std::f64::consts::TAU + phase).sin();
            let spike = if rng.gen_bool(0.01) {
                rng.gen_range(0.0..0.5)
            } else {
                0.0
            };
            (level + wave + rng.gen_range(-0.03..0.03) + spike).max(0.0)
        })
        .collect();
    let cores = [1.0, 2.0, 4.0, 8.0][seed as usize % 4];
    Series::new(format!("vm{seed}"), 1_372_629_600, 300, values, cores).expect("valid")
}

fn month() -> (Vec<Series>, TrainingData) {
    let series: Vec<Series> = (0..10).map(|s| synthetic(s, 30)).collect();
    let data = TrainingData::build(&series, HORIZON);
    (series, data)
}

fn queries(n: usize) -> Vec<FeatureVec> {
    let probe = synthetic(1_000, 3);
    (0..n)
        .map(|i| features(&probe, 300 + (i * 7) % (probe.len() - 301), HORIZON))
        .collect()
}

fn bench_knn_query(c: &mut Criterion) {
    let (_, data) = month();
    let qs = queries(256);
    let mut g = c.benchmark_group("knn_query");
    g.throughput(Throughput::Elements(1));
    for points in [5_000usize, 50_000] {
        for k in [10usize, 50] {
            let params = KnnParams::new(k).unwrap().with_max_train(points).unwrap();
            let model = KnnModel::train(&data, params).unwrap();
            let mut i = 0;
            g.bench_with_input(BenchmarkId::new(format!("k{k}"), points), &model, |b, m| {
                b.iter(|| {
                    i = (i + 1) % qs.len();
                    black_box(m.predict_features(&qs[i]))
                })
            });
        }
    }
    g.finish();
}

fn bench_svr_predict(c: &mut Criterion) {
    let (_, data) = month();
    let qs = queries(256);
    let mut g = c.benchmark_group("svr_predict");
    g.throughput(Throughput::Elements(1));
    for cap in [1_000usize, 2_000] {
        let params = SvrParams::new(1.0, 0.02, 0.05)
            .unwrap()
            .with_max_train(cap)
            .unwrap();
        let model = SvrModel::train(&data, params).unwrap();
        eprintln!("svr cap {cap}: {} support vectors", model.support_vectors());
        let mut i = 0;
        g.bench_with_input(BenchmarkId::from_parameter(cap), &model, |b, m| {
            b.iter(|| {
                i = (i + 1) % qs.len();
                black_box(m.predict_features(&qs[i]))
            })
        });
    }
    g.finish();
}

fn bench_features(c: &mut Criterion) {
    let probe = synthetic(7, 3);
    let mut g = c.benchmark_group("features");
    g.throughput(Throughput::Elements(1));
    let mut t = 300;
    g.bench_function("one_vector", |b| {
        b.iter(|| {
            t = if t + 1 >= probe.len() { 300 } else { t + 1 };
            black_box(features(&probe, t, HORIZON))
        })
    });
    g.finish();
}

fn bench_training(c: &mut Criterion) {
    let (series, data) = month();
    let mut g = c.benchmark_group("train_one_month");
    g.sample_size(10);
    g.bench_function("features_10_series", |b| {
        b.iter(|| black_box(TrainingData::build(&series, HORIZON).len()))
    });
    g.bench_function("knn_50k", |b| {
        b.iter(|| {
            black_box(
                KnnModel::train(&data, KnnParams::new(50).unwrap())
                    .unwrap()
                    .len(),
            )
        })
    });
    let svr = SvrParams::new(1.0, 0.02, 0.05).unwrap();
    g.bench_function("svr_1000", |b| {
        b.iter(|| black_box(SvrModel::train(&data, svr).unwrap().support_vectors()))
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_knn_query,
    bench_svr_predict,
    bench_features,
    bench_training
);
criterion_main!(benches);
