//! Comparing two policies of a saturation run over the whole curve (`--compare A,B`):
//! a cluster spends its life below saturation, so a policy should be at least as good as
//! another at *every* arrived level, not only at the end.
//!
//! Over the arrived levels [`FROM`]`..=`[`LAST_BUCKET`] the summary takes the mean
//! curves (over seeds) of A and B and reports the worst point of `A − B` (the most
//! negative difference and where it is), the mean of `A − B` over those levels, how many
//! levels have A below B, and both policies at 100% and 130% arrived.

use super::curve::{round_py, LAST_BUCKET};
use super::report::Report;

/// First arrived level (%) the comparison looks at (below it every policy places every
/// pod, and the curves' first buckets hold a handful of events).
pub const FROM: usize = 10;

pub use super::report::Comparison;

/// Compares two mean curves (allocated % per arrived % 0..=130) over [`FROM`]`..=130`.
/// `None` if a curve is shorter than 131 points.
pub fn compare_curves(list: &str, a: (&str, &[f64]), b: (&str, &[f64])) -> Option<Comparison> {
    let (ca, cb) = (a.1, b.1);
    if ca.len() <= LAST_BUCKET || cb.len() <= LAST_BUCKET {
        return None;
    }
    let mut worst: Option<(usize, f64)> = None;
    let mut sum = 0.0;
    let mut below = 0;
    for x in FROM..=LAST_BUCKET {
        let d = round_py(ca[x] - cb[x], 2);
        sum += ca[x] - cb[x];
        if d < 0.0 {
            below += 1;
        }
        if worst.is_none_or(|(_, w)| d < w) {
            worst = Some((x, d));
        }
    }
    let (worst_at, worst) = worst?;
    let levels = (LAST_BUCKET - FROM + 1) as f64;
    Some(Comparison {
        list: list.to_string(),
        a: a.0.to_string(),
        b: b.0.to_string(),
        worst_at,
        worst,
        mean: round_py(sum / levels, 3),
        levels_below: below,
        at_100: (ca[100], cb[100]),
        at_130: (ca[LAST_BUCKET], cb[LAST_BUCKET]),
    })
}

/// Compares policies `a` and `b` of `report` (both must be among its results).
pub fn compare(report: &Report, a: &str, b: &str) -> Result<Comparison, String> {
    let curve = |name: &str| {
        report
            .results
            .iter()
            .find(|r| r.policy == name)
            .map(|r| r.curve.as_slice())
            .ok_or_else(|| format!("policy {name:?} is not among the run's policies"))
    };
    let list = list_name(&report.pods);
    compare_curves(&list, (a, curve(a)?), (b, curve(b)?))
        .ok_or_else(|| "a curve has fewer than 131 points".to_string())
}

/// The pod list's name: the file name without `openb_pod_list_` and `.csv`.
pub fn list_name(pods: &str) -> String {
    let file = std::path::Path::new(pods)
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_else(|| pods.to_string());
    let file = file.strip_suffix(".csv").unwrap_or(&file);
    file.strip_prefix("openb_pod_list_")
        .unwrap_or(file)
        .to_string()
}

/// The header of [`row`].
pub fn header(a: &str, b: &str) -> String {
    format!(
        "{:<14} {:>9} {:>7} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8}\n",
        "list",
        "worst A-B",
        "at %",
        "mean A-B",
        "below",
        format!("{}@100", short(a)),
        format!("{}@100", short(b)),
        format!("{}@130", short(a)),
        format!("{}@130", short(b)),
    ) + &format!("  (A = {a}, B = {b}; over arrived {FROM}..={LAST_BUCKET}%)\n")
}

fn short(name: &str) -> String {
    name.chars().take(4).collect()
}

/// One line of the summary table (see [`header`]).
pub fn row(c: &Comparison) -> String {
    format!(
        "{:<14} {:>+9.2} {:>7} {:>+9.3} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2}\n",
        c.list,
        c.worst,
        c.worst_at,
        c.mean,
        c.levels_below,
        c.at_100.0,
        c.at_100.1,
        c.at_130.0,
        c.at_130.1
    )
}

/// The summary's last line over several lists: the lowest worst point and mean, and how
/// many lists have A at or above B at every level.
pub fn footer(all: &[Comparison]) -> String {
    if all.is_empty() {
        return String::new();
    }
    let worst = all
        .iter()
        .min_by(|x, y| x.worst.total_cmp(&y.worst))
        .expect("non-empty");
    let mean = all
        .iter()
        .min_by(|x, y| x.mean.total_cmp(&y.mean))
        .expect("non-empty");
    let never_below = all.iter().filter(|c| c.levels_below == 0).count();
    let mean_above = all.iter().filter(|c| c.mean > 0.0).count();
    format!(
        "{} lists: A >= B at every level on {never_below}, mean A-B > 0 on {mean_above}; \
lowest worst point {:+.2} ({} at {}%), lowest mean {:+.3} ({})\n",
        all.len(),
        worst.worst,
        worst.list,
        worst.worst_at,
        mean.mean,
        mean.list
    )
}

/// Draws A, B and the offline bound (when the report has one) as allocated GPU %
/// against arrived %, and `A − B` with its worst point, into an SVG file.
pub fn plot(report: &Report, c: &Comparison, path: &std::path::Path) -> Result<(), String> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let curve = |name: &str| {
        report
            .results
            .iter()
            .find(|r| r.policy == name)
            .map(|r| r.curve.clone())
            .ok_or_else(|| format!("policy {name:?} is not among the run's policies"))
    };
    let (ca, cb) = (curve(&c.a)?, curve(&c.b)?);
    let root = SVGBackend::new(path, (1300, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let title = format!(
        "{}: {} vs {} (tune {}, {} seeds, mean; worst {} − {} = {:+.2} at {}% arrived)",
        c.list,
        c.a,
        c.b,
        report.tune,
        report.seeds.len(),
        c.a,
        c.b,
        c.worst,
        c.worst_at
    );
    let root = root
        .titled(&title, ("sans-serif", 18))
        .map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(650);
    let color_a = RGBColor(200, 30, 30);
    let color_b = RGBColor(30, 80, 200);
    let color_bound = RGBColor(40, 40, 40);
    {
        let mut chart = ChartBuilder::on(&left)
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..LAST_BUCKET as f64, 0f64..101f64)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("Arrived workloads (% of cluster GPU capacity)")
            .y_desc("Allocated GPU (%)")
            .draw()
            .map_err(|e| err(&e))?;
        for (name, cv, color) in [(&c.a, &ca, color_a), (&c.b, &cb, color_b)] {
            chart
                .draw_series(LineSeries::new(
                    cv.iter().enumerate().map(|(x, y)| (x as f64, *y)),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(format!(
                    "{name} ({:.2}% @100, {:.2}% @130)",
                    cv[100], cv[130]
                ))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        if let Some(b) = &report.bounds {
            let pts: Vec<(f64, f64)> = b.mean.iter().map(|&(x, v)| (x as f64, v)).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color_bound.stroke_width(1)))
                .map_err(|e| err(&e))?
                .label("offline upper bound (any policy)")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color_bound.stroke_width(1))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color_bound.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    {
        let diffs: Vec<(f64, f64)> = (FROM..=LAST_BUCKET)
            .map(|x| (x as f64, ca[x] - cb[x]))
            .collect();
        let lo = diffs.iter().map(|d| d.1).fold(0.0f64, f64::min);
        let hi = diffs.iter().map(|d| d.1).fold(0.0f64, f64::max);
        let pad = ((hi - lo) * 0.1).max(0.1);
        let mut chart = ChartBuilder::on(&right)
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(FROM as f64..LAST_BUCKET as f64, (lo - pad)..(hi + pad))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("Arrived workloads (% of cluster GPU capacity)")
            .y_desc(format!("{} − {} (points)", c.a, c.b))
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(
                vec![(FROM as f64, 0.0), (LAST_BUCKET as f64, 0.0)],
                BLACK.stroke_width(1),
            ))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(diffs, color_a.stroke_width(2)))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(std::iter::once(Circle::new(
                (c.worst_at as f64, c.worst),
                5,
                color_b.filled(),
            )))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(v: f64) -> Vec<f64> {
        vec![v; LAST_BUCKET + 1]
    }

    /// A hand-made pair: B is flat at 50; A is 50 except +1 at 20%, −0.5 at 60% and
    /// −2.25 at 5% (before [`FROM`], so ignored) and −0.75 at 130%.
    #[test]
    fn worst_point_mean_and_counts_by_hand() {
        let b = flat(50.0);
        let mut a = flat(50.0);
        a[5] = 47.75;
        a[20] = 51.0;
        a[60] = 49.5;
        a[100] = 50.25;
        a[130] = 49.25;
        let c = compare_curves("x", ("a", &a), ("b", &b)).unwrap();
        assert_eq!((c.worst_at, c.worst), (130, -0.75));
        assert_eq!(c.levels_below, 2);
        // (1 − 0.5 + 0.25 − 0.75) / 121 levels = 0.
        assert_eq!(c.mean, 0.0);
        assert_eq!(c.at_100, (50.25, 50.0));
        assert_eq!(c.at_130, (49.25, 50.0));
        // Swapped: the worst is −1 at 20%, the mean unchanged in size.
        let s = compare_curves("x", ("b", &b), ("a", &a)).unwrap();
        assert_eq!((s.worst_at, s.worst), (20, -1.0));
        assert_eq!(s.levels_below, 2);
    }

    /// Equal curves: worst point 0 at the first level, nothing below.
    #[test]
    fn equal_curves_have_worst_zero_at_first_level() {
        let a: Vec<f64> = (0..=LAST_BUCKET).map(|x| x as f64 * 0.7).collect();
        let c = compare_curves("x", ("a", &a), ("b", &a)).unwrap();
        assert_eq!((c.worst_at, c.worst, c.levels_below), (FROM, 0.0, 0));
        assert_eq!(c.mean, 0.0);
        // The first of equal worst points wins.
        let mut b = a.clone();
        b[40] += 0.3;
        b[90] += 0.3;
        let c = compare_curves("x", ("a", &a), ("b", &b)).unwrap();
        assert_eq!((c.worst_at, c.worst, c.levels_below), (40, -0.3, 2));
        assert!(compare_curves("x", ("a", &a[..100]), ("b", &b)).is_none());
    }

    #[test]
    fn list_names() {
        assert_eq!(
            list_name("/d/openb/openb_pod_list_gpuspec05.csv"),
            "gpuspec05"
        );
        assert_eq!(list_name("mine.csv"), "mine");
    }
}
