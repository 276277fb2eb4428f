//! Reading a parsed YAML/JSON tree with field paths: typed getters that fail with the path
//! in Kubernetes spelling, and the strict key check used where a typo would change
//! scheduling.

use super::error::{ferr, FieldError};
use crate::model::{Labels, Quantity};
use serde_yaml::{Mapping, Value};

/// Result with a field error.
pub(crate) type R<T> = Result<T, FieldError>;

/// `path.key` (or `key` at the root).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// The value as a mapping; `null` counts as empty.
pub(crate) fn map<'v>(v: &'v Value, path: &str) -> R<Option<&'v Mapping>> {
    match v {
        Value::Null => Ok(None),
        Value::Mapping(m) => Ok(Some(m)),
        other => Err(ferr(
            path,
            format!("expected a mapping, found {}", type_name(other)),
        )),
    }
}

/// The entry `key` of `m`, treating `null` as absent.
pub(crate) fn get<'v>(m: Option<&'v Mapping>, key: &str) -> Option<&'v Value> {
    m.and_then(|m| m.get(key)).filter(|v| !v.is_null())
}

/// Checks that every key of `m` is a string and in `allowed`.
pub(crate) fn check_keys(m: Option<&Mapping>, path: &str, allowed: &[&str]) -> R<()> {
    for k in m.into_iter().flat_map(|m| m.keys()) {
        let Some(k) = k.as_str() else {
            return Err(ferr(path, "keys must be strings"));
        };
        if !allowed.contains(&k) {
            return Err(ferr(
                &join(path, k),
                format!(
                    "unknown field {k:?}; expected one of: {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// A string (scalars other than strings are an error, as in Kubernetes).
pub(crate) fn string(v: &Value, path: &str) -> R<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(ferr(
            path,
            format!("expected a string, found {}", type_name(other)),
        )),
    }
}

/// Optional string field.
pub(crate) fn opt_string(m: Option<&Mapping>, key: &str, path: &str) -> R<Option<String>> {
    get(m, key).map(|v| string(v, &join(path, key))).transpose()
}

/// An integer.
pub(crate) fn int(v: &Value, path: &str) -> R<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| ferr(path, format!("expected an integer, found {n}"))),
        other => Err(ferr(
            path,
            format!("expected an integer, found {}", type_name(other)),
        )),
    }
}

/// Optional integer field within `[lo, hi]`.
pub(crate) fn opt_int_in(
    m: Option<&Mapping>,
    key: &str,
    path: &str,
    lo: i64,
    hi: i64,
) -> R<Option<i64>> {
    let Some(v) = get(m, key) else {
        return Ok(None);
    };
    let p = join(path, key);
    let n = int(v, &p)?;
    if n < lo || n > hi {
        return Err(ferr(&p, format!("{n} is out of range [{lo}, {hi}]")));
    }
    Ok(Some(n))
}

/// Optional boolean field.
pub(crate) fn opt_bool(m: Option<&Mapping>, key: &str, path: &str) -> R<Option<bool>> {
    match get(m, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ferr(
            &join(path, key),
            format!("expected a boolean, found {}", type_name(other)),
        )),
    }
}

/// A list; `null` counts as empty.
pub(crate) fn seq<'v>(v: Option<&'v Value>, path: &str) -> R<&'v [Value]> {
    match v {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Sequence(s)) => Ok(s),
        Some(other) => Err(ferr(
            path,
            format!("expected a list, found {}", type_name(other)),
        )),
    }
}

/// A list of strings.
pub(crate) fn strings(v: Option<&Value>, path: &str) -> R<Vec<String>> {
    seq(v, path)?
        .iter()
        .enumerate()
        .map(|(i, s)| string(s, &index(path, i)))
        .collect()
}

/// A string-to-string map (labels, annotations, nodeSelector).
pub(crate) fn string_map(v: Option<&Value>, path: &str) -> R<Labels> {
    let mut out = Labels::new();
    let Some(v) = v else { return Ok(out) };
    for (k, val) in map(v, path)?.into_iter().flatten() {
        let k = k
            .as_str()
            .ok_or_else(|| ferr(path, "keys must be strings"))?;
        out.insert(k.to_string(), string(val, &join(path, k))?);
    }
    Ok(out)
}

/// The text of a quantity: a string, or a number as JSON writes it.
pub(crate) fn quantity_text(v: &Value, path: &str) -> R<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(ferr(
            path,
            format!("expected a quantity, found {}", type_name(other)),
        )),
    }
}

/// A quantity as a whole number of units; fractional values are an error (Kubernetes
/// requires integers for extended resources and GPUs).
pub(crate) fn whole_units(v: &Value, path: &str) -> R<u64> {
    let s = quantity_text(v, path)?;
    let q = Quantity::parse(&s).map_err(|e| ferr(path, e.to_string()))?;
    if q.milli_value().is_some_and(|m| m % 1000 != 0) {
        return Err(ferr(path, format!("{s:?} must be a whole number")));
    }
    Quantity::parse_units(&s).map_err(|e| ferr(path, e.to_string()))
}
