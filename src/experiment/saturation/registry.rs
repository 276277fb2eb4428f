//! Saturation policies by name.
//!
//! - `random`, `dot-product`, `gpu-clustering`, `gpu-packing`, `best-fit`, `fgd`: the
//!   paper's baselines as its simulator codes them ([`super::paper`]; `fgd` is the
//!   library's FGD with the paper's conventions, [`super::fgd`]).
//! - `engine:KIND` for every engine kind (`engine:best-fit`, `engine:fgd`, …): the
//!   engine's own policies ([`super::engine`]); the kinds that are not paper baselines
//!   (`kube-default`, `most-allocated`, `least-allocated`, `first-fit`) also answer to
//!   their bare names.
//! - `cbf`: Plimsoll's CPU-backed fragmentation ([`super::cbf`]), its best online policy
//!   (the library's `cbf` with the paper's typical pods; `engine:cbf` is the library's
//!   `cbf` with its own workload convention).
//! - `lookahead:W` / `lookahead:all`: a batch policy that sees the next `W` pods
//!   ([`super::lookahead`], the library's look-ahead); not online, so in no group.
//! - `paper`: the six baselines; `all`: the six baselines, `cbf` and every engine kind.

use super::cbf::Cbf;
use super::engine::EnginePolicy;
use super::fgd::PaperFgd;
use super::lookahead::Lookahead;
use super::paper::{Baseline, PaperPolicy};
use super::{SaturationError, SaturationPolicy};
use crate::place::online::OnlineKind;

/// The paper's six baselines, in the paper's order.
pub const PAPER: [&str; 6] = [
    "random",
    "dot-product",
    "gpu-clustering",
    "gpu-packing",
    "best-fit",
    "fgd",
];

/// The online policies of the group `all` (`lookahead:W` is accepted too but kept out:
/// it sees future pods).
pub fn names() -> Vec<String> {
    let mut v: Vec<String> = PAPER.iter().map(|s| s.to_string()).collect();
    v.push("plimsoll".into());
    v.push("cbf".into());
    v.extend(
        OnlineKind::ALL
            .iter()
            .map(|k| format!("engine:{}", k.name())),
    );
    v
}

/// The policy called `name`.
pub fn by_name(name: &str) -> Result<Box<dyn SaturationPolicy>, SaturationError> {
    let paper = |b| Ok(Box::new(PaperPolicy(b)) as Box<dyn SaturationPolicy>);
    match name {
        "random" => return paper(Baseline::Random),
        "dot-product" => return paper(Baseline::DotProduct),
        "gpu-clustering" => return paper(Baseline::GpuClustering),
        "gpu-packing" => return paper(Baseline::GpuPacking),
        "best-fit" => return paper(Baseline::BestFit),
        "fgd" => return Ok(Box::new(PaperFgd)),
        "cbf" => return Ok(Box::new(Cbf::default())),
        "plimsoll" => return Ok(Box::new(Cbf::recommended())),
        _ => {}
    }
    if let Some(spec) = name.strip_prefix("cbf:") {
        return Ok(Box::new(Cbf {
            params: super::cbf::CbfParams::parse(spec)?,
            alias: None,
        }));
    }
    if let Some(spec) = name.strip_prefix("lookahead:") {
        return Ok(Box::new(Lookahead::parse(spec)?));
    }
    match name
        .strip_prefix("engine:")
        .unwrap_or(name)
        .parse::<OnlineKind>()
    {
        Ok(k) => Ok(Box::new(EnginePolicy(k))),
        Err(_) => Err(SaturationError::Input(format!(
            "unknown policy {name:?}; known: {}, cbf:PARAMS, lookahead:W, lookahead:all, paper, all",
            names().join(", ")
        ))),
    }
}

/// Parses a comma-separated list (`paper` and `all` expand), keeping order, no repeats.
pub fn parse_list(list: &str) -> Result<Vec<Box<dyn SaturationPolicy>>, SaturationError> {
    let mut out: Vec<String> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let expanded: Vec<String> = match item {
            "paper" => PAPER.iter().map(|s| s.to_string()).collect(),
            "all" => names(),
            _ => vec![item.to_string()],
        };
        for e in expanded {
            if !out.contains(&e) {
                out.push(e);
            }
        }
    }
    if out.is_empty() {
        return Err(SaturationError::Input("no policy given".into()));
    }
    out.iter().map(|n| by_name(n)).collect()
}
