//! Trace loaders on the real files (skipped with a note when the data folder is absent)
//! and on small malformed inputs.

use plimsoll::datasets::alibaba2017::{self, ServerEventKind, TaskStatus, DEFAULT_SCALE};
use plimsoll::datasets::alibaba2018::{self, RACK_LABEL, ZONE_LABEL};
use plimsoll::datasets::common::{
    BAD_VALUE, BLANK_LINE, EMPTY_FIELD, NOT_A_NUMBER, WRONG_COLUMN_COUNT,
};
use plimsoll::datasets::{bitbrains, data_dir, openb, DatasetError, Strictness};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

const STRICT: Strictness = Strictness::Strict;
const LENIENT: Strictness = Strictness::Lenient;

fn data(sub: &str) -> Option<PathBuf> {
    match data_dir() {
        Some(d) if d.join(sub).exists() => Some(d.join(sub)),
        _ => {
            eprintln!("note: {sub} not found (set PLIMSOLL_DATA); skipping");
            None
        }
    }
}

/// A unique temp file with `text`.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plimsoll-datasets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn alibaba2017_real_files() {
    let Some(dir) = data("alibaba-2017") else {
        return;
    };
    let t = Instant::now();
    let ev = alibaba2017::load_server_events(dir.join("server_event.csv"), STRICT).unwrap();
    let tasks = alibaba2017::load_batch_tasks(dir.join("batch_task.csv"), STRICT).unwrap();
    eprintln!("alibaba2017: both files in {:?}", t.elapsed());

    assert_eq!(ev.report.rows, 1352);
    assert_eq!(ev.report.kept, 1352);
    assert_eq!(ev.report.skipped_total(), 0);
    let machines: BTreeSet<u64> = ev.records.iter().map(|e| e.machine_id).collect();
    assert_eq!(machines.len(), 1313);
    let adds = ev.records.iter().filter(|e| e.kind == ServerEventKind::Add);
    assert_eq!(adds.count(), 1313);
    // Every `add` leaves the detail cell empty.
    assert_eq!(ev.report.empty_cells["event_detail"], 1313);

    let nodes = alibaba2017::nodes_at(&ev.records, i64::MAX, DEFAULT_SCALE);
    assert_eq!(nodes.len(), 1313);
    assert!(nodes.iter().all(|n| n.allocatable.cpu_milli == 64_000));
    let cordoned = nodes.iter().filter(|n| n.unschedulable).count();
    assert!(cordoned > 0 && cordoned < 39, "{cordoned}");
    let m = nodes.iter().find(|n| n.name == "m_1148").unwrap();
    let want = (0.6900059534594777 * (256u64 << 30) as f64).round() as u64;
    assert_eq!(m.allocatable.memory_bytes, want);
    // At time 0 only the machines added at 0 exist and none is cordoned yet.
    let at0 = alibaba2017::nodes_at(&ev.records, 0, DEFAULT_SCALE);
    assert!(!at0.is_empty() && at0.iter().all(|n| !n.unschedulable));

    assert_eq!(tasks.report.rows, 80_553);
    assert_eq!(tasks.records.len(), 80_553);
    let waiting = tasks
        .records
        .iter()
        .filter(|t| t.status == TaskStatus::Waiting);
    assert_eq!(waiting.count(), 8847);
    assert_eq!(tasks.report.empty_cells["cpus_per_instance"], 9017);
    assert_eq!(tasks.report.empty_cells["memory_per_instance"], 9017);
    let open = tasks
        .records
        .iter()
        .filter(|t| t.end_time.is_none())
        .count();
    assert_eq!(open, 208);
    let instances: u64 = tasks.records.iter().map(|t| t.instances).sum();
    assert_eq!(instances, 11_909_321);

    let (pods, rep) = alibaba2017::task_pods(&tasks.records, DEFAULT_SCALE, 50_000);
    assert_eq!(pods.len(), 50_000);
    assert_eq!(rep.converted, 50_000);
    assert!(rep.skipped[alibaba2017::OVER_LIMIT] > 0);
    let first = &tasks.records[0]; // 6459,6524,3,4,15740,Terminated,50,0.007956928
    assert_eq!(
        pods[0].pod.name,
        format!("j{}-t{}-0", first.job_id, first.task_id)
    );
    assert_eq!(pods[0].pod.requests.cpu_milli, 500);
    assert_eq!((pods[0].arrival, pods[0].departure), (6459, Some(6524)));
    assert!(pods
        .iter()
        .all(|p| p.departure.is_none_or(|d| d >= p.arrival)));
}

#[test]
fn alibaba2018_real_files() {
    let Some(dir) = data("alibaba-2018") else {
        return;
    };
    let t = Instant::now();
    let meta = alibaba2018::load_machine_meta(dir.join("machine_meta.csv"), STRICT).unwrap();
    let usage =
        alibaba2018::load_machine_usage(dir.join("machine_usage_head100k.csv"), STRICT).unwrap();
    eprintln!("alibaba2018: both files in {:?}", t.elapsed());

    // The shared README says 17,591 rows; the file has 17,592 lines, all data.
    assert_eq!((meta.report.rows, meta.report.kept), (17_592, 17_592));
    assert_eq!(meta.report.empty_cells["failure_domain_2"], 34);
    let nodes = alibaba2018::latest_nodes(&meta.records, alibaba2018::DEFAULT_MEMORY_BYTES_PER_100);
    assert_eq!(nodes.len(), 4034);
    assert_eq!(nodes[0].name, "m_1");
    assert!(nodes.iter().all(|n| n.allocatable.cpu_milli == 96_000));
    assert!(nodes.iter().all(|n| n.labels.contains_key(ZONE_LABEL)));
    let zones: BTreeSet<&str> = nodes
        .iter()
        .map(|n| n.labels[ZONE_LABEL].as_str())
        .collect();
    let racks: BTreeSet<&str> = nodes
        .iter()
        .map(|n| n.labels[RACK_LABEL].as_str())
        .collect();
    assert!(zones.len() <= 21 && racks.len() > zones.len(), "{zones:?}");
    // m_2739's latest status is IMPORT_INSTALLING.
    let m = nodes.iter().find(|n| n.name == "m_2739").unwrap();
    assert!(m.unschedulable);
    // m_1263's latest row has failure_domain_2 = 15, an earlier one is empty.
    let m = nodes.iter().find(|n| n.name == "m_1263").unwrap();
    assert_eq!(m.labels[ZONE_LABEL], "15");

    // The shared README says 100,001 rows; the file has 100,002 lines, all data.
    assert_eq!(usage.report.rows, 100_002);
    assert_eq!(usage.records.len(), 100_002);
    assert_eq!(usage.report.empty_cells["mem_gps"], 78_325);
    assert_eq!(usage.report.empty_cells["mkpi"], 78_325);
    assert!(!usage.report.empty_cells.contains_key("cpu_util_percent"));
    let machines: BTreeSet<&str> = usage
        .records
        .iter()
        .map(|u| u.machine_id.as_str())
        .collect();
    assert_eq!(machines.len(), 16);
    let u = &usage.records[0]; // m_1932,386640,41,92,,,43.04,33.08,5
    assert_eq!(
        (u.time_stamp, u.cpu_util_percent, u.mem_gps),
        (386_640, Some(41.0), None)
    );
}

#[test]
fn bitbrains_real_files() {
    let Some(dir) = data("bitbrains-rnd/2013-7") else {
        return;
    };
    let t = Instant::now();
    let set = bitbrains::load_dir(&dir, STRICT).unwrap();
    eprintln!("bitbrains: 40 files in {:?}", t.elapsed());
    assert_eq!(set.vms.len(), 40);
    let names: Vec<&str> = set.vms.iter().map(|v| v.name.as_str()).collect();
    let want: Vec<String> = (1..=40).map(|i| i.to_string()).collect();
    assert_eq!(names, want);
    let total: usize = set.vms.iter().map(|v| v.len()).sum();
    assert_eq!(total, 330_711 - 40);
    for (vm, rep) in set.vms.iter().zip(&set.reports) {
        // About a month of 5-minute samples, except VM 14 (428 rows) and VM 20 (repeats).
        let want = match vm.name.as_str() {
            "14" => 428..429,
            "20" => 16_553..16_554,
            _ => 8_200..8_300,
        };
        assert!(want.contains(&vm.len()), "{} has {}", vm.name, vm.len());
        assert_eq!(rep.kept, vm.len());
        assert_eq!(rep.skipped_total(), 0);
        for col in [&vm.cpu_usage_mhz, &vm.mem_usage_kb, &vm.net_tx_kbps] {
            assert_eq!(col.len(), vm.len());
        }
        if vm.name == "20" {
            assert_eq!(vm.out_of_order(), 4158);
            let (clean, dropped) = vm.dedup_by_time();
            assert_eq!((clean.len(), dropped), (12_395, 4158));
            assert_eq!(clean.out_of_order(), 0);
            assert_eq!(clean.mem_usage_kb.len(), clean.len());
        } else {
            assert_eq!(vm.out_of_order(), 0, "{}", vm.name);
        }
        // Epoch seconds in July 2013.
        assert!((1_370_000_000..1_380_000_000).contains(&vm.timestamps[0]));
    }
    let vm1 = &set.vms[0]; // 1372629804; 2; 5851.9989; 87.7799835; 1.5; 8218624.0; …
    assert_eq!((vm1.timestamps[0], vm1.cpu_cores[0]), (1_372_629_804, 2));
    assert_eq!(vm1.cpu_provisioned_mhz[0], 5851.9989);
    assert_eq!(vm1.mem_provisioned_kb[0], 8_218_624.0);
}

#[test]
fn openb_every_pod_list_loads() {
    let Some(dir) = data("openb") else { return };
    let t = Instant::now();
    let mut lists: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("openb_pod_list_") && n.ends_with(".csv")
        })
        .collect();
    lists.sort();
    assert_eq!(lists.len(), 24);
    for p in &lists {
        let loaded = openb::load_pod_records_with(p, STRICT).unwrap();
        let r = &loaded.report;
        assert!(
            r.rows > 0 && r.kept == r.rows && r.skipped_total() == 0,
            "{r:?}"
        );
        assert_eq!(loaded.records.len(), r.kept);
        if p.ends_with("openb_pod_list_default.csv") {
            assert_eq!(r.kept, 8152);
        }
    }
    let nodes = openb::load_nodes_with(dir.join("openb_node_list_gpu_node.csv"), STRICT).unwrap();
    assert_eq!(nodes.records.len(), 1213);
    eprintln!(
        "openb: {} pod lists + node list in {:?}",
        lists.len(),
        t.elapsed()
    );
}

fn malformed(e: DatasetError) -> (PathBuf, u64, String) {
    match e {
        DatasetError::Malformed { path, line, msg } => (path, line, msg),
        e => panic!("expected Malformed, got {e}"),
    }
}

#[test]
fn alibaba2017_malformed_rows() {
    let text = "0,1,add,,64,0.69,1\n\
                5,2,add,,64,0.69\n\
                6,x,add,,64,0.69,1\n\
                7,3,add,,,0.69,1\n\
                \n\
                8,4,explode,,64,0.5,1\n\
                9,5,remove,,64,0.5,1\n";
    let p = temp_file("server_event.csv", text);
    let e = alibaba2017::load_server_events(&p, STRICT).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("server_event.csv: line 2: 6 columns, expected 7"),
        "{msg}"
    );
    let (path, line, _) = malformed(e);
    assert_eq!((path, line), (p.clone(), 2));

    let l = alibaba2017::load_server_events(&p, LENIENT).unwrap();
    assert_eq!(l.records.len(), 2);
    assert_eq!((l.report.rows, l.report.kept), (7, 2));
    assert_eq!(l.report.skipped[WRONG_COLUMN_COUNT], 1);
    assert_eq!(l.report.skipped[NOT_A_NUMBER], 1);
    assert_eq!(l.report.skipped[EMPTY_FIELD], 1);
    assert_eq!(l.report.skipped[BAD_VALUE], 1);
    assert_eq!(l.report.skipped[BLANK_LINE], 1);
    // The machine removed at 9 is gone; machine 1 stays.
    let nodes = alibaba2017::nodes_at(&l.records, 100, DEFAULT_SCALE);
    assert_eq!(nodes.len(), 1);

    // Inline text: the third line's memory is not a number.
    let header = "task_create_time, task_end_time, job_id, task_id,number_of_instances, status, \
                  number_of_cpus_requested_per_instance_in_the_task,\
                  normalized_memory_requested_per_instance_in_the_task\r\n";
    let text = format!(
        "{header}1,2,3,4,5,Terminated,50,0.01\r\n1,0,3,5,2,Running,,\r\n1,2,3,6,1,Failed,50,abc\r\n"
    );
    let e = alibaba2017::parse_batch_tasks(&text, Path::new("inline.csv"), STRICT).unwrap_err();
    assert_eq!(
        e.to_string(),
        "inline.csv: line 4: column memory_per_instance: \"abc\" is not a valid number"
    );
    let l = alibaba2017::parse_batch_tasks(&text, Path::new("inline.csv"), LENIENT).unwrap();
    assert_eq!(l.records.len(), 2);
    assert_eq!(l.records[1].end_time, None);
    assert_eq!(l.report.empty_cells["cpus_per_instance"], 1);
    let (pods, rep) = alibaba2017::task_pods(&l.records, DEFAULT_SCALE, usize::MAX);
    assert_eq!((pods.len(), rep.skipped[alibaba2017::NO_REQUEST]), (5, 1));

    let e = alibaba2017::parse_batch_tasks("a,b\n", Path::new("h.csv"), STRICT).unwrap_err();
    assert!(matches!(e, DatasetError::UnknownHeader { .. }), "{e}");
}

#[test]
fn alibaba2018_malformed_rows() {
    let text = "m_1,0,219,17,96,100,USING\n\
                m_1,10,219,,96,100,USING\n\
                m_2,0,,17,96,100,USING\n\
                m_3,0,1,2,96,250,USING\n";
    let p = Path::new("machine_meta.csv");
    let e = alibaba2018::parse_machine_meta(text, p, STRICT).unwrap_err();
    assert_eq!(
        e.to_string(),
        "machine_meta.csv: line 3: column failure_domain_1 is empty"
    );
    let l = alibaba2018::parse_machine_meta(text, p, LENIENT).unwrap();
    assert_eq!(l.report.skipped[EMPTY_FIELD], 1);
    assert_eq!(l.report.skipped[BAD_VALUE], 1);
    assert_eq!(l.report.empty_cells["failure_domain_2"], 1);
    let nodes = alibaba2018::latest_nodes(&l.records, 100);
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].labels[ZONE_LABEL], "17"); // the latest non-empty domain 2
    assert_eq!(nodes[0].allocatable.memory_bytes, 100);

    let text = "m_1,1,41,92,,,43.04,33.08,5\nm_1,2,41,92,,,43.04,33.08\nm_1,x,1,1,1,1,1,1,1\n";
    let e = alibaba2018::parse_machine_usage(text, Path::new("u.csv"), STRICT).unwrap_err();
    assert_eq!(e.to_string(), "u.csv: line 2: 8 columns, expected 9");
    let l = alibaba2018::parse_machine_usage(text, Path::new("u.csv"), LENIENT).unwrap();
    assert_eq!(l.records.len(), 1);
    assert_eq!(l.report.skipped[WRONG_COLUMN_COUNT], 1);
    assert_eq!(l.report.skipped[NOT_A_NUMBER], 1);
    assert_eq!(l.report.empty_cells["mem_gps"], 1);
}

#[test]
fn bitbrains_malformed_rows_and_order() {
    let header = bitbrains::HEADER.join(";\t");
    let good =
        "1372629804;\t2;\t5851.9989;\t87.77;\t1.5;\t8218624.0;\t1034592.8;\t1.0;\t2.0;\t0.2;\t1.0";
    let short = "1372630104;\t2;\t5851.9989";
    let nan = "1372630404;\t2;\tfoo;\t87.77;\t1.5;\t8218624.0;\t1034592.8;\t1.0;\t2.0;\t0.2;\t1.0";
    let empty =
        "1372630704;\t;\t5851.9989;\t87.77;\t1.5;\t8218624.0;\t1034592.8;\t1.0;\t2.0;\t0.2;\t1.0";
    let text = format!("{header}\n{good}\n{short}\n{nan}\n{empty}\n");
    let dir = std::env::temp_dir().join(format!("plimsoll-bitbrains-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["10.csv", "2.csv", "1.csv", "x.csv"] {
        std::fs::write(dir.join(name), format!("{header}\n{good}\n")).unwrap();
    }
    let order: Vec<String> = bitbrains::vm_files(&dir)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(order, ["1.csv", "2.csv", "10.csv", "x.csv"]);
    std::fs::write(dir.join("3.csv"), &text).unwrap();
    let e = bitbrains::load_dir(&dir, STRICT).unwrap_err().to_string();
    assert!(e.ends_with("3.csv: line 3: 3 columns, expected 11"), "{e}");
    let set = bitbrains::load_dir(&dir, LENIENT).unwrap();
    assert_eq!(set.vms.len(), 5);
    let (vm, rep) = (&set.vms[2], &set.reports[2]);
    assert_eq!((vm.name.as_str(), vm.len(), rep.rows), ("3", 1, 4));
    assert_eq!(rep.skipped[WRONG_COLUMN_COUNT], 1);
    assert_eq!(rep.skipped[NOT_A_NUMBER], 1);
    assert_eq!(rep.skipped[EMPTY_FIELD], 1);
    let e = bitbrains::parse_vm(
        &format!("{header}\n{nan}\n"),
        Path::new("v.csv"),
        "v",
        STRICT,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "v.csv: line 2: column CPU capacity provisioned [MHZ]: \"foo\" is not a valid number"
    );
    let e = bitbrains::parse_vm("Time;\tx\n", Path::new("v.csv"), "v", STRICT).unwrap_err();
    assert!(matches!(e, DatasetError::UnknownHeader { .. }));
}

#[test]
fn openb_malformed_rows_counted() {
    let text = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n\
                p0,1,1,0,0\n\
                p1,1,1,0\n\
                p2,x,1,0,0\n\
                p3,1,,0,0\n\
                p0,1,1,0,0\n\
                p4,1,1,0,0\n";
    let p = temp_file("openb_pod_list_bad.csv", text);
    let e = openb::load_pod_records_with(&p, STRICT)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("openb_pod_list_bad.csv: line 3: 4 columns, expected 5"),
        "{e}"
    );
    let l = openb::load_pod_records_with(&p, LENIENT).unwrap();
    let names: Vec<&str> = l.records.iter().map(|r| r.pod.name.as_str()).collect();
    assert_eq!(names, ["p0", "p4"]);
    assert_eq!(
        (l.report.rows, l.report.kept, l.report.skipped_total()),
        (6, 2, 4)
    );
    assert_eq!(l.report.skipped[WRONG_COLUMN_COUNT], 1);
    assert_eq!(l.report.skipped[NOT_A_NUMBER], 1);
    assert_eq!(l.report.skipped[EMPTY_FIELD], 1);
    assert_eq!(l.report.skipped[BAD_VALUE], 1); // the duplicate p0
}
