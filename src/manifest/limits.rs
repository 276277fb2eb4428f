//! Kubernetes' own limits on names and labels, checked at the edge so that no input
//! string can make every pod, error message or index it is copied into arbitrarily
//! large: an object name is at most [`MAX_NAME_LEN`] characters (a DNS subdomain), a
//! namespace at most [`MAX_LABEL_VALUE_LEN`], a label value at most
//! [`MAX_LABEL_VALUE_LEN`] characters of `[A-Za-z0-9._-]` beginning and ending with an
//! alphanumeric, and a label key an optional DNS-subdomain prefix and `/` followed by a
//! name with the label value's rules (non-empty).

use super::error::{ferr, FieldError};
use super::value::R;

/// Longest object name (`metadata.name`): a DNS subdomain, 253 characters.
pub const MAX_NAME_LEN: usize = 253;
/// Longest label value, label-key name part and namespace: 63 characters.
pub const MAX_LABEL_VALUE_LEN: usize = 63;

/// Checks an object name's length.
pub(crate) fn check_name(name: &str, path: &str) -> R<()> {
    if name.len() > MAX_NAME_LEN {
        return Err(too_long(path, name, MAX_NAME_LEN));
    }
    Ok(())
}

/// Checks a namespace's length.
pub(crate) fn check_namespace(ns: &str, path: &str) -> R<()> {
    if ns.len() > MAX_LABEL_VALUE_LEN {
        return Err(too_long(path, ns, MAX_LABEL_VALUE_LEN));
    }
    Ok(())
}

fn too_long(path: &str, s: &str, max: usize) -> FieldError {
    let head: String = s.chars().take(20).collect();
    ferr(
        path,
        format!(
            "{} characters ({head:?}…); Kubernetes allows at most {max}",
            s.len()
        ),
    )
}

/// Whether `s` is a label value (or a key's name part when `required`): at most 63
/// characters, alphanumerics at both ends and `-`, `_`, `.` or alphanumerics between.
fn is_label_word(s: &str, required: bool) -> bool {
    if s.is_empty() {
        return !required;
    }
    let b = s.as_bytes();
    s.len() <= MAX_LABEL_VALUE_LEN
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Whether `s` is a DNS subdomain: at most 253 characters of lowercase alphanumerics,
/// `-` and `.`, alphanumerics at both ends.
fn is_dns_subdomain(s: &str) -> bool {
    let b = s.as_bytes();
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.'))
}

/// Checks one label (`path` is the labels map's path).
pub(crate) fn check_label(key: &str, value: &str, path: &str) -> R<()> {
    let kp = format!("{path}[\"{}\"]", key.chars().take(80).collect::<String>());
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if prefix.is_some_and(|p| !is_dns_subdomain(p)) || !is_label_word(name, true) {
        return Err(ferr(
            &kp,
            "invalid label key: an optional DNS-subdomain prefix (at most 253 characters) \
             and '/', then a name of at most 63 characters [A-Za-z0-9._-] beginning and \
             ending with an alphanumeric",
        ));
    }
    if !is_label_word(value, false) {
        let head: String = value.chars().take(20).collect();
        return Err(ferr(
            &kp,
            format!(
                "invalid label value {head:?}{}: at most 63 characters [A-Za-z0-9._-], \
                 beginning and ending with an alphanumeric",
                if value.chars().count() > 20 {
                    "…"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_name_and_label_limits() {
        assert!(check_name(&"a".repeat(253), "metadata.name").is_ok());
        let e = check_name(&"a".repeat(20_000), "metadata.name").unwrap_err();
        assert!(
            e.msg.contains("20000 characters") && e.msg.contains("253"),
            "{e:?}"
        );
        assert!(check_namespace(&"n".repeat(64), "metadata.namespace").is_err());
        for (k, v) in [
            ("app", "web"),
            ("app.kubernetes.io/name", "x-1_2.3"),
            ("kubernetes.io/hostname", ""),
            ("nvidia.com/gpu.product", "Tesla-V100-SXM2-16GB"),
        ] {
            assert!(check_label(k, v, "metadata.labels").is_ok(), "{k}={v}");
        }
        for (k, v) in [
            ("app", &*"v".repeat(64)),
            ("app", "-x"),
            ("", "x"),
            ("Bad_Prefix/app", "x"),
            (&*"k".repeat(64), "x"),
            ("a/b/c", "x"),
        ] {
            assert!(check_label(k, v, "metadata.labels").is_err(), "{k}={v}");
        }
    }
}
