//! Bitbrains GWA-T-12 VM files (`;`-separated), then `dedup_by_time` and the usage
//! series every predictor reads. The first byte picks the strictness.
//!
//! Spans over 10^7 s are not resampled here: the first campaign ran before the library
//! bounded resampling (issue 12, item 7: at most 10,000,000 values, and Bitbrains files
//! spanning at most 366 days); the next campaign can drop this guard.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plimsoll::datasets::bitbrains;
use plimsoll::datasets::Strictness;
use plimsoll::predict::series::{Series, DEFAULT_STEP_SECS};
use std::path::Path;

const MAX_SPAN: i64 = 10_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let strictness = if sel & 1 == 0 {
        Strictness::Strict
    } else {
        Strictness::Lenient
    };
    if let Ok((vm, _)) = bitbrains::parse_vm(text, Path::new("1.csv"), "1", strictness) {
        let (d, dropped) = vm.dedup_by_time();
        assert_eq!(d.len() + dropped, vm.len());
        if vm.out_of_order() == 0 {
            assert_eq!(dropped, 0, "a strictly increasing series has no duplicates");
        }
        let ts = vm.timestamps.iter().copied();
        let (lo, hi) = (ts.clone().min().unwrap_or(0), ts.max().unwrap_or(0));
        if hi.checked_sub(lo).is_some_and(|s| s <= MAX_SPAN) {
            let _ = Series::from_vm(&vm, DEFAULT_STEP_SECS);
        }
    }
});
