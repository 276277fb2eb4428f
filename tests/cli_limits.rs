//! The `plimsoll` binary on inputs beyond the stated bounds: exit 2 with an error naming
//! the file and line (never exit 1 from a wrapped sum, never a silent exit 0), messages
//! about the input as a whole name the files, and the table output ends its last line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plimsoll-cli-limits-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn plimsoll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const NODE: &str = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n8\nstatus:\n  allocatable: {cpu: \"8\", memory: 8Gi, pods: \"110\"}\n";

/// openb nodes of `u64::MAX` millicores with two pods of 10^19: the sum wrapped, every
/// policy put both pods on n1 and the validator (saturating) accepted it: exit 0.
#[test]
fn openb_values_that_would_wrap_exit_2_naming_file_and_line() {
    let dir = temp_dir("openb");
    let nodes = write(
        &dir,
        "nodes.csv",
        "sn,cpu_milli,memory_mib,gpu,model\nn1,18446744073709551615,1024,0,\n",
    );
    let pods = write(
        &dir,
        "pods.csv",
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np1,10000000000000000000,1,0,0\np2,10000000000000000000,1,0,0\n",
    );
    for policy in ["first-fit", "best-fit", "milp"] {
        let o = plimsoll(&["place", "-f", &nodes, "-f", &pods, "--policy", policy]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{policy}: {err}");
        assert!(
            err.contains("nodes.csv: line 2: column cpu_milli"),
            "{policy}: {err}"
        );
    }
}

/// Four containers of 2^62 millicores: exit 1 (the validator rejected every policy's
/// placement of a pod whose request had wrapped to 0); now a bad-input error.
#[test]
fn a_pod_whose_container_sum_overflows_exits_2_naming_the_field() {
    let dir = temp_dir("sum");
    let nodes = write(&dir, "nodes.yaml", NODE);
    let c = "  - name: c\n    resources:\n      requests:\n        cpu: 4611686018427387904m\n";
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: huge\nspec:\n  containers:\n{}",
        c.repeat(4)
    );
    let pods = write(&dir, "pods.yaml", &pod);
    let o = plimsoll(&["place", "-f", &nodes, "-f", &pods]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "pods.yaml: document 1 (Pod default/huge), line 12: spec.containers[1].resources"
        ),
        "{err}"
    );
}

#[test]
fn no_node_objects_names_the_files() {
    let dir = temp_dir("no-nodes");
    let pod =
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n";
    let pods = write(&dir, "only-pods.yaml", pod);
    let o = plimsoll(&["place", "-f", &pods]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{pods}: the input has no Node objects")),
        "{err}"
    );
}

/// The table's summary line used to be left open, so a warning printed on stderr right
/// after it (into the same terminal) landed on the same line.
#[test]
fn place_table_output_ends_with_a_newline() {
    let dir = temp_dir("newline");
    let nodes = write(&dir, "nodes.yaml", NODE);
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    resources:\n      requests: {cpu: \"1\"}\n";
    let pods = write(&dir, "pods.yaml", pod);
    let o = plimsoll(&["place", "-f", &nodes, "-f", &pods, "-o", "table"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 placed, 0 unplaced"), "{out}");
    assert!(out.ends_with('\n'), "{out:?}");
}
