//! SVG plots of simulation runs (plotters): GPU, CPU and memory allocation and GPU
//! fragmentation over simulated time, one line per policy.

use super::{Sample, SimError};
use plotters::prelude::*;
use std::path::Path;

/// At most this many points per line (evenly strided); more add nothing to a picture.
const MAX_POINTS: usize = 4000;

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One panel: title and the value plotted.
type Panel = (&'static str, fn(&Sample) -> f64);

const PANELS: [Panel; 4] = [
    ("GPU allocation", |s| s.gpu_alloc),
    ("GPU fragmentation ratio", |s| s.gpu_frag_ratio),
    ("CPU allocation", |s| s.cpu_alloc),
    ("Memory allocation", |s| s.mem_alloc),
];

/// Writes a 2×2 SVG of allocation and fragmentation curves to `path`, one line per run
/// (`(policy name, samples)`); the x axis is simulated hours.
pub fn write_svg(path: &Path, runs: &[(&str, &[Sample])]) -> Result<(), SimError> {
    let err = |e: &dyn std::fmt::Display| SimError::Plot(format!("{}: {e}", path.display()));
    let root = SVGBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let end_h = runs
        .iter()
        .filter_map(|(_, s)| s.last())
        .map(|s| s.time as f64 / 3600.0)
        .fold(0.0f64, f64::max)
        .max(1e-3);
    for ((title, value), area) in PANELS.iter().zip(root.split_evenly((2, 2))) {
        let mut chart = ChartBuilder::on(&area)
            .caption(*title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0.0..end_h, 0.0..1.0)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("simulated hours")
            .draw()
            .map_err(|e| err(&e))?;
        for (i, (name, samples)) in runs.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let stride = samples.len().div_ceil(MAX_POINTS).max(1);
            let points = samples
                .iter()
                .step_by(stride)
                .map(|s| (s.time as f64 / 3600.0, value(s).clamp(0.0, 1.0)));
            chart
                .draw_series(LineSeries::new(points, &color))
                .map_err(|e| err(&e))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
