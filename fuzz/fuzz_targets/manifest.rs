//! Manifest reading: any text (YAML or JSON, multi-document) through `manifest::load_str`,
//! and what it accepts through `Problem::from_parts` (the next step every caller takes).
//! Must never panic, hang or allocate without bound; errors are fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plimsoll::manifest;
use plimsoll::model::Problem;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(loaded) = manifest::load_str(text, "fuzz.yaml") {
        let _ = Problem::from_parts(loaded.nodes, loaded.pods);
    }
});
