//! openb CSV: node and pod lists read from memory. The first byte picks the list kind
//! and the strictness; the rest is the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plimsoll::datasets::openb;
use plimsoll::datasets::Strictness;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let strictness = if sel & 2 == 0 {
        Strictness::Strict
    } else {
        Strictness::Lenient
    };
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = openb::classify_header(text.lines().next().unwrap_or(""));
    }
    if sel & 1 == 0 {
        if let Ok(l) = openb::load_nodes_from_reader(body, "fuzz.csv", strictness) {
            assert_eq!(l.records.len(), l.report.kept);
        }
    } else if let Ok(l) = openb::load_pod_records_from_reader(body, "fuzz.csv", strictness) {
        assert_eq!(l.records.len(), l.report.kept);
    }
});
