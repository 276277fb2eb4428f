//! Kubernetes resource quantities (`500m`, `2`, `1Gi`, `1e3`), parsed exactly as
//! `k8s.io/apimachinery/pkg/api/resource` parses them.
//!
//! A quantity is `<sign?><digits>[.<digits>]<suffix>` where the suffix is a binary SI
//! suffix (`Ki Mi Gi Ti Pi Ei`), a decimal SI suffix (`n u m "" k M G T P E`), or a decimal
//! exponent (`e3`, `E-2`). Values are held exactly as a rational number
//! `mantissa × 10^exp10 × 2^exp2`, so `0.5Gi` and `1.5` are exact. Converting to an
//! integer rounds *up*, as Kubernetes' `Value()` and `MilliValue()` do.

use std::fmt;
use thiserror::Error;

/// Why a quantity string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuantityError {
    /// The string is empty.
    #[error("quantity is empty")]
    Empty,
    /// The string does not follow the Kubernetes quantity grammar.
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {0:?}")]
    Syntax(String),
    /// The value is negative where a non-negative amount is required.
    #[error("quantity {0:?} is negative")]
    Negative(String),
    /// The value does not fit in the integer range Plimsoll uses.
    #[error("quantity {0:?} is too large")]
    TooLarge(String),
}

/// An exactly represented Kubernetes quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    negative: bool,
    /// Decimal digits without the point.
    mantissa: u128,
    /// Power of ten applied to the mantissa (may be negative).
    exp10: i32,
    /// Power of two applied to the mantissa (binary suffixes).
    exp2: u32,
}

impl Quantity {
    /// Parses a quantity string such as `"500m"`, `"1Gi"` or `"1e3"`.
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(QuantityError::Empty);
        }
        let err = || QuantityError::Syntax(s.to_string());
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if bytes[0] == b'+' || bytes[0] == b'-' {
            negative = bytes[0] == b'-';
            i = 1;
        }
        let mut mantissa: u128 = 0;
        let mut exp10: i32 = 0;
        let mut digits = 0;
        let mut seen_point = false;
        while i < bytes.len() {
            let c = bytes[i];
            if c.is_ascii_digit() {
                digits += 1;
                if mantissa > u128::MAX / 100 {
                    // Drop further precision only if it is after the point and zero;
                    // otherwise the number is far beyond any resource amount.
                    return Err(QuantityError::TooLarge(s.to_string()));
                }
                mantissa = mantissa * 10 + u128::from(c - b'0');
                if seen_point {
                    exp10 = exp10.saturating_sub(1);
                }
            } else if c == b'.' {
                if seen_point {
                    return Err(err());
                }
                seen_point = true;
            } else {
                break;
            }
            i += 1;
        }
        if digits == 0 {
            return Err(err());
        }
        let suffix = &s[i..];
        let mut exp2 = 0u32;
        match suffix {
            "" => {}
            "n" => exp10 -= 9,
            "u" => exp10 -= 6,
            "m" => exp10 -= 3,
            "k" => exp10 += 3,
            "M" => exp10 += 6,
            "G" => exp10 += 9,
            "T" => exp10 += 12,
            "P" => exp10 += 15,
            "E" => exp10 += 18,
            "Ki" => exp2 = 10,
            "Mi" => exp2 = 20,
            "Gi" => exp2 = 30,
            "Ti" => exp2 = 40,
            "Pi" => exp2 = 50,
            "Ei" => exp2 = 60,
            _ => {
                // Decimal exponent: e or E followed by an optionally signed integer.
                let rest = suffix
                    .strip_prefix('e')
                    .or_else(|| suffix.strip_prefix('E'))
                    .ok_or_else(err)?;
                let (sign, num) = match rest.as_bytes().first() {
                    Some(b'-') => (-1, &rest[1..]),
                    Some(b'+') => (1, &rest[1..]),
                    _ => (1, rest),
                };
                if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || num.len() > 4 {
                    return Err(err());
                }
                let e: i32 = num.parse().map_err(|_| err())?;
                exp10 = exp10.saturating_add(sign * e);
            }
        }
        Ok(Quantity {
            negative: negative && mantissa != 0,
            mantissa,
            exp10,
            exp2,
        })
    }

    /// True if the quantity is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The value scaled by `10^scale`, rounded up (away from zero for positives), as
    /// Kubernetes' `ScaledValue` does. `None` if it does not fit in `i128`.
    fn scaled_ceil(&self, scale: i32) -> Option<i128> {
        let mut num: u128 = self.mantissa.checked_mul(1u128.checked_shl(self.exp2)?)?;
        let e = self.exp10.saturating_add(scale);
        let mut den: u128 = 1;
        if e >= 0 {
            for _ in 0..e {
                num = num.checked_mul(10)?;
            }
        } else if e < -38 {
            // 10^39 exceeds u128 and any representable mantissa: the value is below one
            // unit, so it rounds up to one (or is zero).
            let v = i128::from(num != 0);
            return Some(if self.negative { 0 } else { v });
        } else {
            den = 10u128.pow(e.unsigned_abs());
        }
        let q = num / den;
        let r = num % den;
        let v = i128::try_from(q).ok()?;
        Some(if self.negative {
            -v
        } else if r != 0 {
            v + 1
        } else {
            v
        })
    }

    /// The value rounded up to an integer, as Kubernetes' `Value()`.
    pub fn value(&self) -> Option<i128> {
        self.scaled_ceil(0)
    }

    /// The value in thousandths rounded up, as Kubernetes' `MilliValue()`.
    pub fn milli_value(&self) -> Option<i128> {
        self.scaled_ceil(3)
    }

    /// Parses and converts to a non-negative integer count of units (bytes, pods, devices).
    pub fn parse_units(s: &str) -> Result<u64, QuantityError> {
        let q = Self::parse(s)?;
        if q.is_negative() {
            return Err(QuantityError::Negative(s.to_string()));
        }
        q.value()
            .and_then(|v| u64::try_from(v).ok())
            .filter(|v| *v <= MAX_AMOUNT)
            .ok_or_else(|| QuantityError::TooLarge(s.to_string()))
    }

    /// Parses and converts to a non-negative count of thousandths (CPU millicores).
    pub fn parse_milli(s: &str) -> Result<u64, QuantityError> {
        let q = Self::parse(s)?;
        if q.is_negative() {
            return Err(QuantityError::Negative(s.to_string()));
        }
        q.milli_value()
            .and_then(|v| u64::try_from(v).ok())
            .filter(|v| *v <= MAX_AMOUNT)
            .ok_or_else(|| QuantityError::TooLarge(s.to_string()))
    }
}

/// The largest amount Plimsoll accepts for any resource (2^62), so sums over many pods
/// never overflow `u64`/`i64` arithmetic.
pub const MAX_AMOUNT: u64 = 1 << 62;

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.milli_value() {
            Some(m) if m % 1000 == 0 => write!(f, "{}", m / 1000),
            Some(m) => write!(f, "{m}m"),
            None => write!(f, "<huge>"),
        }
    }
}

/// Formats CPU millicores the way `kubectl` shows them (`1500m`, `2`).
pub fn format_cpu_milli(milli: u64) -> String {
    if milli % 1000 == 0 {
        format!("{}", milli / 1000)
    } else {
        format!("{milli}m")
    }
}

/// Formats a byte count with the largest exact binary suffix (`512Mi`, `3Gi`).
pub fn format_bytes(bytes: u64) -> String {
    const SUFFIXES: [(&str, u32); 6] = [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ];
    for (s, shift) in SUFFIXES {
        let unit = 1u64 << shift;
        if bytes >= unit && bytes % unit == 0 {
            return format!("{}{s}", bytes / unit);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_examples() {
        assert_eq!(Quantity::parse_milli("500m").unwrap(), 500);
        assert_eq!(Quantity::parse_milli("2").unwrap(), 2000);
        assert_eq!(Quantity::parse_milli("0.1").unwrap(), 100);
        assert_eq!(Quantity::parse_milli("1.5").unwrap(), 1500);
        assert_eq!(Quantity::parse_units("1Gi").unwrap(), 1 << 30);
        assert_eq!(Quantity::parse_units("512Mi").unwrap(), 512 << 20);
        assert_eq!(Quantity::parse_units("1e3").unwrap(), 1000);
        assert_eq!(Quantity::parse_units("1E3").unwrap(), 1000);
        assert_eq!(Quantity::parse_units("1k").unwrap(), 1000);
        assert_eq!(Quantity::parse_units("1M").unwrap(), 1_000_000);
        assert_eq!(Quantity::parse_units("0.5Gi").unwrap(), 1 << 29);
        assert_eq!(Quantity::parse_units("+8").unwrap(), 8);
        assert_eq!(Quantity::parse_units("12e-1").unwrap(), 2); // 1.2 rounds up
        assert_eq!(Quantity::parse_milli("1u").unwrap(), 1); // rounds up to 1m
        assert_eq!(Quantity::parse_milli("100n").unwrap(), 1);
        assert_eq!(Quantity::parse_units("0").unwrap(), 0);
        assert_eq!(Quantity::parse_units("1.").unwrap(), 1);
        assert_eq!(Quantity::parse_units(".5").unwrap(), 1);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "abc", "1Qi", "1.2.3", "1 Gi", "m", "1mm", "1e", "1e+", "Gi", "--1", "1KiB",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(matches!(
            Quantity::parse_units("-1"),
            Err(QuantityError::Negative(_))
        ));
        assert!(matches!(
            Quantity::parse_units("1e40"),
            Err(QuantityError::TooLarge(_))
        ));
        assert!(matches!(
            Quantity::parse_units("99999999999999999999999999999999999999999999"),
            Err(QuantityError::TooLarge(_))
        ));
    }

    #[test]
    fn quantities_beyond_max_amount_are_too_large_not_wrapped() {
        for huge in [
            "1000000000000000000000000000000Ei",
            "4611686018427387905",
            "8Ei",
            "1e9999",
        ] {
            assert!(
                matches!(Quantity::parse_units(huge), Err(QuantityError::TooLarge(_))),
                "{huge}"
            );
        }
        assert_eq!(Quantity::parse_units("4Ei"), Ok(MAX_AMOUNT));
        assert_eq!(
            Quantity::parse_milli("4611686018427387904m"),
            Ok(MAX_AMOUNT)
        );
        assert!(Quantity::parse_milli("4611686018427387905m").is_err());
        assert_eq!(Quantity::parse_units("1e-9999"), Ok(1));
    }

    #[test]
    fn formats() {
        assert_eq!(format_cpu_milli(1500), "1500m");
        assert_eq!(format_cpu_milli(2000), "2");
        assert_eq!(format_bytes(512 << 20), "512Mi");
        assert_eq!(format_bytes(1000), "1000");
    }
}
