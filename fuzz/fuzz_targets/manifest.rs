//! Manifest reading: any text (YAML or JSON, multi-document) through `manifest::load_str`,
//! then what every caller does next with what it accepts: `Problem::from_parts`, a
//! kube-default placement and the independent validator, which must accept that
//! placement. Must never panic, hang or allocate without bound; errors are fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plimsoll::manifest;
use plimsoll::model::Problem;
use plimsoll::place::validate::validate;
use plimsoll::place::{policy_by_name, PolicyOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(loaded) = manifest::load_str(text, "fuzz.yaml") else {
        return;
    };
    let Ok(problem) = Problem::from_parts(loaded.nodes, loaded.pods) else {
        return;
    };
    let placer = policy_by_name("kube-default", &PolicyOptions::default()).expect("policy");
    if let Ok(outcome) = placer.place(&problem) {
        if let Err(v) = validate(&problem, &outcome.placement) {
            panic!("kube-default placement rejected by the validator: {v:?}");
        }
    }
});
