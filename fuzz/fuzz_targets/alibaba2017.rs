//! Alibaba cluster-trace-v2017: `server_event.csv` and `batch_task.csv` text, then the
//! conversions every caller makes (nodes at a time, per-instance pods). The first byte
//! picks the file and the strictness.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plimsoll::datasets::alibaba2017::{self, DEFAULT_SCALE};
use plimsoll::datasets::Strictness;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let strictness = if sel & 2 == 0 {
        Strictness::Strict
    } else {
        Strictness::Lenient
    };
    let path = Path::new("fuzz.csv");
    if sel & 1 == 0 {
        if let Ok(l) = alibaba2017::parse_server_events(text, path, strictness) {
            for at in [i64::MIN, 0, i64::MAX] {
                let _ = alibaba2017::nodes_at(&l.records, at, DEFAULT_SCALE);
            }
            if let Some(e) = l.records.first() {
                let _ = alibaba2017::nodes_at(&l.records, e.timestamp, DEFAULT_SCALE);
            }
        }
    } else if let Ok(l) = alibaba2017::parse_batch_tasks(text, path, strictness) {
        let (pods, _) = alibaba2017::task_pods(&l.records, DEFAULT_SCALE, 1000);
        assert!(pods.len() <= 1000);
    }
});
