//! Alibaba cluster-trace-v2018: `machine_meta.csv` and `machine_usage.csv` text, then
//! `latest_nodes` and the usage series. The first byte picks the file and strictness.
//!
//! Spans over 10^7 s are not resampled here: the first campaign ran before the library
//! bounded resampling (issue 12, item 7: at most 10,000,000 values, and Bitbrains files
//! spanning at most 366 days); the next campaign can drop this guard.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plimsoll::datasets::alibaba2018::{self, DEFAULT_MEMORY_BYTES_PER_100};
use plimsoll::datasets::Strictness;
use plimsoll::predict::series::{Series, DEFAULT_STEP_SECS};
use std::collections::BTreeMap;
use std::path::Path;

const MAX_SPAN: i64 = 10_000_000;

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
        if let Ok(l) = alibaba2018::parse_machine_meta(text, path, strictness) {
            let _ = alibaba2018::latest_nodes(&l.records, DEFAULT_MEMORY_BYTES_PER_100);
        }
    } else if let Ok(l) = alibaba2018::parse_machine_usage(text, path, strictness) {
        let ts = l.records.iter().map(|r| r.time_stamp);
        let (lo, hi) = (ts.clone().min().unwrap_or(0), ts.max().unwrap_or(0));
        if hi.checked_sub(lo).is_some_and(|s| s <= MAX_SPAN) {
            let _ = Series::from_machine_usage(&l.records, DEFAULT_STEP_SECS, &BTreeMap::new());
        }
    }
});
