//! The openb loader on the real trace files (skipped when the data folder is absent).

use plimsoll::datasets::data_dir;
use plimsoll::datasets::openb::{self, OpenbKind, GPU_PRODUCT_LABEL, OPENB_MAX_PODS};
use plimsoll::model::{GpuAmount, MILLI_PER_GPU};
use std::path::PathBuf;

fn openb_dir() -> Option<PathBuf> {
    let d = data_dir().map(|d| d.join("openb")).filter(|d| d.is_dir());
    if d.is_none() {
        eprintln!("note: openb data folder not found (set PLIMSOLL_DATA); skipping");
    }
    d
}

#[test]
fn all_nodes_match_the_published_totals() {
    let Some(dir) = openb_dir() else { return };
    let nodes = openb::load_nodes(dir.join("openb_node_list_all_node.csv")).unwrap();
    assert_eq!(nodes.len(), 1523);
    let gpus: u32 = nodes.iter().map(|n| n.gpu_count()).sum();
    assert_eq!(gpus, 6212);
    let cores: u64 = nodes.iter().map(|n| n.allocatable.cpu_milli).sum::<u64>() / 1000;
    assert_eq!(cores, 125_514);
    for n in &nodes {
        assert_eq!(n.allocatable, n.capacity);
        assert_eq!(n.allocatable.pods, OPENB_MAX_PODS);
        assert_eq!(n.allocatable.memory_bytes % (1 << 20), 0);
        match &n.gpus {
            Some(g) => assert_eq!(n.labels.get(GPU_PRODUCT_LABEL), Some(&g.model)),
            None => assert!(!n.labels.contains_key(GPU_PRODUCT_LABEL)),
        }
    }
    let gpu_nodes = openb::load_nodes(dir.join("openb_node_list_gpu_node.csv")).unwrap();
    assert_eq!(gpu_nodes.len(), 1213);
    assert!(gpu_nodes.iter().all(|n| n.gpu_count() > 0));
    assert_eq!(gpu_nodes.iter().map(|n| n.gpu_count()).sum::<u32>(), 6212);
}

#[test]
fn default_pod_list_loads_with_times() {
    let Some(dir) = openb_dir() else { return };
    let recs = openb::load_pod_records(dir.join("openb_pod_list_default.csv")).unwrap();
    assert_eq!(recs.len(), 8152);
    assert!(recs
        .iter()
        .all(|r| r.creation_time.is_some() && r.deletion_time.is_some()));
    assert!(recs.iter().all(|r| r.qos.is_some() && r.phase.is_some()));
    assert!(recs.iter().all(|r| r.pod.requests.pods == 1));
    let first = &recs[0];
    assert_eq!(first.pod.name, "openb-pod-0000");
    assert_eq!(first.pod.requests.cpu_milli, 12000);
    assert_eq!(first.pod.requests.memory_bytes, 16384 << 20);
    assert_eq!(first.pod.gpu.amount, GpuAmount::Whole(1));
    assert_eq!(recs[1].pod.gpu.amount, GpuAmount::Shared(460));
    // Total GPU demand of the default list is about 98% of the cluster's 6,212 GPUs.
    let demand: u64 = recs.iter().map(|r| r.pod.gpu.amount.total_milli()).sum();
    let ratio = demand as f64 / (6212.0 * f64::from(MILLI_PER_GPU));
    assert!((0.95..1.0).contains(&ratio), "GPU demand ratio {ratio}");
    // Pending pods that were never scheduled have an empty scheduled_time.
    assert!(recs.iter().any(|r| r.scheduled_time.is_none()));
}

#[test]
fn every_pod_list_loads() {
    let Some(dir) = openb_dir() else { return };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("openb_pod_list_") && n.ends_with(".csv"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "expected the 24 pod lists, found {}",
        files.len()
    );
    let mut with_spec = 0;
    for f in &files {
        assert_eq!(openb::classify_file(f).unwrap(), OpenbKind::Pods);
        let pods = openb::load_pods(f).unwrap_or_else(|e| panic!("{e}"));
        let lines = std::fs::read_to_string(f).unwrap().lines().count();
        assert_eq!(pods.len(), lines - 1, "{}", f.display());
        with_spec += pods.iter().filter(|p| !p.gpu.models.is_empty()).count();
    }
    assert!(with_spec > 0, "gpuspec lists carry model constraints");
    assert_eq!(
        openb::classify_file(&dir.join("openb_node_list_all_node.csv")).unwrap(),
        OpenbKind::Nodes
    );
}

/// The reader entry points (used by the fuzz targets) read what the path functions read,
/// and name the source they are given in errors and the report.
#[test]
fn readers_match_the_path_loaders() {
    use plimsoll::datasets::Strictness;
    let nodes_csv =
        "sn,cpu_milli,memory_mib,gpu,model\nn1,96000,786432,8,V100M32\nn2,32000,131072,0,\n";
    let pods_csv =
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np1,12000,16384,1,1000\np2,8000,30517,1,460\n";
    let dir = std::env::temp_dir().join(format!("plimsoll-openb-readers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (np, pp) = (dir.join("nodes.csv"), dir.join("pods.csv"));
    std::fs::write(&np, nodes_csv).unwrap();
    std::fs::write(&pp, pods_csv).unwrap();

    let from_reader =
        openb::load_nodes_from_reader(nodes_csv.as_bytes(), "inline.csv", Strictness::Strict)
            .unwrap();
    assert_eq!(from_reader.records, openb::load_nodes(&np).unwrap());
    assert_eq!(from_reader.report.kept, 2);
    let pods =
        openb::load_pod_records_from_reader(pods_csv.as_bytes(), "inline.csv", Strictness::Strict)
            .unwrap();
    assert_eq!(pods.records, openb::load_pod_records(&pp).unwrap());

    let bad = "sn,cpu_milli,memory_mib,gpu,model\nn1,x,1,0,\n";
    let e = openb::load_nodes_from_reader(bad.as_bytes(), "inline.csv", Strictness::Strict)
        .unwrap_err()
        .to_string();
    assert!(e.contains("inline.csv") && e.contains("cpu_milli"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
