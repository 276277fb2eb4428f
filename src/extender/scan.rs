//! A fast top-level scan of a node-names request body that finds the `NodeNames` list
//! without scanning it: the bytes where the list starts are compared with the lists
//! in the [`NamesMemo`], and on a match the whole list is skipped in one comparison.
//!
//! A JSON array's text ends at its matching `]`, wherever it appears, so a body whose
//! bytes at the value's start equal a list the memo resolved before (a complete, valid
//! array) holds exactly that list there. The other members (`Pod`, unknown ones) are
//! skipped with serde_json, which validates them. Anything unusual — an escape in a key,
//! a member given twice, a non-null `Nodes`, no `NodeNames`, a memo miss, bad syntax —
//! gives `None`, and the caller decodes the body the ordinary way (which then reports
//! the error, if there is one). So the scan either agrees with the full decode or steps
//! aside.

use super::fast::{NamesMemo, ResolvedNames};
use serde_json::value::RawValue;
use std::sync::Arc;

/// A node-names request found by [`scan`].
pub struct Scanned<'a> {
    /// The `Pod` member's JSON text.
    pub pod: &'a RawValue,
    /// The `NodeNames` list, resolved (from the memo).
    pub names: Arc<ResolvedNames>,
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\t' | b'\r') {
        i += 1;
    }
    i
}

/// A key without escapes starting at `b[i] == '"'`: the key and the index after it.
fn key(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let len = b[i + 1..].iter().position(|&c| c == b'"' || c == b'\\')?;
    let end = i + 1 + len;
    (b[end] == b'"').then(|| (&b[i + 1..end], end + 1))
}

/// One JSON value starting at `b[i]` (after whitespace): its text and the index after it.
fn value(b: &[u8], i: usize) -> Option<(&RawValue, usize)> {
    let mut s = serde_json::Deserializer::from_slice(&b[i..]).into_iter::<&RawValue>();
    let v = s.next()?.ok()?;
    Some((v, i + s.byte_offset()))
}

/// The body's pod and memoised name list, or `None` (decode it the ordinary way).
/// `layout` is the cache's current [`Cache::layout`](super::Cache::layout).
pub fn scan<'a>(body: &'a [u8], memo: &NamesMemo, layout: u64) -> Option<Scanned<'a>> {
    let b = body;
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let (mut pod, mut names, mut nodes_seen) = (None, None, false);
    if b.get(i) == Some(&b'}') {
        return None;
    }
    loop {
        let (k, after) = key(b, i)?;
        i = skip_ws(b, after);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        match k {
            b"Pod" | b"pod" => {
                if pod.is_some() {
                    return None;
                }
                let (v, next) = value(b, i)?;
                pod = Some(v);
                i = next;
            }
            b"Nodes" | b"nodes" => {
                if nodes_seen || !b[i..].starts_with(b"null") {
                    return None;
                }
                nodes_seen = true;
                let (v, next) = value(b, i)?;
                if v.get() != "null" {
                    return None;
                }
                i = next;
            }
            b"NodeNames" | b"nodenames" | b"nodeNames" => {
                if names.is_some() {
                    return None;
                }
                let hit = memo.lookup_prefix(&b[i..], layout)?;
                i += hit.raw_len();
                names = Some(hit);
            }
            _ => {
                let (_, next) = value(b, i)?;
                i = next;
            }
        }
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    if skip_ws(b, i + 1) != b.len() {
        return None;
    }
    Some(Scanned {
        pod: pod?,
        names: names?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extender::Cache;
    use crate::place::online::{OnlineKind, OnlinePolicy};

    fn cache() -> Cache {
        // Nodes a, b, c (the end-to-end tests' snapshot).
        let yaml = include_str!("../../tests/fixtures/extender-snapshot.yaml");
        let l = crate::manifest::load_str(yaml, "snapshot.yaml").unwrap();
        let policy = OnlinePolicy::new(OnlineKind::BestFit, 0);
        Cache::new(policy, l.nodes, l.pods).unwrap()
    }

    #[test]
    fn memoised_name_list_scan_takes_only_bodies_a_full_decode_reads_the_same() {
        let list = r#"["a","b","c","ghost"]"#;
        let p = r#"{"metadata":{"name":"web-1","namespace":"shop","uid":"u-1"},"spec":{"containers":[{"name":"w","resources":{"requests":{"cpu":"1"}}}]}}"#;
        // (body, whether the scan may take it without a full decode), shared with the
        // end-to-end test in tests/extender.rs.
        let fixture: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../../tests/fixtures/name_list_bodies.json"))
                .unwrap();
        let bodies: Vec<(String, bool)> = fixture
            .iter()
            .map(|b| {
                let body = b["body"].as_str().unwrap();
                let body = body.replace("{p}", p).replace("{list}", list);
                (body, b["scan"].as_bool().unwrap())
            })
            .collect();
        assert_eq!(bodies.iter().filter(|b| b.1).count(), 4);
        let cache = cache();
        let memo = NamesMemo::default();
        memo.resolve_text(list, &cache).unwrap();
        for (body, fast) in &bodies {
            let got = scan(body.as_bytes(), &memo, cache.layout());
            assert_eq!(got.is_some(), *fast, "{body}");
            if let Some(s) = got {
                assert_eq!(s.pod.get(), p, "{body}");
                assert_eq!(s.names.raw(), list);
            }
            // Another node layout: never from the memo.
            assert!(scan(body.as_bytes(), &memo, cache.layout() + 1).is_none());
        }
    }
}
