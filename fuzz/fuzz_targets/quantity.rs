//! Kubernetes quantities (`500m`, `1Gi`, `1e3`): `Quantity::parse` and the conversions,
//! with the properties they promise:
//! - `parse_units` is `parse_milli` rounded up to whole units (both round up);
//! - the value printed by `Display` parses back to the same `milli_value` (for amounts
//!   up to `MAX_AMOUNT` units);
//! - `format_cpu_milli` and `format_bytes` parse back exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plimsoll::model::quantity::{format_bytes, format_cpu_milli, Quantity, MAX_AMOUNT};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Quantity::parse(s);
    let units = Quantity::parse_units(s);
    let milli = Quantity::parse_milli(s);
    if let Ok(q) = parsed {
        let (v, m) = (q.value(), q.milli_value());
        if let (Some(v), Some(m)) = (v, m) {
            if !q.is_negative() {
                assert_eq!(v, (m + 999).div_euclid(1000), "{s:?}: value vs milli_value");
            }
            // Only for amounts in Plimsoll's range: beyond it (38-digit milli values)
            // the printed digits are over the parser's precision, which is fine.
            if m.unsigned_abs() <= u128::from(MAX_AMOUNT) * 1000 {
                let shown = q.to_string();
                let back = Quantity::parse(&shown)
                    .unwrap_or_else(|e| panic!("{s:?} shown as {shown:?}: {e}"));
                assert_eq!(back.milli_value(), Some(m), "{s:?} shown as {shown:?}");
            }
        }
    } else {
        assert!(
            units.is_err() && milli.is_err(),
            "{s:?}: parse failed but a conversion did not"
        );
    }
    if let (Ok(u), Ok(m)) = (&units, &milli) {
        assert_eq!(*u, m.div_ceil(1000), "{s:?}: parse_units vs parse_milli");
    }
    if let Ok(m) = milli {
        assert_eq!(Quantity::parse_milli(&format_cpu_milli(m)), Ok(m), "{s:?}");
    }
    if let Ok(u) = units {
        assert!(u <= MAX_AMOUNT);
        assert_eq!(Quantity::parse_units(&format_bytes(u)), Ok(u), "{s:?}");
    }
});
