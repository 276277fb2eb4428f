//! Output formats and the metrics both subcommands print.

use clap::ValueEnum;
use plimsoll::model::Cluster;

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned, human-readable columns.
    Table,
    /// One JSON object.
    Json,
    /// The same structure as JSON, in YAML.
    Yaml,
}

/// Renders rows under headers with columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// The input files, comma-separated, for messages about the input as a whole.
pub fn file_list<P: AsRef<std::path::Path>>(files: &[P]) -> String {
    files
        .iter()
        .map(|f| f.as_ref().display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Formats an optional number with `digits` decimals, or `-`.
pub fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

/// Nodes hosting at least one pod (bound before or newly placed) in `cluster`.
pub fn nodes_with_pods(cluster: &Cluster) -> usize {
    cluster
        .node_ids()
        .filter(|&n| !cluster.pods_on(n).is_empty())
        .count()
}

/// Requested CPU / allocatable CPU over all nodes, in percent.
pub fn cpu_allocation_pct(cluster: &Cluster) -> f64 {
    let mut total = 0u64;
    let mut used = 0u64;
    for (i, n) in cluster.nodes() {
        total += n.allocatable.cpu_milli;
        used += cluster.used(i).cpu_milli;
    }
    if total == 0 {
        0.0
    } else {
        100.0 * used as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns() {
        let t = table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    BB\nxyz  1\n");
    }
}
