//! The hot path of filter and prioritize in node-names mode.
//!
//! kube-scheduler sends the same `NodeNames` list (often every node, thousands of names)
//! in call after call. [`NamesMemo`] keeps the last few lists resolved — node ids and
//! each name already JSON-encoded — keyed by the list's raw JSON text and the cache's
//! node layout ([`Cache::layout`]): a repeated list costs one hash and one comparison of
//! its bytes instead of decoding and looking up every name. Replies are then written
//! straight into one byte buffer from the encoded names ([`filter_reply`],
//! [`prioritize_reply`]), byte for byte what serde_json writes for the wire types.

use super::cache::{Cache, Verdicts};
use super::hash::hash_bytes;
use crate::model::NodeId;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

/// How many distinct name lists [`NamesMemo`] keeps.
pub const MEMO_ENTRIES: usize = 8;

/// A node name borrowed from the request body when it has no escapes.
pub struct Name<'a>(pub Cow<'a, str>);

impl AsRef<str> for Name<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a node name (string)")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V).map(Name)
    }
}

/// A list of node names resolved against the cache: ids and JSON-encoded names.
#[derive(Debug)]
pub struct ResolvedNames {
    layout: u64,
    hash: u64,
    raw: Box<str>,
    /// The names, decoded, end to end (`text[name_ends[i-1]..name_ends[i]]`).
    text: String,
    name_ends: Vec<usize>,
    /// Node id of each name (`None`: unknown to the cache).
    pub ids: Vec<Option<NodeId>>,
    enc: Vec<u8>,
    /// `enc[ends[i-1]..ends[i]]` is name `i` as a JSON string.
    ends: Vec<usize>,
    /// `{"Host":name,"Score":` of every name, end to end, with the end of each (built
    /// when the list is first prioritized).
    hosts: OnceLock<(Vec<u8>, Vec<usize>)>,
    /// Every name as one JSON array (the filter reply when all pass).
    array: OnceLock<Vec<u8>>,
}

impl ResolvedNames {
    /// Resolves `names` against `cache` (`raw`: the list's JSON text, kept as the key).
    pub fn new<S: AsRef<str>>(names: &[S], cache: &Cache, raw: &str) -> Self {
        let mut enc = Vec::with_capacity(raw.len());
        let mut ends = Vec::with_capacity(names.len());
        let mut text = String::with_capacity(raw.len());
        let mut name_ends = Vec::with_capacity(names.len());
        for n in names {
            serde_json::to_writer(&mut enc, n.as_ref()).expect("writing to a Vec");
            ends.push(enc.len());
            text.push_str(n.as_ref());
            name_ends.push(text.len());
        }
        ResolvedNames {
            layout: cache.layout(),
            hash: hash_bytes(raw.as_bytes()),
            raw: raw.into(),
            text,
            name_ends,
            ids: cache.node_ids(names),
            enc,
            ends,
            hosts: OnceLock::new(),
            array: OnceLock::new(),
        }
    }

    /// `[name,…]` of every name, encoded.
    fn array(&self) -> &[u8] {
        self.array.get_or_init(|| {
            let mut out = Vec::with_capacity(self.enc.len() + self.len() + 2);
            out.push(b'[');
            for i in 0..self.len() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(self.json(i));
            }
            out.push(b']');
            out
        })
    }

    /// The `{"Host":name,"Score":` prefixes of [`prioritize_reply`].
    fn hosts(&self) -> &(Vec<u8>, Vec<usize>) {
        self.hosts.get_or_init(|| {
            let mut out = Vec::with_capacity(self.enc.len() + 18 * self.len());
            let mut ends = Vec::with_capacity(self.len());
            for i in 0..self.len() {
                out.extend_from_slice(br#"{"Host":"#);
                out.extend_from_slice(self.json(i));
                out.extend_from_slice(br#","Score":"#);
                ends.push(out.len());
            }
            (out, ends)
        })
    }

    /// Name `i` as a JSON string (quotes and escapes included).
    #[inline]
    pub fn json(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.enc[start..self.ends[i]]
    }

    /// The node layout ([`Cache::layout`]) the ids belong to.
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// Name `i`, decoded.
    #[inline]
    pub fn name(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.name_ends[i - 1] };
        &self.text[start..self.name_ends[i]]
    }

    /// Length of the list's JSON text (the memo key).
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// The list's JSON text.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.ends.len()
    }
}

/// The last [`MEMO_ENTRIES`] resolved name lists, most recent first.
#[derive(Debug, Default)]
pub struct NamesMemo {
    entries: Mutex<Vec<Arc<ResolvedNames>>>,
}

impl NamesMemo {
    /// `raw` (a JSON array of names) resolved against `cache`, from the memo when the
    /// same text was resolved under the same node layout.
    pub fn resolve(
        &self,
        raw: &RawValue,
        cache: &Cache,
    ) -> Result<Arc<ResolvedNames>, serde_json::Error> {
        self.resolve_text(raw.get(), cache)
    }

    /// [`NamesMemo::resolve`] of the JSON text `text`.
    pub fn resolve_text(
        &self,
        text: &str,
        cache: &Cache,
    ) -> Result<Arc<ResolvedNames>, serde_json::Error> {
        let hash = hash_bytes(text.as_bytes());
        let layout = cache.layout();
        {
            let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = e
                .iter()
                .position(|r| r.hash == hash && r.layout == layout && *r.raw == *text)
            {
                let hit = e[i].clone();
                e[..=i].rotate_right(1);
                return Ok(hit);
            }
        }
        let names: Vec<Name<'_>> = serde_json::from_str(text)?;
        let r = Arc::new(ResolvedNames::new(&names, cache, text));
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        e.retain(|x| x.layout == layout);
        e.insert(0, r.clone());
        e.truncate(MEMO_ENTRIES);
        Ok(r)
    }
}

impl NamesMemo {
    /// The memoised list (under node layout `layout`) whose JSON text `bytes` starts
    /// with, if any: see [`super::scan`].
    pub fn lookup_prefix(&self, bytes: &[u8], layout: u64) -> Option<Arc<ResolvedNames>> {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let i = e.iter().position(|r| {
            let raw = r.raw.as_bytes();
            // The tail first: lists that differ mostly differ in length or near the end.
            let tail = raw.len().saturating_sub(32);
            r.layout == layout
                && bytes.len() >= raw.len()
                && bytes[tail..raw.len()] == raw[tail..]
                && bytes[..raw.len()] == *raw
        })?;
        let hit = e[i].clone();
        e[..=i].rotate_right(1);
        Some(hit)
    }
}

/// The failed and unresolvable maps of a verdict, by name (sorted, as Go's and
/// serde_json's map encodings are; a repeated name keeps its last entry).
pub fn failure_maps<'a>(
    name: impl Fn(usize) -> &'a str,
    v: &'a Verdicts,
) -> (BTreeMap<&'a str, &'a str>, BTreeMap<&'a str, &'a str>) {
    let mut failed = BTreeMap::new();
    let mut unresolvable = BTreeMap::new();
    for (i, &code) in v.codes.iter().enumerate() {
        match v.text(code) {
            None => {}
            Some((text, true)) => {
                unresolvable.insert(name(i), text.as_str());
            }
            Some((text, false)) => {
                failed.insert(name(i), text.as_str());
            }
        }
    }
    (failed, unresolvable)
}

/// `ExtenderFilterResult` in node-names mode, encoded.
pub fn filter_reply(names: &ResolvedNames, v: &Verdicts) -> Vec<u8> {
    let mut out = Vec::with_capacity(names.enc.len() + 128);
    out.extend_from_slice(br#"{"Nodes":null,"NodeNames":"#);
    if v.codes.iter().all(|&c| c == Verdicts::PASS) {
        // The usual case: kube-scheduler sends the nodes that passed its own filters.
        out.extend_from_slice(names.array());
    } else {
        out.push(b'[');
        let mut first = true;
        for (i, &code) in v.codes.iter().enumerate() {
            if code == Verdicts::PASS {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(names.json(i));
            }
        }
        out.push(b']');
    }
    out.extend_from_slice(br#","FailedNodes":"#);
    let (failed, unresolvable) = failure_maps(|i| names.name(i), v);
    serde_json::to_writer(&mut out, &failed).expect("writing to a Vec");
    out.extend_from_slice(br#","FailedAndUnresolvableNodes":"#);
    serde_json::to_writer(&mut out, &unresolvable).expect("writing to a Vec");
    out.extend_from_slice(br#","Error":""}"#);
    out
}

/// `HostPriorityList`, encoded: `[{"Host": name, "Score": score}, …]`.
pub fn prioritize_reply(names: &ResolvedNames, scores: &[i64]) -> Vec<u8> {
    let (hosts, ends) = names.hosts();
    let mut out = Vec::with_capacity(hosts.len() + 5 * scores.len() + 2);
    out.push(b'[');
    let mut num = itoa_buf();
    let mut start = 0;
    for (i, (&s, &end)) in scores.iter().zip(ends).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&hosts[start..end]);
        start = end;
        if (0..10).contains(&s) {
            out.push(b'0' + s as u8);
        } else {
            out.extend_from_slice(fmt_i64(&mut num, s));
        }
        out.push(b'}');
    }
    out.push(b']');
    out
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// `s` in decimal, written into the end of `buf`.
fn fmt_i64(buf: &mut [u8; 20], s: i64) -> &[u8] {
    let mut u = s.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if s < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_format_like_serde_json() {
        let mut b = itoa_buf();
        for s in [0, 7, 10, -3, i64::MAX, i64::MIN, 1234567] {
            assert_eq!(
                fmt_i64(&mut b, s),
                serde_json::to_string(&s).unwrap().as_bytes()
            );
        }
    }

    #[test]
    fn hash_covers_every_byte_and_the_length() {
        let a = hash_bytes(b"[\"node-00001\",\"node-00002\"]");
        assert_ne!(a, hash_bytes(b"[\"node-00001\",\"node-00003\"]"));
        assert_ne!(hash_bytes(b"abc"), hash_bytes(b"abc\0"));
        assert_eq!(a, hash_bytes(b"[\"node-00001\",\"node-00002\"]"));
    }
}
