//! Results of a saturation experiment: the JSON document, a text table and the SVG plot.

use super::curve::{mean_curve, LAST_BUCKET};
use super::RunResult;
use serde::Serialize;

/// One seed's curve.
#[derive(Debug, Clone, Serialize)]
pub struct SeedCurve {
    /// The seed.
    pub seed: u64,
    /// Allocated GPU % per arrived % 0..=130.
    pub curve: Vec<f64>,
}

/// One policy over all seeds.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyResult {
    /// The policy.
    pub policy: String,
    /// Mean over seeds of the per-seed curves (rounded to 0.01).
    pub curve: Vec<f64>,
    /// Per-seed curves, ascending seed.
    pub per_seed: Vec<SeedCurve>,
    /// Placement time summed over seeds (the only field that varies between identical
    /// runs; `None` when timing is left out).
    pub seconds: Option<f64>,
}

/// The experiment's JSON document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The nodes file.
    pub nodes: String,
    /// The pods file.
    pub pods: String,
    /// The tune ratio.
    pub tune: f64,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// One entry per policy, in the order asked.
    pub results: Vec<PolicyResult>,
    /// Upper bounds per seed when asked for (`--bound`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounds: Option<Bounds>,
    /// The `--compare A,B` summary when asked for; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<Comparison>,
}

/// The per-seed upper bounds and their means.
#[derive(Debug, Clone, Serialize)]
pub struct Bounds {
    /// `(arrived %, mean over seeds of` [`super::bound::Bound::percent`]`)`.
    pub mean: Vec<(usize, f64)>,
    /// Per seed, ascending.
    pub per_seed: Vec<super::bound::SeedBound>,
}

impl Report {
    /// Groups run results (any order) by policy, in `policies` order, seeds ascending.
    pub fn new(
        nodes: String,
        pods: String,
        tune: f64,
        seeds: &[u64],
        policies: &[String],
        runs: &[RunResult],
        timing: bool,
    ) -> Report {
        let mut seeds_sorted = seeds.to_vec();
        seeds_sorted.sort_unstable();
        let results = policies
            .iter()
            .map(|p| {
                let mut mine: Vec<&RunResult> = runs.iter().filter(|r| &r.policy == p).collect();
                mine.sort_by_key(|r| r.seed);
                let curves: Vec<Vec<f64>> = mine.iter().map(|r| r.curve.clone()).collect();
                PolicyResult {
                    policy: p.clone(),
                    curve: mean_curve(&curves),
                    per_seed: mine
                        .iter()
                        .map(|r| SeedCurve {
                            seed: r.seed,
                            curve: r.curve.clone(),
                        })
                        .collect(),
                    seconds: timing.then(|| mine.iter().map(|r| r.seconds).sum()),
                }
            })
            .collect();
        Report {
            nodes,
            pods,
            tune,
            seeds: seeds_sorted,
            results,
            bounds: None,
            compare: None,
        }
    }

    /// Attaches per-seed upper bounds (see [`super::bound`]).
    pub fn with_bounds(mut self, bounds: Option<Vec<super::bound::SeedBound>>) -> Report {
        self.bounds = bounds.filter(|b| !b.is_empty()).map(|per_seed| {
            let n = per_seed.len() as f64;
            let mean = per_seed[0]
                .at
                .iter()
                .enumerate()
                .map(|(i, &(p, _))| {
                    let sum: f64 = per_seed.iter().map(|s| s.at[i].1.percent()).sum();
                    (p, (sum / n * 100.0).round() / 100.0)
                })
                .collect();
            Bounds { mean, per_seed }
        });
        self
    }

    /// A text table: per policy the mean allocated % at arrived 80/90/100/110/120/130,
    /// the per-seed spread at 130 and the time.
    pub fn table(&self) -> String {
        let cols = [80usize, 90, 100, 110, 120, LAST_BUCKET];
        let mut s = format!("{:<24}", "policy");
        for c in cols {
            s += &format!(" {:>7}", format!("@{c}%"));
        }
        s += &format!(" {:>13} {:>9}\n", "min-max@130", "seconds");
        for r in &self.results {
            s += &format!("{:<24}", r.policy);
            for c in cols {
                s += &format!(" {:>7.2}", r.curve[c]);
            }
            let at: Vec<f64> = r.per_seed.iter().map(|c| c.curve[LAST_BUCKET]).collect();
            let lo = at.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = at.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            s += &format!(" {:>13}", format!("{lo:.2}-{hi:.2}"));
            match r.seconds {
                Some(t) => s += &format!(" {t:>9.2}\n"),
                None => s += &format!(" {:>9}\n", "-"),
            }
        }
        if let Some(b) = &self.bounds {
            s += &format!("{:<24}", "upper bound (offline)");
            for c in cols {
                match b.mean.iter().find(|(p, _)| *p == c) {
                    Some((_, v)) => s += &format!(" {v:>7.2}"),
                    None => s += &format!(" {:>7}", "-"),
                }
            }
            s += "\n";
        }
        s
    }

    /// Draws every policy's mean curve as the paper's figures do: unallocated GPU %
    /// (100 − allocated) against arrived GPU demand %, into an SVG file. Left: the whole
    /// run (0–130%); right: a zoom on 80–130% where the policies part.
    pub fn plot(&self, path: &std::path::Path) -> Result<(), String> {
        use plotters::prelude::*;
        let root = SVGBackend::new(path, (1300, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let title = format!(
            "Saturation: {} (tune {}, {} seeds, mean)",
            std::path::Path::new(&self.pods)
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default(),
            self.tune,
            self.seeds.len()
        );
        let root = root
            .titled(&title, ("sans-serif", 20))
            .map_err(|e| e.to_string())?;
        let (left, right) = root.split_horizontally(560);
        let zoom_from = 80usize;
        let zoom_top = self
            .results
            .iter()
            .flat_map(|r| r.curve[zoom_from..].iter().map(|y| 100.0 - y))
            .fold(0.0f64, f64::max);
        let zoom_top = (zoom_top + 2.0).min(100.0);
        let panels = [
            (left, 0usize, 100.0, false),
            (right, zoom_from, zoom_top, true),
        ];
        for (area, x0, ytop, legend) in panels {
            let mut chart = ChartBuilder::on(&area)
                .margin(15)
                .x_label_area_size(45)
                .y_label_area_size(55)
                .build_cartesian_2d(x0 as f64..LAST_BUCKET as f64, 0f64..ytop)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("Arrived workloads (% of cluster GPU capacity)")
                .y_desc("Unallocated GPU (%)")
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, r) in self.results.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                let series = chart
                    .draw_series(LineSeries::new(
                        r.curve
                            .iter()
                            .enumerate()
                            .skip(x0)
                            .map(|(x, y)| (x as f64, 100.0 - y)),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?;
                if legend {
                    series
                        .label(format!(
                            "{} ({:.2}% alloc @130)",
                            r.policy, r.curve[LAST_BUCKET]
                        ))
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                        });
                }
            }
            if legend {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())
    }
}

/// A against B over one run's curves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The pod list (file name).
    pub list: String,
    /// Policy A.
    pub a: String,
    /// Policy B.
    pub b: String,
    /// The arrived level (%) where `A − B` is lowest (the first such level on ties).
    pub worst_at: usize,
    /// `A − B` there, percentage points (negative: A is below B).
    pub worst: f64,
    /// Mean of `A − B` over the compared levels (10..=130), percentage points.
    pub mean: f64,
    /// Levels where A is strictly below B.
    pub levels_below: usize,
    /// A and B at 100% arrived.
    pub at_100: (f64, f64),
    /// A and B at 130% arrived.
    pub at_130: (f64, f64),
}
