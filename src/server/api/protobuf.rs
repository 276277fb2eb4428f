//! Kubernetes protobuf request bodies (`Content-Type: application/vnd.kubernetes.protobuf`).
//!
//! `kubectl create <kind>` (configmap, secret, namespace, deployment, service, job, cronjob,
//! serviceaccount, quota, priorityclass, poddisruptionbudget, role, rolebinding, clusterrole,
//! clusterrolebinding, ingress …) sends its object as protobuf, not JSON, and does not fall back to
//! JSON when the server answers 415. Such a body is the four magic bytes `k8s\0` followed by a
//! `runtime.Unknown` envelope (`typeMeta{apiVersion, kind}`, `raw`, `contentEncoding`,
//! `contentType`) whose `raw` is the protobuf encoding of the object itself.
//!
//! [`decode`] turns such a body into the object's Kubernetes JSON form, exactly as the Go API
//! types marshal it (`encoding/json` rules: `omitempty` drops zero scalars, empty slices/maps and
//! nil pointers, never non-pointer structs; a zero `metav1.Time` is `null`; `[]byte` is base64;
//! `IntOrString` is a number or a string), with `apiVersion` and `kind` from the envelope.
//! E.g. `kubectl create configmap c1 --from-literal=a=b` decodes to
//! `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c1","creationTimestamp":null},"data":{"a":"b"}}`,
//! the same JSON `kubectl create … --dry-run=client -o json` prints.
//!
//! The envelope is read with the prost types of `k8s-pb`. The object itself is read by a small
//! schema-driven decoder: k8s-pb's structs cannot say how a field marshals to JSON (all proto2
//! fields are `Option`s, so `replicas: Some(0)` — a Go pointer, kept — looks like
//! `generation: Some(0)` — a Go value with omitempty, dropped), so a table (the private `schema`
//! module) records, for every field, its number, JSON name, type and Go JSON behaviour. It was
//! generated from the struct tags and Go types of k8s.io/api and k8s.io/apimachinery v0.32.4
//! (Kubernetes 1.32) and cross-checked against their `generated.proto`; to add a kind, add its
//! messages in the same form and a line to `ROOTS`. Fields the table does not know are skipped,
//! as the Go decoder skips them. [`supported_kinds`] lists the kinds.
//!
//! Limits: `resource.Quantity` strings are checked for syntax and passed through, not
//! canonicalized (kubectl already sends the canonical form); non-empty `contentEncoding` is
//! rejected.

use base64::Engine as _;
use prost::Message as _;
use serde_json::{Map, Value};

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Nesting deeper than this is refused (the schema itself is far shallower).
const MAX_DEPTH: usize = 48;

/// Why a protobuf body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body is empty.
    #[error("empty request body")]
    Empty,
    /// The body does not start with the `k8s\0` magic bytes.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix \"k8s\\x00\""
    )]
    BadMagic,
    /// The `runtime.Unknown` envelope is malformed or incomplete.
    #[error("invalid protobuf envelope (runtime.Unknown): {0}")]
    Envelope(String),
    /// The envelope's `contentEncoding` is set (compressed `raw` is not supported).
    #[error(
        "unsupported contentEncoding {0:?} in protobuf envelope: only unencoded raw data is supported"
    )]
    UnsupportedEncoding(String),
    /// The envelope's `contentType` names something other than protobuf.
    #[error(
        "unsupported contentType {0:?} in protobuf envelope: expected \"application/vnd.kubernetes.protobuf\""
    )]
    UnsupportedContentType(String),
    /// The object bytes are not a valid protobuf encoding of the claimed kind.
    #[error("cannot decode {kind} from protobuf: {msg}")]
    Object {
        /// The kind named by the envelope.
        kind: String,
        /// What is wrong, with the JSON path of the offending field.
        msg: String,
    },
    /// The envelope names a kind this decoder has no schema for (the server answers 415).
    #[error("protobuf is not supported for {kind} in {api_version}; send application/json")]
    UnsupportedKind {
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
    },
}

/// Whether [`decode`] understands objects of this apiVersion and kind.
pub fn is_supported(api_version: &str, kind: &str) -> bool {
    schema_for(api_version, kind).is_some()
}

/// Every (apiVersion, kind) that [`decode`] understands.
pub fn supported_kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    schema::ROOTS.iter().map(|(v, k, _)| (*v, *k))
}

/// Decodes a `k8s\0` + runtime.Unknown body into the object's Kubernetes JSON form (with apiVersion and kind).
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    if body.is_empty() {
        return Err(ProtobufError::Empty);
    }
    let Some(rest) = body.strip_prefix(MAGIC.as_slice()) else {
        return Err(ProtobufError::BadMagic);
    };
    if rest.is_empty() {
        return Err(ProtobufError::Envelope(
            "empty body after the k8s\\x00 prefix".into(),
        ));
    }
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(rest)
        .map_err(|e| ProtobufError::Envelope(e.to_string()))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if kind.is_empty() {
        return Err(ProtobufError::Envelope("typeMeta.kind is missing".into()));
    }
    if api_version.is_empty() {
        return Err(ProtobufError::Envelope(format!(
            "typeMeta.apiVersion is missing (kind {kind})"
        )));
    }
    let encoding = unknown.content_encoding.unwrap_or_default();
    if !encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(encoding));
    }
    let content_type = unknown.content_type.unwrap_or_default();
    if !content_type.is_empty() && content_type != MEDIA_TYPE {
        return Err(ProtobufError::UnsupportedContentType(content_type));
    }
    let Some(msg) = schema_for(&api_version, &kind) else {
        return Err(ProtobufError::UnsupportedKind { api_version, kind });
    };
    let raw = unknown.raw.unwrap_or_default();
    let mut obj = message(msg, &raw, 0).map_err(|bad| ProtobufError::Object {
        kind: kind.clone(),
        msg: bad.to_string(),
    })?;
    obj.insert("apiVersion".into(), Value::String(api_version));
    obj.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(obj))
}

fn schema_for(api_version: &str, kind: &str) -> Option<&'static Message> {
    schema::ROOTS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, m)| *m)
}

// ---------------------------------------------------------------------------------------------
// Schema types.

/// How one field is encoded on the wire and rendered in JSON.
#[derive(Debug)]
enum Ty {
    /// `string` (and string-based Go types).
    Str,
    /// `bool`.
    Bool,
    /// `int32`.
    I32,
    /// `int64`.
    I64,
    /// `[]byte`, base64 in JSON.
    Bytes,
    /// `metav1.Time`: RFC 3339 seconds, or `null` when zero.
    Time,
    /// `metav1.FieldsV1`: its raw bytes are JSON.
    FieldsV1,
    /// `resource.Quantity`: a string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrStr,
    /// A nested message.
    Msg(&'static Message),
    /// A Go slice of the element type (repeated field).
    List(&'static Ty),
    /// A Go `map[string]V` (proto map with string keys).
    Map(&'static Ty),
}

/// One field: number, JSON name, type, flags (`O` omitempty, `P` Go pointer, `I` JSON-inlined).
#[derive(Debug)]
struct F(u32, &'static str, Ty, u8);

/// One message type.
#[derive(Debug)]
struct Message {
    name: &'static str,
    fields: &'static [F],
}

const O: u8 = 1;
const P: u8 = 2;
const OP: u8 = O | P;
const I: u8 = 4;

// ---------------------------------------------------------------------------------------------
// Wire reading.

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// One undecoded occurrence of a field.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err("truncated varint".into());
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err("varint overflows 64 bits".into());
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint overflows 64 bits".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| "truncated data".to_string())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Reads a field key: (field number, wire type).
    fn key(&mut self) -> Result<(u32, u8), String> {
        let k = self.varint()?;
        let field = k >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(format!("invalid field number {field}"));
        }
        Ok((field as u32, (k & 7) as u8))
    }

    /// Reads a field value of the given wire type.
    fn value(&mut self, field: u32, wire: u8) -> Result<Raw<'a>, String> {
        match wire {
            VARINT => Ok(Raw::Varint(self.varint()?)),
            FIXED64 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Ok(Raw::Varint(u64::from_le_bytes(a)))
            }
            LEN => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| "length too large".to_string())?;
                Ok(Raw::Bytes(self.take(n)?))
            }
            FIXED32 => {
                let b = self.take(4)?;
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                Ok(Raw::Varint(u64::from(u32::from_le_bytes(a))))
            }
            3 | 4 => Err(format!("field {field}: protobuf groups are not supported")),
            w => Err(format!("field {field}: invalid wire type {w}")),
        }
    }
}

/// The wire type a (non-repeated) value of this type must have.
fn wire_of(ty: &Ty) -> u8 {
    match ty {
        Ty::Bool | Ty::I32 | Ty::I64 => VARINT,
        _ => LEN,
    }
}

fn wire_name(w: u8) -> &'static str {
    match w {
        VARINT => "varint",
        FIXED64 => "fixed64",
        LEN => "length-delimited",
        FIXED32 => "fixed32",
        _ => "invalid",
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding a message into Go-shaped JSON.

/// Decodes `data` as `msg` into a JSON object; errors carry the JSON path of the bad field.
fn message(msg: &'static Message, data: &[u8], depth: usize) -> Result<Map<String, Value>, Bad> {
    if depth > MAX_DEPTH {
        return Err("message nesting too deep".into());
    }
    let mut seen: Vec<Vec<Raw<'_>>> = vec![Vec::new(); msg.fields.len()];
    let mut r = Reader::new(data);
    while !r.done() {
        let (num, wire) = r.key()?;
        let val = r.value(num, wire)?;
        let Some(idx) = msg.fields.iter().position(|f| f.0 == num) else {
            continue; // unknown field: skipped, as the Go decoder does
        };
        let f = &msg.fields[idx];
        let expected = match &f.2 {
            Ty::List(elem) => wire_of(elem),
            ty => wire_of(ty),
        };
        let packed = matches!(&f.2, Ty::List(e) if wire_of(e) == VARINT) && wire == LEN;
        if wire != expected && !packed {
            let bad = Bad::from(format!(
                "expected {} wire type for field {} of {}, got {}",
                wire_name(expected),
                num,
                msg.name,
                wire_name(wire)
            ));
            return Err(bad.within(f.1));
        }
        seen[idx].push(val);
    }
    let mut out = Map::new();
    for (f, vals) in msg.fields.iter().zip(&seen) {
        field(f, vals, depth, &mut out).map_err(|e| e.within(f.1))?;
    }
    Ok(out)
}

/// A decoding error inside the object, with the JSON path of the field it concerns.
#[derive(Debug)]
struct Bad {
    path: String,
    msg: String,
}

impl Bad {
    /// The same error, one level further out (`seg` is a field name or an `[index]`).
    fn within(mut self, seg: &str) -> Bad {
        if !seg.is_empty() {
            self.path = if self.path.is_empty() {
                seg.to_string()
            } else if self.path.starts_with('[') {
                format!("{seg}{}", self.path)
            } else {
                format!("{seg}.{}", self.path)
            };
        }
        self
    }
}

impl From<String> for Bad {
    fn from(msg: String) -> Self {
        Bad {
            path: String::new(),
            msg,
        }
    }
}

impl From<&str> for Bad {
    fn from(msg: &str) -> Self {
        msg.to_string().into()
    }
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.msg)
        } else {
            write!(f, "{}: {}", self.path, self.msg)
        }
    }
}

/// Renders one field of a decoded message into `out`, following Go's encoding/json rules.
fn field(f: &F, vals: &[Raw<'_>], depth: usize, out: &mut Map<String, Value>) -> Result<(), Bad> {
    let F(_, name, ty, flags) = f;
    let omitempty = flags & O != 0;
    let pointer = flags & P != 0;
    let inline = flags & I != 0;
    let key = (*name).to_string();
    match ty {
        Ty::List(elem) => {
            if vals.is_empty() {
                if !omitempty {
                    out.insert(key, Value::Null);
                }
                return Ok(());
            }
            let mut items = Vec::new();
            for v in vals {
                match (v, wire_of(elem)) {
                    (Raw::Bytes(b), VARINT) => {
                        let mut r = Reader::new(b);
                        while !r.done() {
                            let n = r.varint()?;
                            items.push(scalar(elem, Raw::Varint(n))?);
                        }
                    }
                    _ => {
                        let i = items.len();
                        items.push(
                            value(elem, Some(*v), depth)
                                .map_err(|e| e.within(&format!("[{i}]")))?,
                        );
                    }
                }
            }
            out.insert(key, Value::Array(items));
        }
        Ty::Map(val_ty) => {
            if vals.is_empty() {
                if !omitempty {
                    out.insert(key, Value::Null);
                }
                return Ok(());
            }
            let mut m = Map::new();
            for v in vals {
                let Raw::Bytes(entry) = v else {
                    return Err("map entry is not length-delimited".into());
                };
                let (k, v) = map_entry(val_ty, entry, depth)?;
                m.insert(k, v);
            }
            out.insert(key, Value::Object(m));
        }
        Ty::Bytes if !pointer => match vals.last() {
            None if omitempty => {}
            None => {
                out.insert(key, Value::Null);
            }
            Some(Raw::Bytes(b)) if b.is_empty() && omitempty => {}
            Some(v) => {
                out.insert(key, value(ty, Some(*v), depth)?);
            }
        },
        Ty::Msg(m) if !pointer => {
            let data = merged(vals);
            let obj = message(m, &data, depth + 1)?;
            if inline {
                out.extend(obj);
            } else {
                out.insert(key, Value::Object(obj));
            }
        }
        _ if pointer => {
            if vals.is_empty() {
                if !omitempty {
                    out.insert(key, Value::Null);
                }
                return Ok(());
            }
            let v = match ty {
                Ty::Msg(_) | Ty::Time | Ty::FieldsV1 | Ty::Quantity | Ty::IntOrStr => {
                    value(ty, Some(Raw::Bytes(&merged(vals))), depth)?
                }
                _ => value(ty, vals.last().copied(), depth)?,
            };
            out.insert(key, v);
        }
        Ty::Time | Ty::FieldsV1 | Ty::Quantity | Ty::IntOrStr => {
            // Non-pointer structs: always emitted, omitempty or not.
            let data = merged(vals);
            out.insert(key, value(ty, Some(Raw::Bytes(&data)), depth)?);
        }
        _ => {
            let v = value(ty, vals.last().copied(), depth)?;
            let zero = match &v {
                Value::String(s) => s.is_empty(),
                Value::Bool(b) => !b,
                Value::Number(n) => n.as_i64() == Some(0),
                _ => false,
            };
            if !(omitempty && zero) {
                out.insert(key, v);
            }
        }
    }
    Ok(())
}

/// All occurrences of a message field, concatenated (protobuf merge semantics).
fn merged(vals: &[Raw<'_>]) -> Vec<u8> {
    let mut data = Vec::new();
    for v in vals {
        if let Raw::Bytes(b) = v {
            data.extend_from_slice(b);
        }
    }
    data
}

/// Renders one value (`None` = absent, rendered as Go's zero value).
fn value(ty: &Ty, raw: Option<Raw<'_>>, depth: usize) -> Result<Value, Bad> {
    let bytes = match raw {
        Some(Raw::Bytes(b)) => b,
        Some(v @ Raw::Varint(_)) => return Ok(scalar(ty, v)?),
        None => match ty {
            Ty::Bool | Ty::I32 | Ty::I64 => return Ok(scalar(ty, Raw::Varint(0))?),
            _ => &[],
        },
    };
    Ok(match ty {
        Ty::Str => Value::String(utf8(bytes)?),
        Ty::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        Ty::Bool | Ty::I32 | Ty::I64 => {
            return Err("expected a varint, got length-delimited data".into());
        }
        Ty::Msg(m) => Value::Object(message(m, bytes, depth + 1)?),
        Ty::Time => time(bytes)?,
        Ty::FieldsV1 => fields_v1(bytes)?,
        Ty::Quantity => quantity(bytes)?,
        Ty::IntOrStr => int_or_string(bytes)?,
        Ty::List(_) | Ty::Map(_) => return Err("nested repeated field".into()),
    })
}

fn scalar(ty: &Ty, raw: Raw<'_>) -> Result<Value, String> {
    let Raw::Varint(v) = raw else {
        return Err("expected a varint".into());
    };
    Ok(match ty {
        Ty::Bool => Value::Bool(v != 0),
        Ty::I32 => Value::from(v as i32),
        Ty::I64 => Value::from(v as i64),
        _ => return Err("expected length-delimited data, got a varint".into()),
    })
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "string is not valid UTF-8".to_string())
}

/// Decodes one map entry (key = field 1, value = field 2).
fn map_entry(val_ty: &Ty, entry: &[u8], depth: usize) -> Result<(String, Value), Bad> {
    let mut key = String::new();
    let mut val: Option<Raw<'_>> = None;
    let mut r = Reader::new(entry);
    while !r.done() {
        let (num, wire) = r.key()?;
        let v = r.value(num, wire)?;
        match num {
            1 => match v {
                Raw::Bytes(b) if wire == LEN => {
                    key = utf8(b).map_err(|e| format!("map key: {e}"))?
                }
                _ => return Err("map key is not a string".into()),
            },
            2 => {
                if wire != wire_of(val_ty) {
                    return Err(
                        format!("map value: unexpected {} wire type", wire_name(wire)).into(),
                    );
                }
                val = Some(v);
            }
            _ => {}
        }
    }
    let v = value(val_ty, val, depth).map_err(|e| e.within(&format!("[{key:?}]")))?;
    Ok((key, v))
}

/// `metav1.Time`: empty = zero time = `null`; else `{seconds = 1, nanos = 2}` (nanos dropped, as Go does).
fn time(bytes: &[u8]) -> Result<Value, String> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let mut seconds: i64 = 0;
    let mut r = Reader::new(bytes);
    while !r.done() {
        let (num, wire) = r.key()?;
        let v = r.value(num, wire)?;
        if num == 1 {
            match v {
                Raw::Varint(s) if wire == VARINT => seconds = s as i64,
                _ => return Err("time seconds is not a varint".into()),
            }
        }
    }
    format_rfc3339(seconds)
        .map(Value::String)
        .ok_or_else(|| format!("time {seconds}s since the epoch is out of range"))
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`; `None` outside years 0..=9999.
fn format_rfc3339(secs: i64) -> Option<String> {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant), valid for the whole i64 day range used here.
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe.checked_add(era.checked_mul(400)?)? + i64::from(m <= 2);
    if !(0..=9999).contains(&y) {
        return None;
    }
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    ))
}

/// `metav1.FieldsV1`: field 1 holds raw JSON.
fn fields_v1(bytes: &[u8]) -> Result<Value, String> {
    let mut raw: Option<&[u8]> = None;
    let mut r = Reader::new(bytes);
    while !r.done() {
        let (num, wire) = r.key()?;
        if let (1, Raw::Bytes(b)) = (num, r.value(num, wire)?) {
            raw = Some(b);
        }
    }
    match raw {
        None => Ok(Value::Null),
        Some(b) => serde_json::from_slice(b).map_err(|e| format!("fieldsV1 is not JSON: {e}")),
    }
}

/// `resource.Quantity`: field 1 is the string form; absent = zero = `"0"`.
fn quantity(bytes: &[u8]) -> Result<Value, String> {
    let mut s: Option<String> = None;
    let mut r = Reader::new(bytes);
    while !r.done() {
        let (num, wire) = r.key()?;
        if let (1, Raw::Bytes(b)) = (num, r.value(num, wire)?) {
            s = Some(utf8(b)?);
        }
    }
    match s {
        None => Ok(Value::String("0".into())),
        Some(q) if valid_quantity(&q) => Ok(Value::String(q)),
        Some(q) => Err(format!(
            "quantity {q:?} must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )),
    }
}

/// The syntax `resource.ParseQuantity` accepts: number, then a binary-SI, decimal-SI or exponent suffix.
fn valid_quantity(q: &str) -> bool {
    let s = q.strip_prefix(['+', '-']).unwrap_or(q);
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_len);
    let digits = num.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || num.matches('.').count() > 1 {
        return false;
    }
    match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        _ => {
            let Some(exp) = suffix.strip_prefix(['e', 'E']) else {
                return false;
            };
            let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit())
        }
    }
}

/// `intstr.IntOrString`: `{type = 1 (0 int, 1 string), intVal = 2, strVal = 3}`.
fn int_or_string(bytes: &[u8]) -> Result<Value, String> {
    let (mut ty, mut int_val, mut str_val) = (0u64, 0i32, String::new());
    let mut r = Reader::new(bytes);
    while !r.done() {
        let (num, wire) = r.key()?;
        match (num, r.value(num, wire)?) {
            (1, Raw::Varint(v)) if wire == VARINT => ty = v,
            (2, Raw::Varint(v)) if wire == VARINT => int_val = v as i32,
            (3, Raw::Bytes(b)) if wire == LEN => str_val = utf8(b)?,
            (1..=3, _) => return Err("IntOrString field has the wrong wire type".into()),
            _ => {}
        }
    }
    match ty {
        0 => Ok(Value::from(int_val)),
        1 => Ok(Value::String(str_val)),
        t => Err(format!("impossible IntOrString.Type {t}")),
    }
}

/// The message table: generated from the Go types of k8s.io/api and k8s.io/apimachinery v0.32.4
/// (json tags, pointer-ness, proto field numbers), one `F(number, json name, type, flags)` per field,
/// in Go struct order. Flags: `O` omitempty, `P` Go pointer, `I` inlined into the parent object.
#[rustfmt::skip]
mod schema {
    use super::{F, Message, Ty::*, I, O, OP, P};

    static CONDITION: Message = Message { name: "Condition", fields: &[
        F(1, "type", Str, 0), F(2, "status", Str, 0), F(3, "observedGeneration", I64, O),
        F(4, "lastTransitionTime", Time, 0), F(5, "reason", Str, 0), F(6, "message", Str, 0),
    ] };
    static LABEL_SELECTOR: Message = Message { name: "LabelSelector", fields: &[
        F(1, "matchLabels", Map(&Str), O), F(2, "matchExpressions", List(&Msg(&LABEL_SELECTOR_REQUIREMENT)), O),
    ] };
    static LABEL_SELECTOR_REQUIREMENT: Message = Message { name: "LabelSelectorRequirement", fields: &[
        F(1, "key", Str, 0), F(2, "operator", Str, 0), F(3, "values", List(&Str), O),
    ] };
    static MANAGED_FIELDS_ENTRY: Message = Message { name: "ManagedFieldsEntry", fields: &[
        F(1, "manager", Str, O), F(2, "operation", Str, O), F(3, "apiVersion", Str, O), F(4, "time", Time, OP),
        F(6, "fieldsType", Str, O), F(7, "fieldsV1", FieldsV1, OP), F(8, "subresource", Str, O),
    ] };
    static OBJECT_META: Message = Message { name: "ObjectMeta", fields: &[
        F(1, "name", Str, O), F(2, "generateName", Str, O), F(3, "namespace", Str, O), F(4, "selfLink", Str, O),
        F(5, "uid", Str, O), F(6, "resourceVersion", Str, O), F(7, "generation", I64, O),
        F(8, "creationTimestamp", Time, O), F(9, "deletionTimestamp", Time, OP),
        F(10, "deletionGracePeriodSeconds", I64, OP), F(11, "labels", Map(&Str), O),
        F(12, "annotations", Map(&Str), O), F(13, "ownerReferences", List(&Msg(&OWNER_REFERENCE)), O),
        F(14, "finalizers", List(&Str), O), F(17, "managedFields", List(&Msg(&MANAGED_FIELDS_ENTRY)), O),
    ] };
    static OWNER_REFERENCE: Message = Message { name: "OwnerReference", fields: &[
        F(5, "apiVersion", Str, 0), F(1, "kind", Str, 0), F(3, "name", Str, 0), F(4, "uid", Str, 0),
        F(6, "controller", Bool, OP), F(7, "blockOwnerDeletion", Bool, OP),
    ] };
    static DEPLOYMENT: Message = Message { name: "Deployment", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "spec", Msg(&DEPLOYMENT_SPEC), O),
        F(3, "status", Msg(&DEPLOYMENT_STATUS), O),
    ] };
    static DEPLOYMENT_CONDITION: Message = Message { name: "DeploymentCondition", fields: &[
        F(1, "type", Str, 0), F(2, "status", Str, 0), F(6, "lastUpdateTime", Time, O),
        F(7, "lastTransitionTime", Time, O), F(4, "reason", Str, O), F(5, "message", Str, O),
    ] };
    static DEPLOYMENT_SPEC: Message = Message { name: "DeploymentSpec", fields: &[
        F(1, "replicas", I32, OP), F(2, "selector", Msg(&LABEL_SELECTOR), P),
        F(3, "template", Msg(&POD_TEMPLATE_SPEC), 0), F(4, "strategy", Msg(&DEPLOYMENT_STRATEGY), O),
        F(5, "minReadySeconds", I32, O), F(6, "revisionHistoryLimit", I32, OP), F(7, "paused", Bool, O),
        F(9, "progressDeadlineSeconds", I32, OP),
    ] };
    static DEPLOYMENT_STATUS: Message = Message { name: "DeploymentStatus", fields: &[
        F(1, "observedGeneration", I64, O), F(2, "replicas", I32, O), F(3, "updatedReplicas", I32, O),
        F(7, "readyReplicas", I32, O), F(4, "availableReplicas", I32, O), F(5, "unavailableReplicas", I32, O),
        F(6, "conditions", List(&Msg(&DEPLOYMENT_CONDITION)), O), F(8, "collisionCount", I32, OP),
    ] };
    static DEPLOYMENT_STRATEGY: Message = Message { name: "DeploymentStrategy", fields: &[
        F(1, "type", Str, O), F(2, "rollingUpdate", Msg(&ROLLING_UPDATE_DEPLOYMENT), OP),
    ] };
    static ROLLING_UPDATE_DEPLOYMENT: Message = Message { name: "RollingUpdateDeployment", fields: &[
        F(1, "maxUnavailable", IntOrStr, OP), F(2, "maxSurge", IntOrStr, OP),
    ] };
    static CRON_JOB: Message = Message { name: "CronJob", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "spec", Msg(&CRON_JOB_SPEC), O),
        F(3, "status", Msg(&CRON_JOB_STATUS), O),
    ] };
    static CRON_JOB_SPEC: Message = Message { name: "CronJobSpec", fields: &[
        F(1, "schedule", Str, 0), F(8, "timeZone", Str, OP), F(2, "startingDeadlineSeconds", I64, OP),
        F(3, "concurrencyPolicy", Str, O), F(4, "suspend", Bool, OP),
        F(5, "jobTemplate", Msg(&JOB_TEMPLATE_SPEC), 0), F(6, "successfulJobsHistoryLimit", I32, OP),
        F(7, "failedJobsHistoryLimit", I32, OP),
    ] };
    static CRON_JOB_STATUS: Message = Message { name: "CronJobStatus", fields: &[
        F(1, "active", List(&Msg(&OBJECT_REFERENCE)), O), F(4, "lastScheduleTime", Time, OP),
        F(5, "lastSuccessfulTime", Time, OP),
    ] };
    static JOB: Message = Message { name: "Job", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "spec", Msg(&JOB_SPEC), O),
        F(3, "status", Msg(&JOB_STATUS), O),
    ] };
    static JOB_CONDITION: Message = Message { name: "JobCondition", fields: &[
        F(1, "type", Str, 0), F(2, "status", Str, 0), F(3, "lastProbeTime", Time, O),
        F(4, "lastTransitionTime", Time, O), F(5, "reason", Str, O), F(6, "message", Str, O),
    ] };
    static JOB_SPEC: Message = Message { name: "JobSpec", fields: &[
        F(1, "parallelism", I32, OP), F(2, "completions", I32, OP), F(3, "activeDeadlineSeconds", I64, OP),
        F(11, "podFailurePolicy", Msg(&POD_FAILURE_POLICY), OP), F(16, "successPolicy", Msg(&SUCCESS_POLICY), OP),
        F(7, "backoffLimit", I32, OP), F(12, "backoffLimitPerIndex", I32, OP), F(13, "maxFailedIndexes", I32, OP),
        F(4, "selector", Msg(&LABEL_SELECTOR), OP), F(5, "manualSelector", Bool, OP),
        F(6, "template", Msg(&POD_TEMPLATE_SPEC), 0), F(8, "ttlSecondsAfterFinished", I32, OP),
        F(9, "completionMode", Str, OP), F(10, "suspend", Bool, OP), F(14, "podReplacementPolicy", Str, OP),
        F(15, "managedBy", Str, OP),
    ] };
    static JOB_STATUS: Message = Message { name: "JobStatus", fields: &[
        F(1, "conditions", List(&Msg(&JOB_CONDITION)), O), F(2, "startTime", Time, OP),
        F(3, "completionTime", Time, OP), F(4, "active", I32, O), F(5, "succeeded", I32, O),
        F(6, "failed", I32, O), F(11, "terminating", I32, OP), F(7, "completedIndexes", Str, O),
        F(10, "failedIndexes", Str, OP), F(8, "uncountedTerminatedPods", Msg(&UNCOUNTED_TERMINATED_PODS), OP),
        F(9, "ready", I32, OP),
    ] };
    static JOB_TEMPLATE_SPEC: Message = Message { name: "JobTemplateSpec", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "spec", Msg(&JOB_SPEC), O),
    ] };
    static POD_FAILURE_POLICY: Message = Message { name: "PodFailurePolicy", fields: &[
        F(1, "rules", List(&Msg(&POD_FAILURE_POLICY_RULE)), 0),
    ] };
    static POD_FAILURE_POLICY_ON_EXIT_CODES_REQUIREMENT: Message = Message { name: "PodFailurePolicyOnExitCodesRequirement", fields: &[
        F(1, "containerName", Str, OP), F(2, "operator", Str, 0), F(3, "values", List(&I32), 0),
    ] };
    static POD_FAILURE_POLICY_ON_POD_CONDITIONS_PATTERN: Message = Message { name: "PodFailurePolicyOnPodConditionsPattern", fields: &[
        F(1, "type", Str, 0), F(2, "status", Str, 0),
    ] };
    static POD_FAILURE_POLICY_RULE: Message = Message { name: "PodFailurePolicyRule", fields: &[
        F(1, "action", Str, 0), F(2, "onExitCodes", Msg(&POD_FAILURE_POLICY_ON_EXIT_CODES_REQUIREMENT), OP),
        F(3, "onPodConditions", List(&Msg(&POD_FAILURE_POLICY_ON_POD_CONDITIONS_PATTERN)), O),
    ] };
    static SUCCESS_POLICY: Message = Message { name: "SuccessPolicy", fields: &[
        F(1, "rules", List(&Msg(&SUCCESS_POLICY_RULE)), 0),
    ] };
    static SUCCESS_POLICY_RULE: Message = Message { name: "SuccessPolicyRule", fields: &[
        F(1, "succeededIndexes", Str, OP), F(2, "succeededCount", I32, OP),
    ] };
    static UNCOUNTED_TERMINATED_PODS: Message = Message { name: "UncountedTerminatedPods", fields: &[
        F(1, "succeeded", List(&Str), O), F(2, "failed", List(&Str), O),
    ] };
    static AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE: Message = Message { name: "AWSElasticBlockStoreVolumeSource", fields: &[
        F(1, "volumeID", Str, 0), F(2, "fsType", Str, O), F(3, "partition", I32, O), F(4, "readOnly", Bool, O),
    ] };
    static AFFINITY: Message = Message { name: "Affinity", fields: &[
        F(1, "nodeAffinity", Msg(&NODE_AFFINITY), OP), F(2, "podAffinity", Msg(&POD_AFFINITY), OP),
        F(3, "podAntiAffinity", Msg(&POD_ANTI_AFFINITY), OP),
    ] };
    static APP_ARMOR_PROFILE: Message = Message { name: "AppArmorProfile", fields: &[
        F(1, "type", Str, 0), F(2, "localhostProfile", Str, OP),
    ] };
    static AZURE_DISK_VOLUME_SOURCE: Message = Message { name: "AzureDiskVolumeSource", fields: &[
        F(1, "diskName", Str, 0), F(2, "diskURI", Str, 0), F(3, "cachingMode", Str, OP), F(4, "fsType", Str, OP),
        F(5, "readOnly", Bool, OP), F(6, "kind", Str, OP),
    ] };
    static AZURE_FILE_VOLUME_SOURCE: Message = Message { name: "AzureFileVolumeSource", fields: &[
        F(1, "secretName", Str, 0), F(2, "shareName", Str, 0), F(3, "readOnly", Bool, O),
    ] };
    static CSI_VOLUME_SOURCE: Message = Message { name: "CSIVolumeSource", fields: &[
        F(1, "driver", Str, 0), F(2, "readOnly", Bool, OP), F(3, "fsType", Str, OP),
        F(4, "volumeAttributes", Map(&Str), O), F(5, "nodePublishSecretRef", Msg(&LOCAL_OBJECT_REFERENCE), OP),
    ] };
    static CAPABILITIES: Message = Message { name: "Capabilities", fields: &[
        F(1, "add", List(&Str), O), F(2, "drop", List(&Str), O),
    ] };
    static CEPH_FS_VOLUME_SOURCE: Message = Message { name: "CephFSVolumeSource", fields: &[
        F(1, "monitors", List(&Str), 0), F(2, "path", Str, O), F(3, "user", Str, O), F(4, "secretFile", Str, O),
        F(5, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE), OP), F(6, "readOnly", Bool, O),
    ] };
    static CINDER_VOLUME_SOURCE: Message = Message { name: "CinderVolumeSource", fields: &[
        F(1, "volumeID", Str, 0), F(2, "fsType", Str, O), F(3, "readOnly", Bool, O),
        F(4, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE), OP),
    ] };
    static CLIENT_IP_CONFIG: Message = Message { name: "ClientIPConfig", fields: &[
        F(1, "timeoutSeconds", I32, OP),
    ] };
    static CLUSTER_TRUST_BUNDLE_PROJECTION: Message = Message { name: "ClusterTrustBundleProjection", fields: &[
        F(1, "name", Str, OP), F(2, "signerName", Str, OP), F(3, "labelSelector", Msg(&LABEL_SELECTOR), OP),
        F(5, "optional", Bool, OP), F(4, "path", Str, 0),
    ] };
    static CONFIG_MAP: Message = Message { name: "ConfigMap", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(4, "immutable", Bool, OP), F(2, "data", Map(&Str), O),
        F(3, "binaryData", Map(&Bytes), O),
    ] };
    static CONFIG_MAP_ENV_SOURCE: Message = Message { name: "ConfigMapEnvSource", fields: &[
        F(1, "", Msg(&LOCAL_OBJECT_REFERENCE), I), F(2, "optional", Bool, OP),
    ] };
    static CONFIG_MAP_KEY_SELECTOR: Message = Message { name: "ConfigMapKeySelector", fields: &[
        F(1, "", Msg(&LOCAL_OBJECT_REFERENCE), I), F(2, "key", Str, 0), F(3, "optional", Bool, OP),
    ] };
    static CONFIG_MAP_PROJECTION: Message = Message { name: "ConfigMapProjection", fields: &[
        F(1, "", Msg(&LOCAL_OBJECT_REFERENCE), I), F(2, "items", List(&Msg(&KEY_TO_PATH)), O),
        F(4, "optional", Bool, OP),
    ] };
    static CONFIG_MAP_VOLUME_SOURCE: Message = Message { name: "ConfigMapVolumeSource", fields: &[
        F(1, "", Msg(&LOCAL_OBJECT_REFERENCE), I), F(2, "items", List(&Msg(&KEY_TO_PATH)), O),
        F(3, "defaultMode", I32, OP), F(4, "optional", Bool, OP),
    ] };
    static CONTAINER: Message = Message { name: "Container", fields: &[
        F(1, "name", Str, 0), F(2, "image", Str, O), F(3, "command", List(&Str), O), F(4, "args", List(&Str), O),
        F(5, "workingDir", Str, O), F(6, "ports", List(&Msg(&CONTAINER_PORT)), O),
        F(19, "envFrom", List(&Msg(&ENV_FROM_SOURCE)), O), F(7, "env", List(&Msg(&ENV_VAR)), O),
        F(8, "resources", Msg(&RESOURCE_REQUIREMENTS), O),
        F(23, "resizePolicy", List(&Msg(&CONTAINER_RESIZE_POLICY)), O), F(24, "restartPolicy", Str, OP),
        F(9, "volumeMounts", List(&Msg(&VOLUME_MOUNT)), O), F(21, "volumeDevices", List(&Msg(&VOLUME_DEVICE)), O),
        F(10, "livenessProbe", Msg(&PROBE), OP), F(11, "readinessProbe", Msg(&PROBE), OP),
        F(22, "startupProbe", Msg(&PROBE), OP), F(12, "lifecycle", Msg(&LIFECYCLE), OP),
        F(13, "terminationMessagePath", Str, O), F(20, "terminationMessagePolicy", Str, O),
        F(14, "imagePullPolicy", Str, O), F(15, "securityContext", Msg(&SECURITY_CONTEXT), OP),
        F(16, "stdin", Bool, O), F(17, "stdinOnce", Bool, O), F(18, "tty", Bool, O),
    ] };
    static CONTAINER_PORT: Message = Message { name: "ContainerPort", fields: &[
        F(1, "name", Str, O), F(2, "hostPort", I32, O), F(3, "containerPort", I32, 0), F(4, "protocol", Str, O),
        F(5, "hostIP", Str, O),
    ] };
    static CONTAINER_RESIZE_POLICY: Message = Message { name: "ContainerResizePolicy", fields: &[
        F(1, "resourceName", Str, 0), F(2, "restartPolicy", Str, 0),
    ] };
    static CONTAINER_STATE: Message = Message { name: "ContainerState", fields: &[
        F(1, "waiting", Msg(&CONTAINER_STATE_WAITING), OP), F(2, "running", Msg(&CONTAINER_STATE_RUNNING), OP),
        F(3, "terminated", Msg(&CONTAINER_STATE_TERMINATED), OP),
    ] };
    static CONTAINER_STATE_RUNNING: Message = Message { name: "ContainerStateRunning", fields: &[
        F(1, "startedAt", Time, O),
    ] };
    static CONTAINER_STATE_TERMINATED: Message = Message { name: "ContainerStateTerminated", fields: &[
        F(1, "exitCode", I32, 0), F(2, "signal", I32, O), F(3, "reason", Str, O), F(4, "message", Str, O),
        F(5, "startedAt", Time, O), F(6, "finishedAt", Time, O), F(7, "containerID", Str, O),
    ] };
    static CONTAINER_STATE_WAITING: Message = Message { name: "ContainerStateWaiting", fields: &[
        F(1, "reason", Str, O), F(2, "message", Str, O),
    ] };
    static CONTAINER_STATUS: Message = Message { name: "ContainerStatus", fields: &[
        F(1, "name", Str, 0), F(2, "state", Msg(&CONTAINER_STATE), O),
        F(3, "lastState", Msg(&CONTAINER_STATE), O), F(4, "ready", Bool, 0), F(5, "restartCount", I32, 0),
        F(6, "image", Str, 0), F(7, "imageID", Str, 0), F(8, "containerID", Str, O), F(9, "started", Bool, OP),
        F(10, "allocatedResources", Map(&Quantity), O), F(11, "resources", Msg(&RESOURCE_REQUIREMENTS), OP),
        F(12, "volumeMounts", List(&Msg(&VOLUME_MOUNT_STATUS)), O), F(13, "user", Msg(&CONTAINER_USER), OP),
        F(14, "allocatedResourcesStatus", List(&Msg(&RESOURCE_STATUS)), O),
    ] };
    static CONTAINER_USER: Message = Message { name: "ContainerUser", fields: &[
        F(1, "linux", Msg(&LINUX_CONTAINER_USER), OP),
    ] };
    static DOWNWARD_API_PROJECTION: Message = Message { name: "DownwardAPIProjection", fields: &[
        F(1, "items", List(&Msg(&DOWNWARD_API_VOLUME_FILE)), O),
    ] };
    static DOWNWARD_API_VOLUME_FILE: Message = Message { name: "DownwardAPIVolumeFile", fields: &[
        F(1, "path", Str, 0), F(2, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR), OP),
        F(3, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR), OP), F(4, "mode", I32, OP),
    ] };
    static DOWNWARD_API_VOLUME_SOURCE: Message = Message { name: "DownwardAPIVolumeSource", fields: &[
        F(1, "items", List(&Msg(&DOWNWARD_API_VOLUME_FILE)), O), F(2, "defaultMode", I32, OP),
    ] };
    static EMPTY_DIR_VOLUME_SOURCE: Message = Message { name: "EmptyDirVolumeSource", fields: &[
        F(1, "medium", Str, O), F(2, "sizeLimit", Quantity, OP),
    ] };
    static ENV_FROM_SOURCE: Message = Message { name: "EnvFromSource", fields: &[
        F(1, "prefix", Str, O), F(2, "configMapRef", Msg(&CONFIG_MAP_ENV_SOURCE), OP),
        F(3, "secretRef", Msg(&SECRET_ENV_SOURCE), OP),
    ] };
    static ENV_VAR: Message = Message { name: "EnvVar", fields: &[
        F(1, "name", Str, 0), F(2, "value", Str, O), F(3, "valueFrom", Msg(&ENV_VAR_SOURCE), OP),
    ] };
    static ENV_VAR_SOURCE: Message = Message { name: "EnvVarSource", fields: &[
        F(1, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR), OP),
        F(2, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR), OP),
        F(3, "configMapKeyRef", Msg(&CONFIG_MAP_KEY_SELECTOR), OP),
        F(4, "secretKeyRef", Msg(&SECRET_KEY_SELECTOR), OP),
    ] };
    static EPHEMERAL_CONTAINER: Message = Message { name: "EphemeralContainer", fields: &[
        F(1, "", Msg(&EPHEMERAL_CONTAINER_COMMON), I), F(2, "targetContainerName", Str, O),
    ] };
    static EPHEMERAL_CONTAINER_COMMON: Message = Message { name: "EphemeralContainerCommon", fields: &[
        F(1, "name", Str, 0), F(2, "image", Str, O), F(3, "command", List(&Str), O), F(4, "args", List(&Str), O),
        F(5, "workingDir", Str, O), F(6, "ports", List(&Msg(&CONTAINER_PORT)), O),
        F(19, "envFrom", List(&Msg(&ENV_FROM_SOURCE)), O), F(7, "env", List(&Msg(&ENV_VAR)), O),
        F(8, "resources", Msg(&RESOURCE_REQUIREMENTS), O),
        F(23, "resizePolicy", List(&Msg(&CONTAINER_RESIZE_POLICY)), O), F(24, "restartPolicy", Str, OP),
        F(9, "volumeMounts", List(&Msg(&VOLUME_MOUNT)), O), F(21, "volumeDevices", List(&Msg(&VOLUME_DEVICE)), O),
        F(10, "livenessProbe", Msg(&PROBE), OP), F(11, "readinessProbe", Msg(&PROBE), OP),
        F(22, "startupProbe", Msg(&PROBE), OP), F(12, "lifecycle", Msg(&LIFECYCLE), OP),
        F(13, "terminationMessagePath", Str, O), F(20, "terminationMessagePolicy", Str, O),
        F(14, "imagePullPolicy", Str, O), F(15, "securityContext", Msg(&SECURITY_CONTEXT), OP),
        F(16, "stdin", Bool, O), F(17, "stdinOnce", Bool, O), F(18, "tty", Bool, O),
    ] };
    static EPHEMERAL_VOLUME_SOURCE: Message = Message { name: "EphemeralVolumeSource", fields: &[
        F(1, "volumeClaimTemplate", Msg(&PERSISTENT_VOLUME_CLAIM_TEMPLATE), OP),
    ] };
    static EXEC_ACTION: Message = Message { name: "ExecAction", fields: &[
        F(1, "command", List(&Str), O),
    ] };
    static FC_VOLUME_SOURCE: Message = Message { name: "FCVolumeSource", fields: &[
        F(1, "targetWWNs", List(&Str), O), F(2, "lun", I32, OP), F(3, "fsType", Str, O),
        F(4, "readOnly", Bool, O), F(5, "wwids", List(&Str), O),
    ] };
    static FLEX_VOLUME_SOURCE: Message = Message { name: "FlexVolumeSource", fields: &[
        F(1, "driver", Str, 0), F(2, "fsType", Str, O), F(3, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE), OP),
        F(4, "readOnly", Bool, O), F(5, "options", Map(&Str), O),
    ] };
    static FLOCKER_VOLUME_SOURCE: Message = Message { name: "FlockerVolumeSource", fields: &[
        F(1, "datasetName", Str, O), F(2, "datasetUUID", Str, O),
    ] };
    static GCE_PERSISTENT_DISK_VOLUME_SOURCE: Message = Message { name: "GCEPersistentDiskVolumeSource", fields: &[
        F(1, "pdName", Str, 0), F(2, "fsType", Str, O), F(3, "partition", I32, O), F(4, "readOnly", Bool, O),
    ] };
    static GRPC_ACTION: Message = Message { name: "GRPCAction", fields: &[
        F(1, "port", I32, 0), F(2, "service", Str, P),
    ] };
    static GIT_REPO_VOLUME_SOURCE: Message = Message { name: "GitRepoVolumeSource", fields: &[
        F(1, "repository", Str, 0), F(2, "revision", Str, O), F(3, "directory", Str, O),
    ] };
    static GLUSTERFS_VOLUME_SOURCE: Message = Message { name: "GlusterfsVolumeSource", fields: &[
        F(1, "endpoints", Str, 0), F(2, "path", Str, 0), F(3, "readOnly", Bool, O),
    ] };
    static HTTP_GET_ACTION: Message = Message { name: "HTTPGetAction", fields: &[
        F(1, "path", Str, O), F(2, "port", IntOrStr, 0), F(3, "host", Str, O), F(4, "scheme", Str, O),
        F(5, "httpHeaders", List(&Msg(&HTTP_HEADER)), O),
    ] };
    static HTTP_HEADER: Message = Message { name: "HTTPHeader", fields: &[
        F(1, "name", Str, 0), F(2, "value", Str, 0),
    ] };
    static HOST_ALIAS: Message = Message { name: "HostAlias", fields: &[
        F(1, "ip", Str, 0), F(2, "hostnames", List(&Str), O),
    ] };
    static HOST_IP: Message = Message { name: "HostIP", fields: &[
        F(1, "ip", Str, 0),
    ] };
    static HOST_PATH_VOLUME_SOURCE: Message = Message { name: "HostPathVolumeSource", fields: &[
        F(1, "path", Str, 0), F(2, "type", Str, OP),
    ] };
    static ISCSI_VOLUME_SOURCE: Message = Message { name: "ISCSIVolumeSource", fields: &[
        F(1, "targetPortal", Str, 0), F(2, "iqn", Str, 0), F(3, "lun", I32, 0), F(4, "iscsiInterface", Str, O),
        F(5, "fsType", Str, O), F(6, "readOnly", Bool, O), F(7, "portals", List(&Str), O),
        F(8, "chapAuthDiscovery", Bool, O), F(11, "chapAuthSession", Bool, O),
        F(10, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE), OP), F(12, "initiatorName", Str, OP),
    ] };
    static IMAGE_VOLUME_SOURCE: Message = Message { name: "ImageVolumeSource", fields: &[
        F(1, "reference", Str, O), F(2, "pullPolicy", Str, O),
    ] };
    static KEY_TO_PATH: Message = Message { name: "KeyToPath", fields: &[
        F(1, "key", Str, 0), F(2, "path", Str, 0), F(3, "mode", I32, OP),
    ] };
    static LIFECYCLE: Message = Message { name: "Lifecycle", fields: &[
        F(1, "postStart", Msg(&LIFECYCLE_HANDLER), OP), F(2, "preStop", Msg(&LIFECYCLE_HANDLER), OP),
    ] };
    static LIFECYCLE_HANDLER: Message = Message { name: "LifecycleHandler", fields: &[
        F(1, "exec", Msg(&EXEC_ACTION), OP), F(2, "httpGet", Msg(&HTTP_GET_ACTION), OP),
        F(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION), OP), F(4, "sleep", Msg(&SLEEP_ACTION), OP),
    ] };
    static LINUX_CONTAINER_USER: Message = Message { name: "LinuxContainerUser", fields: &[
        F(1, "uid", I64, 0), F(2, "gid", I64, 0), F(3, "supplementalGroups", List(&I64), O),
    ] };
    static LOAD_BALANCER_INGRESS: Message = Message { name: "LoadBalancerIngress", fields: &[
        F(1, "ip", Str, O), F(2, "hostname", Str, O), F(3, "ipMode", Str, OP),
        F(4, "ports", List(&Msg(&PORT_STATUS)), O),
    ] };
    static LOAD_BALANCER_STATUS: Message = Message { name: "LoadBalancerStatus", fields: &[
        F(1, "ingress", List(&Msg(&LOAD_BALANCER_INGRESS)), O),
    ] };
    static LOCAL_OBJECT_REFERENCE: Message = Message { name: "LocalObjectReference", fields: &[
        F(1, "name", Str, O),
    ] };
    static NFS_VOLUME_SOURCE: Message = Message { name: "NFSVolumeSource", fields: &[
        F(1, "server", Str, 0), F(2, "path", Str, 0), F(3, "readOnly", Bool, O),
    ] };
    static NAMESPACE: Message = Message { name: "Namespace", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "spec", Msg(&NAMESPACE_SPEC), O),
        F(3, "status", Msg(&NAMESPACE_STATUS), O),
    ] };
    static NAMESPACE_CONDITION: Message = Message { name: "NamespaceCondition", fields: &[
        F(1, "type", Str, 0), F(2, "status", Str, 0), F(4, "lastTransitionTime", Time, O), F(5, "reason", Str, O),
        F(6, "message", Str, O),
    ] };
    static NAMESPACE_SPEC: Message = Message { name: "NamespaceSpec", fields: &[
        F(1, "finalizers", List(&Str), O),
    ] };
    static NAMESPACE_STATUS: Message = Message { name: "NamespaceStatus", fields: &[
        F(1, "phase", Str, O), F(2, "conditions", List(&Msg(&NAMESPACE_CONDITION)), O),
    ] };
    static NODE_AFFINITY: Message = Message { name: "NodeAffinity", fields: &[
        F(1, "requiredDuringSchedulingIgnoredDuringExecution", Msg(&NODE_SELECTOR), OP),
        F(2, "preferredDuringSchedulingIgnoredDuringExecution", List(&Msg(&PREFERRED_SCHEDULING_TERM)), O),
    ] };
    static NODE_SELECTOR: Message = Message { name: "NodeSelector", fields: &[
        F(1, "nodeSelectorTerms", List(&Msg(&NODE_SELECTOR_TERM)), 0),
    ] };
    static NODE_SELECTOR_REQUIREMENT: Message = Message { name: "NodeSelectorRequirement", fields: &[
        F(1, "key", Str, 0), F(2, "operator", Str, 0), F(3, "values", List(&Str), O),
    ] };
    static NODE_SELECTOR_TERM: Message = Message { name: "NodeSelectorTerm", fields: &[
        F(1, "matchExpressions", List(&Msg(&NODE_SELECTOR_REQUIREMENT)), O),
        F(2, "matchFields", List(&Msg(&NODE_SELECTOR_REQUIREMENT)), O),
    ] };
    static OBJECT_FIELD_SELECTOR: Message = Message { name: "ObjectFieldSelector", fields: &[
        F(1, "apiVersion", Str, O), F(2, "fieldPath", Str, 0),
    ] };
    static OBJECT_REFERENCE: Message = Message { name: "ObjectReference", fields: &[
        F(1, "kind", Str, O), F(2, "namespace", Str, O), F(3, "name", Str, O), F(4, "uid", Str, O),
        F(5, "apiVersion", Str, O), F(6, "resourceVersion", Str, O), F(7, "fieldPath", Str, O),
    ] };
    static PERSISTENT_VOLUME_CLAIM_SPEC: Message = Message { name: "PersistentVolumeClaimSpec", fields: &[
        F(1, "accessModes", List(&Str), O), F(4, "selector", Msg(&LABEL_SELECTOR), OP),
        F(2, "resources", Msg(&VOLUME_RESOURCE_REQUIREMENTS), O), F(3, "volumeName", Str, O),
        F(5, "storageClassName", Str, OP), F(6, "volumeMode", Str, OP),
        F(7, "dataSource", Msg(&TYPED_LOCAL_OBJECT_REFERENCE), OP),
        F(8, "dataSourceRef", Msg(&TYPED_OBJECT_REFERENCE), OP), F(9, "volumeAttributesClassName", Str, OP),
    ] };
    static PERSISTENT_VOLUME_CLAIM_TEMPLATE: Message = Message { name: "PersistentVolumeClaimTemplate", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "spec", Msg(&PERSISTENT_VOLUME_CLAIM_SPEC), 0),
    ] };
    static PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: Message = Message { name: "PersistentVolumeClaimVolumeSource", fields: &[
        F(1, "claimName", Str, 0), F(2, "readOnly", Bool, O),
    ] };
    static PHOTON_PERSISTENT_DISK_VOLUME_SOURCE: Message = Message { name: "PhotonPersistentDiskVolumeSource", fields: &[
        F(1, "pdID", Str, 0), F(2, "fsType", Str, O),
    ] };
    static POD: Message = Message { name: "Pod", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "spec", Msg(&POD_SPEC), O),
        F(3, "status", Msg(&POD_STATUS), O),
    ] };
    static POD_AFFINITY: Message = Message { name: "PodAffinity", fields: &[
        F(1, "requiredDuringSchedulingIgnoredDuringExecution", List(&Msg(&POD_AFFINITY_TERM)), O),
        F(2, "preferredDuringSchedulingIgnoredDuringExecution", List(&Msg(&WEIGHTED_POD_AFFINITY_TERM)), O),
    ] };
    static POD_AFFINITY_TERM: Message = Message { name: "PodAffinityTerm", fields: &[
        F(1, "labelSelector", Msg(&LABEL_SELECTOR), OP), F(2, "namespaces", List(&Str), O),
        F(3, "topologyKey", Str, 0), F(4, "namespaceSelector", Msg(&LABEL_SELECTOR), OP),
        F(5, "matchLabelKeys", List(&Str), O), F(6, "mismatchLabelKeys", List(&Str), O),
    ] };
    static POD_ANTI_AFFINITY: Message = Message { name: "PodAntiAffinity", fields: &[
        F(1, "requiredDuringSchedulingIgnoredDuringExecution", List(&Msg(&POD_AFFINITY_TERM)), O),
        F(2, "preferredDuringSchedulingIgnoredDuringExecution", List(&Msg(&WEIGHTED_POD_AFFINITY_TERM)), O),
    ] };
    static POD_CONDITION: Message = Message { name: "PodCondition", fields: &[
        F(1, "type", Str, 0), F(2, "status", Str, 0), F(3, "lastProbeTime", Time, O),
        F(4, "lastTransitionTime", Time, O), F(5, "reason", Str, O), F(6, "message", Str, O),
    ] };
    static POD_DNS_CONFIG: Message = Message { name: "PodDNSConfig", fields: &[
        F(1, "nameservers", List(&Str), O), F(2, "searches", List(&Str), O),
        F(3, "options", List(&Msg(&POD_DNS_CONFIG_OPTION)), O),
    ] };
    static POD_DNS_CONFIG_OPTION: Message = Message { name: "PodDNSConfigOption", fields: &[
        F(1, "name", Str, O), F(2, "value", Str, OP),
    ] };
    static POD_IP: Message = Message { name: "PodIP", fields: &[
        F(1, "ip", Str, 0),
    ] };
    static POD_OS: Message = Message { name: "PodOS", fields: &[
        F(1, "name", Str, 0),
    ] };
    static POD_READINESS_GATE: Message = Message { name: "PodReadinessGate", fields: &[
        F(1, "conditionType", Str, 0),
    ] };
    static POD_RESOURCE_CLAIM: Message = Message { name: "PodResourceClaim", fields: &[
        F(1, "name", Str, 0), F(3, "resourceClaimName", Str, OP), F(4, "resourceClaimTemplateName", Str, OP),
    ] };
    static POD_RESOURCE_CLAIM_STATUS: Message = Message { name: "PodResourceClaimStatus", fields: &[
        F(1, "name", Str, 0), F(2, "resourceClaimName", Str, OP),
    ] };
    static POD_SCHEDULING_GATE: Message = Message { name: "PodSchedulingGate", fields: &[
        F(1, "name", Str, 0),
    ] };
    static POD_SECURITY_CONTEXT: Message = Message { name: "PodSecurityContext", fields: &[
        F(1, "seLinuxOptions", Msg(&SE_LINUX_OPTIONS), OP),
        F(8, "windowsOptions", Msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS), OP), F(2, "runAsUser", I64, OP),
        F(6, "runAsGroup", I64, OP), F(3, "runAsNonRoot", Bool, OP), F(4, "supplementalGroups", List(&I64), O),
        F(12, "supplementalGroupsPolicy", Str, OP), F(5, "fsGroup", I64, OP),
        F(7, "sysctls", List(&Msg(&SYSCTL)), O), F(9, "fsGroupChangePolicy", Str, OP),
        F(10, "seccompProfile", Msg(&SECCOMP_PROFILE), OP), F(11, "appArmorProfile", Msg(&APP_ARMOR_PROFILE), OP),
        F(13, "seLinuxChangePolicy", Str, OP),
    ] };
    static POD_SPEC: Message = Message { name: "PodSpec", fields: &[
        F(1, "volumes", List(&Msg(&VOLUME)), O), F(20, "initContainers", List(&Msg(&CONTAINER)), O),
        F(2, "containers", List(&Msg(&CONTAINER)), 0),
        F(34, "ephemeralContainers", List(&Msg(&EPHEMERAL_CONTAINER)), O), F(3, "restartPolicy", Str, O),
        F(4, "terminationGracePeriodSeconds", I64, OP), F(5, "activeDeadlineSeconds", I64, OP),
        F(6, "dnsPolicy", Str, O), F(7, "nodeSelector", Map(&Str), O), F(8, "serviceAccountName", Str, O),
        F(9, "serviceAccount", Str, O), F(21, "automountServiceAccountToken", Bool, OP),
        F(10, "nodeName", Str, O), F(11, "hostNetwork", Bool, O), F(12, "hostPID", Bool, O),
        F(13, "hostIPC", Bool, O), F(27, "shareProcessNamespace", Bool, OP),
        F(14, "securityContext", Msg(&POD_SECURITY_CONTEXT), OP),
        F(15, "imagePullSecrets", List(&Msg(&LOCAL_OBJECT_REFERENCE)), O), F(16, "hostname", Str, O),
        F(17, "subdomain", Str, O), F(18, "affinity", Msg(&AFFINITY), OP), F(19, "schedulerName", Str, O),
        F(22, "tolerations", List(&Msg(&TOLERATION)), O), F(23, "hostAliases", List(&Msg(&HOST_ALIAS)), O),
        F(24, "priorityClassName", Str, O), F(25, "priority", I32, OP),
        F(26, "dnsConfig", Msg(&POD_DNS_CONFIG), OP), F(28, "readinessGates", List(&Msg(&POD_READINESS_GATE)), O),
        F(29, "runtimeClassName", Str, OP), F(30, "enableServiceLinks", Bool, OP),
        F(31, "preemptionPolicy", Str, OP), F(32, "overhead", Map(&Quantity), O),
        F(33, "topologySpreadConstraints", List(&Msg(&TOPOLOGY_SPREAD_CONSTRAINT)), O),
        F(35, "setHostnameAsFQDN", Bool, OP), F(36, "os", Msg(&POD_OS), OP), F(37, "hostUsers", Bool, OP),
        F(38, "schedulingGates", List(&Msg(&POD_SCHEDULING_GATE)), O),
        F(39, "resourceClaims", List(&Msg(&POD_RESOURCE_CLAIM)), O),
        F(40, "resources", Msg(&RESOURCE_REQUIREMENTS), OP),
    ] };
    static POD_STATUS: Message = Message { name: "PodStatus", fields: &[
        F(1, "phase", Str, O), F(2, "conditions", List(&Msg(&POD_CONDITION)), O), F(3, "message", Str, O),
        F(4, "reason", Str, O), F(11, "nominatedNodeName", Str, O), F(5, "hostIP", Str, O),
        F(16, "hostIPs", List(&Msg(&HOST_IP)), O), F(6, "podIP", Str, O), F(12, "podIPs", List(&Msg(&POD_IP)), O),
        F(7, "startTime", Time, OP), F(10, "initContainerStatuses", List(&Msg(&CONTAINER_STATUS)), O),
        F(8, "containerStatuses", List(&Msg(&CONTAINER_STATUS)), O), F(9, "qosClass", Str, O),
        F(13, "ephemeralContainerStatuses", List(&Msg(&CONTAINER_STATUS)), O), F(14, "resize", Str, O),
        F(15, "resourceClaimStatuses", List(&Msg(&POD_RESOURCE_CLAIM_STATUS)), O),
    ] };
    static POD_TEMPLATE_SPEC: Message = Message { name: "PodTemplateSpec", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "spec", Msg(&POD_SPEC), O),
    ] };
    static PORT_STATUS: Message = Message { name: "PortStatus", fields: &[
        F(1, "port", I32, 0), F(2, "protocol", Str, 0), F(3, "error", Str, OP),
    ] };
    static PORTWORX_VOLUME_SOURCE: Message = Message { name: "PortworxVolumeSource", fields: &[
        F(1, "volumeID", Str, 0), F(2, "fsType", Str, O), F(3, "readOnly", Bool, O),
    ] };
    static PREFERRED_SCHEDULING_TERM: Message = Message { name: "PreferredSchedulingTerm", fields: &[
        F(1, "weight", I32, 0), F(2, "preference", Msg(&NODE_SELECTOR_TERM), 0),
    ] };
    static PROBE: Message = Message { name: "Probe", fields: &[
        F(1, "", Msg(&PROBE_HANDLER), I), F(2, "initialDelaySeconds", I32, O), F(3, "timeoutSeconds", I32, O),
        F(4, "periodSeconds", I32, O), F(5, "successThreshold", I32, O), F(6, "failureThreshold", I32, O),
        F(7, "terminationGracePeriodSeconds", I64, OP),
    ] };
    static PROBE_HANDLER: Message = Message { name: "ProbeHandler", fields: &[
        F(1, "exec", Msg(&EXEC_ACTION), OP), F(2, "httpGet", Msg(&HTTP_GET_ACTION), OP),
        F(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION), OP), F(4, "grpc", Msg(&GRPC_ACTION), OP),
    ] };
    static PROJECTED_VOLUME_SOURCE: Message = Message { name: "ProjectedVolumeSource", fields: &[
        F(1, "sources", List(&Msg(&VOLUME_PROJECTION)), 0), F(2, "defaultMode", I32, OP),
    ] };
    static QUOBYTE_VOLUME_SOURCE: Message = Message { name: "QuobyteVolumeSource", fields: &[
        F(1, "registry", Str, 0), F(2, "volume", Str, 0), F(3, "readOnly", Bool, O), F(4, "user", Str, O),
        F(5, "group", Str, O), F(6, "tenant", Str, O),
    ] };
    static RBD_VOLUME_SOURCE: Message = Message { name: "RBDVolumeSource", fields: &[
        F(1, "monitors", List(&Str), 0), F(2, "image", Str, 0), F(3, "fsType", Str, O), F(4, "pool", Str, O),
        F(5, "user", Str, O), F(6, "keyring", Str, O), F(7, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE), OP),
        F(8, "readOnly", Bool, O),
    ] };
    static RESOURCE_CLAIM: Message = Message { name: "ResourceClaim", fields: &[
        F(1, "name", Str, 0), F(2, "request", Str, O),
    ] };
    static RESOURCE_FIELD_SELECTOR: Message = Message { name: "ResourceFieldSelector", fields: &[
        F(1, "containerName", Str, O), F(2, "resource", Str, 0), F(3, "divisor", Quantity, O),
    ] };
    static RESOURCE_HEALTH: Message = Message { name: "ResourceHealth", fields: &[
        F(1, "resourceID", Str, 0), F(2, "health", Str, O),
    ] };
    static RESOURCE_QUOTA: Message = Message { name: "ResourceQuota", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "spec", Msg(&RESOURCE_QUOTA_SPEC), O),
        F(3, "status", Msg(&RESOURCE_QUOTA_STATUS), O),
    ] };
    static RESOURCE_QUOTA_SPEC: Message = Message { name: "ResourceQuotaSpec", fields: &[
        F(1, "hard", Map(&Quantity), O), F(2, "scopes", List(&Str), O),
        F(3, "scopeSelector", Msg(&SCOPE_SELECTOR), OP),
    ] };
    static RESOURCE_QUOTA_STATUS: Message = Message { name: "ResourceQuotaStatus", fields: &[
        F(1, "hard", Map(&Quantity), O), F(2, "used", Map(&Quantity), O),
    ] };
    static RESOURCE_REQUIREMENTS: Message = Message { name: "ResourceRequirements", fields: &[
        F(1, "limits", Map(&Quantity), O), F(2, "requests", Map(&Quantity), O),
        F(3, "claims", List(&Msg(&RESOURCE_CLAIM)), O),
    ] };
    static RESOURCE_STATUS: Message = Message { name: "ResourceStatus", fields: &[
        F(1, "name", Str, 0), F(2, "resources", List(&Msg(&RESOURCE_HEALTH)), O),
    ] };
    static SE_LINUX_OPTIONS: Message = Message { name: "SELinuxOptions", fields: &[
        F(1, "user", Str, O), F(2, "role", Str, O), F(3, "type", Str, O), F(4, "level", Str, O),
    ] };
    static SCALE_IO_VOLUME_SOURCE: Message = Message { name: "ScaleIOVolumeSource", fields: &[
        F(1, "gateway", Str, 0), F(2, "system", Str, 0), F(3, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE), P),
        F(4, "sslEnabled", Bool, O), F(5, "protectionDomain", Str, O), F(6, "storagePool", Str, O),
        F(7, "storageMode", Str, O), F(8, "volumeName", Str, O), F(9, "fsType", Str, O),
        F(10, "readOnly", Bool, O),
    ] };
    static SCOPE_SELECTOR: Message = Message { name: "ScopeSelector", fields: &[
        F(1, "matchExpressions", List(&Msg(&SCOPED_RESOURCE_SELECTOR_REQUIREMENT)), O),
    ] };
    static SCOPED_RESOURCE_SELECTOR_REQUIREMENT: Message = Message { name: "ScopedResourceSelectorRequirement", fields: &[
        F(1, "scopeName", Str, 0), F(2, "operator", Str, 0), F(3, "values", List(&Str), O),
    ] };
    static SECCOMP_PROFILE: Message = Message { name: "SeccompProfile", fields: &[
        F(1, "type", Str, 0), F(2, "localhostProfile", Str, OP),
    ] };
    static SECRET: Message = Message { name: "Secret", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(5, "immutable", Bool, OP), F(2, "data", Map(&Bytes), O),
        F(4, "stringData", Map(&Str), O), F(3, "type", Str, O),
    ] };
    static SECRET_ENV_SOURCE: Message = Message { name: "SecretEnvSource", fields: &[
        F(1, "", Msg(&LOCAL_OBJECT_REFERENCE), I), F(2, "optional", Bool, OP),
    ] };
    static SECRET_KEY_SELECTOR: Message = Message { name: "SecretKeySelector", fields: &[
        F(1, "", Msg(&LOCAL_OBJECT_REFERENCE), I), F(2, "key", Str, 0), F(3, "optional", Bool, OP),
    ] };
    static SECRET_PROJECTION: Message = Message { name: "SecretProjection", fields: &[
        F(1, "", Msg(&LOCAL_OBJECT_REFERENCE), I), F(2, "items", List(&Msg(&KEY_TO_PATH)), O),
        F(4, "optional", Bool, OP),
    ] };
    static SECRET_VOLUME_SOURCE: Message = Message { name: "SecretVolumeSource", fields: &[
        F(1, "secretName", Str, O), F(2, "items", List(&Msg(&KEY_TO_PATH)), O), F(3, "defaultMode", I32, OP),
        F(4, "optional", Bool, OP),
    ] };
    static SECURITY_CONTEXT: Message = Message { name: "SecurityContext", fields: &[
        F(1, "capabilities", Msg(&CAPABILITIES), OP), F(2, "privileged", Bool, OP),
        F(3, "seLinuxOptions", Msg(&SE_LINUX_OPTIONS), OP),
        F(10, "windowsOptions", Msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS), OP), F(4, "runAsUser", I64, OP),
        F(8, "runAsGroup", I64, OP), F(5, "runAsNonRoot", Bool, OP), F(6, "readOnlyRootFilesystem", Bool, OP),
        F(7, "allowPrivilegeEscalation", Bool, OP), F(9, "procMount", Str, OP),
        F(11, "seccompProfile", Msg(&SECCOMP_PROFILE), OP), F(12, "appArmorProfile", Msg(&APP_ARMOR_PROFILE), OP),
    ] };
    static SERVICE: Message = Message { name: "Service", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "spec", Msg(&SERVICE_SPEC), O),
        F(3, "status", Msg(&SERVICE_STATUS), O),
    ] };
    static SERVICE_ACCOUNT: Message = Message { name: "ServiceAccount", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "secrets", List(&Msg(&OBJECT_REFERENCE)), O),
        F(3, "imagePullSecrets", List(&Msg(&LOCAL_OBJECT_REFERENCE)), O),
        F(4, "automountServiceAccountToken", Bool, OP),
    ] };
    static SERVICE_ACCOUNT_TOKEN_PROJECTION: Message = Message { name: "ServiceAccountTokenProjection", fields: &[
        F(1, "audience", Str, O), F(2, "expirationSeconds", I64, OP), F(3, "path", Str, 0),
    ] };
    static SERVICE_PORT: Message = Message { name: "ServicePort", fields: &[
        F(1, "name", Str, O), F(2, "protocol", Str, O), F(6, "appProtocol", Str, OP), F(3, "port", I32, 0),
        F(4, "targetPort", IntOrStr, O), F(5, "nodePort", I32, O),
    ] };
    static SERVICE_SPEC: Message = Message { name: "ServiceSpec", fields: &[
        F(1, "ports", List(&Msg(&SERVICE_PORT)), O), F(2, "selector", Map(&Str), O), F(3, "clusterIP", Str, O),
        F(18, "clusterIPs", List(&Str), O), F(4, "type", Str, O), F(5, "externalIPs", List(&Str), O),
        F(7, "sessionAffinity", Str, O), F(8, "loadBalancerIP", Str, O),
        F(9, "loadBalancerSourceRanges", List(&Str), O), F(10, "externalName", Str, O),
        F(11, "externalTrafficPolicy", Str, O), F(12, "healthCheckNodePort", I32, O),
        F(13, "publishNotReadyAddresses", Bool, O),
        F(14, "sessionAffinityConfig", Msg(&SESSION_AFFINITY_CONFIG), OP), F(19, "ipFamilies", List(&Str), O),
        F(17, "ipFamilyPolicy", Str, OP), F(20, "allocateLoadBalancerNodePorts", Bool, OP),
        F(21, "loadBalancerClass", Str, OP), F(22, "internalTrafficPolicy", Str, OP),
        F(23, "trafficDistribution", Str, OP),
    ] };
    static SERVICE_STATUS: Message = Message { name: "ServiceStatus", fields: &[
        F(1, "loadBalancer", Msg(&LOAD_BALANCER_STATUS), O), F(2, "conditions", List(&Msg(&CONDITION)), O),
    ] };
    static SESSION_AFFINITY_CONFIG: Message = Message { name: "SessionAffinityConfig", fields: &[
        F(1, "clientIP", Msg(&CLIENT_IP_CONFIG), OP),
    ] };
    static SLEEP_ACTION: Message = Message { name: "SleepAction", fields: &[
        F(1, "seconds", I64, 0),
    ] };
    static STORAGE_OS_VOLUME_SOURCE: Message = Message { name: "StorageOSVolumeSource", fields: &[
        F(1, "volumeName", Str, O), F(2, "volumeNamespace", Str, O), F(3, "fsType", Str, O),
        F(4, "readOnly", Bool, O), F(5, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE), OP),
    ] };
    static SYSCTL: Message = Message { name: "Sysctl", fields: &[
        F(1, "name", Str, 0), F(2, "value", Str, 0),
    ] };
    static TCP_SOCKET_ACTION: Message = Message { name: "TCPSocketAction", fields: &[
        F(1, "port", IntOrStr, 0), F(2, "host", Str, O),
    ] };
    static TOLERATION: Message = Message { name: "Toleration", fields: &[
        F(1, "key", Str, O), F(2, "operator", Str, O), F(3, "value", Str, O), F(4, "effect", Str, O),
        F(5, "tolerationSeconds", I64, OP),
    ] };
    static TOPOLOGY_SPREAD_CONSTRAINT: Message = Message { name: "TopologySpreadConstraint", fields: &[
        F(1, "maxSkew", I32, 0), F(2, "topologyKey", Str, 0), F(3, "whenUnsatisfiable", Str, 0),
        F(4, "labelSelector", Msg(&LABEL_SELECTOR), OP), F(5, "minDomains", I32, OP),
        F(6, "nodeAffinityPolicy", Str, OP), F(7, "nodeTaintsPolicy", Str, OP),
        F(8, "matchLabelKeys", List(&Str), O),
    ] };
    static TYPED_LOCAL_OBJECT_REFERENCE: Message = Message { name: "TypedLocalObjectReference", fields: &[
        F(1, "apiGroup", Str, P), F(2, "kind", Str, 0), F(3, "name", Str, 0),
    ] };
    static TYPED_OBJECT_REFERENCE: Message = Message { name: "TypedObjectReference", fields: &[
        F(1, "apiGroup", Str, P), F(2, "kind", Str, 0), F(3, "name", Str, 0), F(4, "namespace", Str, OP),
    ] };
    static VOLUME: Message = Message { name: "Volume", fields: &[
        F(1, "name", Str, 0), F(2, "", Msg(&VOLUME_SOURCE), I),
    ] };
    static VOLUME_DEVICE: Message = Message { name: "VolumeDevice", fields: &[
        F(1, "name", Str, 0), F(2, "devicePath", Str, 0),
    ] };
    static VOLUME_MOUNT: Message = Message { name: "VolumeMount", fields: &[
        F(1, "name", Str, 0), F(2, "readOnly", Bool, O), F(7, "recursiveReadOnly", Str, OP),
        F(3, "mountPath", Str, 0), F(4, "subPath", Str, O), F(5, "mountPropagation", Str, OP),
        F(6, "subPathExpr", Str, O),
    ] };
    static VOLUME_MOUNT_STATUS: Message = Message { name: "VolumeMountStatus", fields: &[
        F(1, "name", Str, 0), F(2, "mountPath", Str, 0), F(3, "readOnly", Bool, O),
        F(4, "recursiveReadOnly", Str, OP),
    ] };
    static VOLUME_PROJECTION: Message = Message { name: "VolumeProjection", fields: &[
        F(1, "secret", Msg(&SECRET_PROJECTION), OP), F(2, "downwardAPI", Msg(&DOWNWARD_API_PROJECTION), OP),
        F(3, "configMap", Msg(&CONFIG_MAP_PROJECTION), OP),
        F(4, "serviceAccountToken", Msg(&SERVICE_ACCOUNT_TOKEN_PROJECTION), OP),
        F(5, "clusterTrustBundle", Msg(&CLUSTER_TRUST_BUNDLE_PROJECTION), OP),
    ] };
    static VOLUME_RESOURCE_REQUIREMENTS: Message = Message { name: "VolumeResourceRequirements", fields: &[
        F(1, "limits", Map(&Quantity), O), F(2, "requests", Map(&Quantity), O),
    ] };
    static VOLUME_SOURCE: Message = Message { name: "VolumeSource", fields: &[
        F(1, "hostPath", Msg(&HOST_PATH_VOLUME_SOURCE), OP), F(2, "emptyDir", Msg(&EMPTY_DIR_VOLUME_SOURCE), OP),
        F(3, "gcePersistentDisk", Msg(&GCE_PERSISTENT_DISK_VOLUME_SOURCE), OP),
        F(4, "awsElasticBlockStore", Msg(&AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE), OP),
        F(5, "gitRepo", Msg(&GIT_REPO_VOLUME_SOURCE), OP), F(6, "secret", Msg(&SECRET_VOLUME_SOURCE), OP),
        F(7, "nfs", Msg(&NFS_VOLUME_SOURCE), OP), F(8, "iscsi", Msg(&ISCSI_VOLUME_SOURCE), OP),
        F(9, "glusterfs", Msg(&GLUSTERFS_VOLUME_SOURCE), OP),
        F(10, "persistentVolumeClaim", Msg(&PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE), OP),
        F(11, "rbd", Msg(&RBD_VOLUME_SOURCE), OP), F(12, "flexVolume", Msg(&FLEX_VOLUME_SOURCE), OP),
        F(13, "cinder", Msg(&CINDER_VOLUME_SOURCE), OP), F(14, "cephfs", Msg(&CEPH_FS_VOLUME_SOURCE), OP),
        F(15, "flocker", Msg(&FLOCKER_VOLUME_SOURCE), OP),
        F(16, "downwardAPI", Msg(&DOWNWARD_API_VOLUME_SOURCE), OP), F(17, "fc", Msg(&FC_VOLUME_SOURCE), OP),
        F(18, "azureFile", Msg(&AZURE_FILE_VOLUME_SOURCE), OP),
        F(19, "configMap", Msg(&CONFIG_MAP_VOLUME_SOURCE), OP),
        F(20, "vsphereVolume", Msg(&VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE), OP),
        F(21, "quobyte", Msg(&QUOBYTE_VOLUME_SOURCE), OP), F(22, "azureDisk", Msg(&AZURE_DISK_VOLUME_SOURCE), OP),
        F(23, "photonPersistentDisk", Msg(&PHOTON_PERSISTENT_DISK_VOLUME_SOURCE), OP),
        F(26, "projected", Msg(&PROJECTED_VOLUME_SOURCE), OP),
        F(24, "portworxVolume", Msg(&PORTWORX_VOLUME_SOURCE), OP),
        F(25, "scaleIO", Msg(&SCALE_IO_VOLUME_SOURCE), OP),
        F(27, "storageos", Msg(&STORAGE_OS_VOLUME_SOURCE), OP), F(28, "csi", Msg(&CSI_VOLUME_SOURCE), OP),
        F(29, "ephemeral", Msg(&EPHEMERAL_VOLUME_SOURCE), OP), F(30, "image", Msg(&IMAGE_VOLUME_SOURCE), OP),
    ] };
    static VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE: Message = Message { name: "VsphereVirtualDiskVolumeSource", fields: &[
        F(1, "volumePath", Str, 0), F(2, "fsType", Str, O), F(3, "storagePolicyName", Str, O),
        F(4, "storagePolicyID", Str, O),
    ] };
    static WEIGHTED_POD_AFFINITY_TERM: Message = Message { name: "WeightedPodAffinityTerm", fields: &[
        F(1, "weight", I32, 0), F(2, "podAffinityTerm", Msg(&POD_AFFINITY_TERM), 0),
    ] };
    static WINDOWS_SECURITY_CONTEXT_OPTIONS: Message = Message { name: "WindowsSecurityContextOptions", fields: &[
        F(1, "gmsaCredentialSpecName", Str, OP), F(2, "gmsaCredentialSpec", Str, OP),
        F(3, "runAsUserName", Str, OP), F(4, "hostProcess", Bool, OP),
    ] };
    static HTTP_INGRESS_PATH: Message = Message { name: "HTTPIngressPath", fields: &[
        F(1, "path", Str, O), F(3, "pathType", Str, P), F(2, "backend", Msg(&INGRESS_BACKEND), 0),
    ] };
    static HTTP_INGRESS_RULE_VALUE: Message = Message { name: "HTTPIngressRuleValue", fields: &[
        F(1, "paths", List(&Msg(&HTTP_INGRESS_PATH)), 0),
    ] };
    static INGRESS: Message = Message { name: "Ingress", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "spec", Msg(&INGRESS_SPEC), O),
        F(3, "status", Msg(&INGRESS_STATUS), O),
    ] };
    static INGRESS_BACKEND: Message = Message { name: "IngressBackend", fields: &[
        F(4, "service", Msg(&INGRESS_SERVICE_BACKEND), OP),
        F(3, "resource", Msg(&TYPED_LOCAL_OBJECT_REFERENCE), OP),
    ] };
    static INGRESS_LOAD_BALANCER_INGRESS: Message = Message { name: "IngressLoadBalancerIngress", fields: &[
        F(1, "ip", Str, O), F(2, "hostname", Str, O), F(4, "ports", List(&Msg(&INGRESS_PORT_STATUS)), O),
    ] };
    static INGRESS_LOAD_BALANCER_STATUS: Message = Message { name: "IngressLoadBalancerStatus", fields: &[
        F(1, "ingress", List(&Msg(&INGRESS_LOAD_BALANCER_INGRESS)), O),
    ] };
    static INGRESS_PORT_STATUS: Message = Message { name: "IngressPortStatus", fields: &[
        F(1, "port", I32, 0), F(2, "protocol", Str, 0), F(3, "error", Str, OP),
    ] };
    static INGRESS_RULE: Message = Message { name: "IngressRule", fields: &[
        F(1, "host", Str, O), F(2, "", Msg(&INGRESS_RULE_VALUE), I),
    ] };
    static INGRESS_RULE_VALUE: Message = Message { name: "IngressRuleValue", fields: &[
        F(1, "http", Msg(&HTTP_INGRESS_RULE_VALUE), OP),
    ] };
    static INGRESS_SERVICE_BACKEND: Message = Message { name: "IngressServiceBackend", fields: &[
        F(1, "name", Str, 0), F(2, "port", Msg(&SERVICE_BACKEND_PORT), O),
    ] };
    static INGRESS_SPEC: Message = Message { name: "IngressSpec", fields: &[
        F(4, "ingressClassName", Str, OP), F(1, "defaultBackend", Msg(&INGRESS_BACKEND), OP),
        F(2, "tls", List(&Msg(&INGRESS_TLS)), O), F(3, "rules", List(&Msg(&INGRESS_RULE)), O),
    ] };
    static INGRESS_STATUS: Message = Message { name: "IngressStatus", fields: &[
        F(1, "loadBalancer", Msg(&INGRESS_LOAD_BALANCER_STATUS), O),
    ] };
    static INGRESS_TLS: Message = Message { name: "IngressTLS", fields: &[
        F(1, "hosts", List(&Str), O), F(2, "secretName", Str, O),
    ] };
    static SERVICE_BACKEND_PORT: Message = Message { name: "ServiceBackendPort", fields: &[
        F(1, "name", Str, O), F(2, "number", I32, O),
    ] };
    static POD_DISRUPTION_BUDGET: Message = Message { name: "PodDisruptionBudget", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "spec", Msg(&POD_DISRUPTION_BUDGET_SPEC), O),
        F(3, "status", Msg(&POD_DISRUPTION_BUDGET_STATUS), O),
    ] };
    static POD_DISRUPTION_BUDGET_SPEC: Message = Message { name: "PodDisruptionBudgetSpec", fields: &[
        F(1, "minAvailable", IntOrStr, OP), F(2, "selector", Msg(&LABEL_SELECTOR), OP),
        F(3, "maxUnavailable", IntOrStr, OP), F(4, "unhealthyPodEvictionPolicy", Str, OP),
    ] };
    static POD_DISRUPTION_BUDGET_STATUS: Message = Message { name: "PodDisruptionBudgetStatus", fields: &[
        F(1, "observedGeneration", I64, O), F(2, "disruptedPods", Map(&Time), O),
        F(3, "disruptionsAllowed", I32, 0), F(4, "currentHealthy", I32, 0), F(5, "desiredHealthy", I32, 0),
        F(6, "expectedPods", I32, 0), F(7, "conditions", List(&Msg(&CONDITION)), O),
    ] };
    static AGGREGATION_RULE: Message = Message { name: "AggregationRule", fields: &[
        F(1, "clusterRoleSelectors", List(&Msg(&LABEL_SELECTOR)), O),
    ] };
    static CLUSTER_ROLE: Message = Message { name: "ClusterRole", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "rules", List(&Msg(&POLICY_RULE)), 0),
        F(3, "aggregationRule", Msg(&AGGREGATION_RULE), OP),
    ] };
    static CLUSTER_ROLE_BINDING: Message = Message { name: "ClusterRoleBinding", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "subjects", List(&Msg(&SUBJECT)), O),
        F(3, "roleRef", Msg(&ROLE_REF), 0),
    ] };
    static POLICY_RULE: Message = Message { name: "PolicyRule", fields: &[
        F(1, "verbs", List(&Str), 0), F(2, "apiGroups", List(&Str), O), F(3, "resources", List(&Str), O),
        F(4, "resourceNames", List(&Str), O), F(5, "nonResourceURLs", List(&Str), O),
    ] };
    static ROLE: Message = Message { name: "Role", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "rules", List(&Msg(&POLICY_RULE)), 0),
    ] };
    static ROLE_BINDING: Message = Message { name: "RoleBinding", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "subjects", List(&Msg(&SUBJECT)), O),
        F(3, "roleRef", Msg(&ROLE_REF), 0),
    ] };
    static ROLE_REF: Message = Message { name: "RoleRef", fields: &[
        F(1, "apiGroup", Str, 0), F(2, "kind", Str, 0), F(3, "name", Str, 0),
    ] };
    static SUBJECT: Message = Message { name: "Subject", fields: &[
        F(1, "kind", Str, 0), F(2, "apiGroup", Str, O), F(3, "name", Str, 0), F(4, "namespace", Str, O),
    ] };
    static PRIORITY_CLASS: Message = Message { name: "PriorityClass", fields: &[
        F(1, "metadata", Msg(&OBJECT_META), O), F(2, "value", I32, 0), F(3, "globalDefault", Bool, O),
        F(4, "description", Str, O), F(5, "preemptionPolicy", Str, OP),
    ] };
    /// Every kind `decode` understands: (apiVersion, kind, schema of the object).
    pub(super) static ROOTS: &[(&str, &str, &Message)] = &[
        ("v1", "ConfigMap", &CONFIG_MAP),
        ("v1", "Secret", &SECRET),
        ("v1", "Namespace", &NAMESPACE),
        ("v1", "Service", &SERVICE),
        ("v1", "ServiceAccount", &SERVICE_ACCOUNT),
        ("v1", "ResourceQuota", &RESOURCE_QUOTA),
        ("v1", "Pod", &POD),
        ("apps/v1", "Deployment", &DEPLOYMENT),
        ("batch/v1", "Job", &JOB),
        ("batch/v1", "CronJob", &CRON_JOB),
        ("policy/v1", "PodDisruptionBudget", &POD_DISRUPTION_BUDGET),
        ("scheduling.k8s.io/v1", "PriorityClass", &PRIORITY_CLASS),
        ("rbac.authorization.k8s.io/v1", "Role", &ROLE),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", &ROLE_BINDING),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", &CLUSTER_ROLE),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", &CLUSTER_ROLE_BINDING),
        ("networking.k8s.io/v1", "Ingress", &INGRESS),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::api::resource::Quantity;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// Bodies captured from kubectl v1.32.4 (`kubectl create …` against a recording server), with
    /// the JSON the same command prints with `--dry-run=client -o json` (Go's own JSON of the object).
    /// BIN is a file holding `hello\xff\x00\xfebin`, TXT one holding `text file\nline2\n`.
    const KUBECTL: &[(&str, &str, &str)] = &[
        // kubectl create configmap c1 --from-literal=a=b --from-literal=x=y
        (
            "configmap",
            concat!(
                "6b3873000a0f0a0276311209436f6e6669674d617012240a120a02633112001a0022002a0032003800420012060a0161",
                "12016212060a01781201791a002200",
            ),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c1","creationTimestamp":null},"data":{"a":"b","x":"y"}}"#,
        ),
        // kubectl create configmap c2 -n team-a --from-file=bin=BIN --from-file=txt=TXT --from-literal=empty=
        (
            "configmap_files",
            concat!(
                "6b3873000a0f0a0276311209436f6e6669674d617012520a180a02633212001a067465616d2d6122002a003200380042",
                "0012090a05656d707479120012170a037478741210746578742066696c650a6c696e65320a1a120a0362696e120b6865",
                "6c6c6fff00fe62696e1a002200",
            ),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c2","namespace":"team-a","creationTimestamp":null},"data":{"empty":"","txt":"text file\nline2\n"},"binaryData":{"bin":"aGVsbG//AP5iaW4="}}"#,
        ),
        // kubectl create secret generic s1 --from-literal=k=v
        (
            "secret",
            concat!(
                "6b3873000a0c0a0276311206536563726574121e0a120a02733112001a0022002a0032003800420012060a016b120176",
                "1a001a002200",
            ),
            r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s1","creationTimestamp":null},"data":{"k":"dg=="}}"#,
        ),
        // kubectl create secret generic s2 --type=example.com/custom --from-file=bin=BIN --from-literal=e=
        (
            "secret_files",
            concat!(
                "6b3873000a0c0a027631120653656372657412430a120a02733212001a0022002a0032003800420012120a0362696e12",
                "0b68656c6c6fff00fe62696e12050a016512001a126578616d706c652e636f6d2f637573746f6d1a002200",
            ),
            r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s2","creationTimestamp":null},"data":{"bin":"aGVsbG//AP5iaW4=","e":""},"type":"example.com/custom"}"#,
        ),
        // kubectl create secret docker-registry reg1 --docker-server=r.example --docker-username=u --docker-password=p
        (
            "secret_tls_like",
            concat!(
                "6b3873000a0c0a02763112065365637265741292010a140a047265673112001a0022002a00320038004200125a0a112e",
                "646f636b6572636f6e6669676a736f6e12457b226175746873223a7b22722e6578616d706c65223a7b22757365726e61",
                "6d65223a2275222c2270617373776f7264223a2270222c2261757468223a2264547077227d7d7d1a1e6b756265726e65",
                "7465732e696f2f646f636b6572636f6e6669676a736f6e1a002200",
            ),
            r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"reg1","creationTimestamp":null},"data":{".dockerconfigjson":"eyJhdXRocyI6eyJyLmV4YW1wbGUiOnsidXNlcm5hbWUiOiJ1IiwicGFzc3dvcmQiOiJwIiwiYXV0aCI6ImRUcHcifX19"},"type":"kubernetes.io/dockerconfigjson"}"#,
        ),
        // kubectl create namespace n1
        (
            "namespace",
            concat!(
                "6b3873000a0f0a02763112094e616d657370616365121a0a120a026e3112001a0022002a0032003800420012001a020a",
                "001a002200",
            ),
            r#"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"n1","creationTimestamp":null},"spec":{},"status":{}}"#,
        ),
        // kubectl create deployment d1 --image=nginx
        (
            "deployment",
            concat!(
                "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412a7010a1d0a02643112001a0022002a0032003800",
                "42005a090a036170701202643112780801120b0a090a03617070120264311a5f0a1b0a0012001a0022002a0032003800",
                "42005a090a0361707012026431124012220a056e67696e7812056e67696e782a0042006a007200800100880100900100",
                "a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c08001000180020",
                "00280038001a002200",
            ),
            r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"d1","creationTimestamp":null,"labels":{"app":"d1"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"d1"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"d1"}},"spec":{"containers":[{"name":"nginx","image":"nginx","resources":{}}]}},"strategy":{}},"status":{}}"#,
        ),
        // kubectl create deployment d2 --image=busybox --replicas=0 --port=8080 -- sleep 3600
        (
            "deployment_full",
            concat!(
                "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412c6010a1d0a02643212001a0022002a0032003800",
                "42005a090a03617070120264321296010800120b0a090a03617070120264321a7d0a1b0a0012001a0022002a00320038",
                "0042005a090a0361707012026432125e12400a0762757379626f78120762757379626f781a05736c6565701a04333630",
                "302a00320b0a00100018903f22002a0042006a007200800100880100900100a201001a00320042004a00520058006000",
                "68008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200",
            ),
            r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"d2","creationTimestamp":null,"labels":{"app":"d2"}},"spec":{"replicas":0,"selector":{"matchLabels":{"app":"d2"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"d2"}},"spec":{"containers":[{"name":"busybox","image":"busybox","command":["sleep","3600"],"ports":[{"containerPort":8080}],"resources":{}}]}},"strategy":{}},"status":{}}"#,
        ),
        // kubectl create deployment d3 --image=nginx:1.27 --image=redis --replicas=3
        (
            "deployment_multi",
            concat!(
                "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412d2010a1d0a02643312001a0022002a0032003800",
                "42005a090a036170701202643312a2010803120b0a090a03617070120264331a88010a1b0a0012001a0022002a003200",
                "380042005a090a0361707012026433126912270a056e67696e78120a6e67696e783a312e32372a0042006a0072008001",
                "00880100900100a2010012220a057265646973120572656469732a0042006a007200800100880100900100a201001a00",
                "320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c080010001800200028003800",
                "1a002200",
            ),
            r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"d3","creationTimestamp":null,"labels":{"app":"d3"}},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"d3"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"d3"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27","resources":{}},{"name":"redis","image":"redis","resources":{}}]}},"strategy":{}},"status":{}}"#,
        ),
        // kubectl create service clusterip sv1 --tcp=80:8080
        (
            "service",
            concat!(
                "6b3873000a0d0a02763112075365727669636512690a1f0a0373763112001a0022002a003200380042005a0a0a036170",
                "70120373763112420a1b0a0738302d38303830120354435018502207080010903f1a002800120a0a0361707012037376",
                "311a002209436c757374657249503a00420052005a00600068001a020a001a002200",
            ),
            r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"sv1","creationTimestamp":null,"labels":{"app":"sv1"}},"spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080}],"selector":{"app":"sv1"},"type":"ClusterIP"},"status":{"loadBalancer":{}}}"#,
        ),
        // kubectl create service nodeport sv2 --tcp=5678:8080 --node-port=30080
        (
            "service_nodeport",
            concat!(
                "6b3873000a0d0a027631120753657276696365126d0a1f0a0373763212001a0022002a003200380042005a0a0a036170",
                "70120373763212460a200a09353637382d38303830120354435018ae2c2207080010903f1a002880eb01120a0a036170",
                "7012037376321a0022084e6f6465506f72743a00420052005a00600068001a020a001a002200",
            ),
            r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"sv2","creationTimestamp":null,"labels":{"app":"sv2"}},"spec":{"ports":[{"name":"5678-8080","protocol":"TCP","port":5678,"targetPort":8080,"nodePort":30080}],"selector":{"app":"sv2"},"type":"NodePort"},"status":{"loadBalancer":{}}}"#,
        ),
        // kubectl create service clusterip sv3 --clusterip=None
        (
            "service_headless",
            concat!(
                "6b3873000a0d0a02763112075365727669636512500a1f0a0373763312001a0022002a003200380042005a0a0a036170",
                "7012037376331229120a0a0361707012037376331a044e6f6e652209436c757374657249503a00420052005a00600068",
                "001a020a001a002200",
            ),
            r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"sv3","creationTimestamp":null,"labels":{"app":"sv3"}},"spec":{"selector":{"app":"sv3"},"clusterIP":"None","type":"ClusterIP"},"status":{"loadBalancer":{}}}"#,
        ),
        // kubectl create job j1 --image=busybox
        (
            "job",
            concat!(
                "6b3873000a0f0a0862617463682f763112034a6f62127a0a120a026a3112001a0022002a00320038004200125a32580a",
                "100a0012001a0022002a00320038004200124412210a026a31120762757379626f782a0042006a007200800100880100",
                "900100a201001a054e65766572320042004a0052005800600068008201008a01009a0100c201001a082000280030003a",
                "001a002200",
            ),
            r#"{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"j1","creationTimestamp":null},"spec":{"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":[{"name":"j1","image":"busybox","resources":{}}],"restartPolicy":"Never"}}},"status":{}}"#,
        ),
        // kubectl create job j2 --image=busybox -- echo hi
        (
            "job_cmd",
            concat!(
                "6b3873000a0f0a0862617463682f763112034a6f621284010a120a026a3212001a0022002a0032003800420012643262",
                "0a100a0012001a0022002a00320038004200124e122b0a026a32120762757379626f781a046563686f1a0268692a0042",
                "006a007200800100880100900100a201001a054e65766572320042004a0052005800600068008201008a01009a0100c2",
                "01001a082000280030003a001a002200",
            ),
            r#"{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"j2","creationTimestamp":null},"spec":{"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":[{"name":"j2","image":"busybox","command":["echo","hi"],"resources":{}}],"restartPolicy":"Never"}}},"status":{}}"#,
        ),
        // kubectl create cronjob cj1 --image=busybox '--schedule=*/1 * * * *' --restart=OnFailure
        (
            "cronjob",
            concat!(
                "6b3873000a130a0862617463682f7631120743726f6e4a6f6212a1010a130a03636a3112001a0022002a003200380042",
                "001287010a0b2a2f31202a202a202a202a1a002a760a130a03636a3112001a0022002a00320038004200125f325d0a10",
                "0a0012001a0022002a00320038004200124912220a03636a31120762757379626f782a0042006a007200800100880100",
                "900100a201001a094f6e4661696c757265320042004a0052005800600068008201008a01009a0100c201001a001a0022",
                "00",
            ),
            r#"{"kind":"CronJob","apiVersion":"batch/v1","metadata":{"name":"cj1","creationTimestamp":null},"spec":{"schedule":"*/1 * * * *","jobTemplate":{"metadata":{"name":"cj1","creationTimestamp":null},"spec":{"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":[{"name":"cj1","image":"busybox","resources":{}}],"restartPolicy":"OnFailure"}}}}},"status":{}}"#,
        ),
        // kubectl create serviceaccount sa1
        (
            "serviceaccount",
            concat!(
                "6b3873000a140a027631120e536572766963654163636f756e7412150a130a0373613112001a0022002a003200380042",
                "001a002200",
            ),
            r#"{"kind":"ServiceAccount","apiVersion":"v1","metadata":{"name":"sa1","creationTimestamp":null}}"#,
        ),
        // kubectl create priorityclass pc1 --value=1000 --description=high --preemption-policy=Never --global-default=false
        (
            "priorityclass",
            concat!(
                "6b3873000a250a147363686564756c696e672e6b38732e696f2f7631120d5072696f72697479436c61737312270a130a",
                "0370633112001a0022002a0032003800420010e80718002204686967682a054e657665721a002200",
            ),
            r#"{"kind":"PriorityClass","apiVersion":"scheduling.k8s.io/v1","metadata":{"name":"pc1","creationTimestamp":null},"value":1000,"description":"high","preemptionPolicy":"Never"}"#,
        ),
        // kubectl create poddisruptionbudget pdb1 '--selector=app=web,tier in (a,b)' --min-available=50%
        (
            "pdb",
            concat!(
                "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e427564676574124f0a140a0470646231",
                "12001a0022002a00320038004200122b0a09080110001a03353025121e0a0a0a03617070120377656212100a04746965",
                "721202496e1a01611a01621a0a080018002000280030001a002200",
            ),
            r#"{"kind":"PodDisruptionBudget","apiVersion":"policy/v1","metadata":{"name":"pdb1","creationTimestamp":null},"spec":{"minAvailable":"50%","selector":{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"tier","operator":"In","values":["a","b"]}]}},"status":{"disruptionsAllowed":0,"currentHealthy":0,"desiredHealthy":0,"expectedPods":0}}"#,
        ),
        // kubectl create poddisruptionbudget pdb2 --selector=app=web --max-unavailable=1
        (
            "pdb_int",
            concat!(
                "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e427564676574123a0a140a0470646232",
                "12001a0022002a003200380042001216120c0a0a0a0361707012037765621a06080010011a001a0a0800180020002800",
                "30001a002200",
            ),
            r#"{"kind":"PodDisruptionBudget","apiVersion":"policy/v1","metadata":{"name":"pdb2","creationTimestamp":null},"spec":{"selector":{"matchLabels":{"app":"web"}},"maxUnavailable":1},"status":{"disruptionsAllowed":0,"currentHealthy":0,"desiredHealthy":0,"expectedPods":0}}"#,
        ),
        // kubectl create quota q1 --hard=pods=2,cpu=500m,memory=1Gi --scopes=NotTerminating
        (
            "quota",
            concat!(
                "6b3873000a130a027631120d5265736f7572636551756f746112550a120a02713112001a0022002a0032003800420012",
                "3d0a0d0a0363707512060a043530306d0a0f0a066d656d6f727912050a033147690a0b0a04706f647312030a0132120e",
                "4e6f745465726d696e6174696e671a001a002200",
            ),
            r#"{"kind":"ResourceQuota","apiVersion":"v1","metadata":{"name":"q1","creationTimestamp":null},"spec":{"hard":{"cpu":"500m","memory":"1Gi","pods":"2"},"scopes":["NotTerminating"]},"status":{}}"#,
        ),
        // kubectl create role r1 --verb=get,list --resource=pods --resource-name=x
        (
            "role",
            concat!(
                "6b3873000a240a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311204526f6c65122c0a120a02",
                "723112001a0022002a0032003800420012160a036765740a046c69737412001a04706f64732201781a002200",
            ),
            r#"{"kind":"Role","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"r1","creationTimestamp":null},"rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods"],"resourceNames":["x"]}]}"#,
        ),
        // kubectl create clusterrole cr1 --verb=get '--non-resource-url=/logs/*'
        (
            "clusterrole",
            concat!(
                "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b436c7573746572526f6c",
                "6512250a130a0363723112001a0022002a00320038004200120e0a036765742a072f6c6f67732f2a1a002200",
            ),
            r#"{"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"cr1","creationTimestamp":null},"rules":[{"verbs":["get"],"nonResourceURLs":["/logs/*"]}]}"#,
        ),
        // kubectl create rolebinding rb1 --role=r1 --user=alice --serviceaccount=default:sa1 --group=devs
        (
            "rolebinding",
            concat!(
                "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b526f6c6542696e64696e",
                "6712b6010a130a0372623112001a0022002a00320038004200122a0a04557365721219726261632e617574686f72697a",
                "6174696f6e2e6b38732e696f1a05616c6963652200122a0a0547726f75701219726261632e617574686f72697a617469",
                "6f6e2e6b38732e696f1a0464657673220012200a0e536572766963654163636f756e7412001a03736131220764656661",
                "756c741a250a19726261632e617574686f72697a6174696f6e2e6b38732e696f1204526f6c651a0272311a002200",
            ),
            r#"{"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"rb1","creationTimestamp":null},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"},{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"devs"},{"kind":"ServiceAccount","name":"sa1","namespace":"default"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r1"}}"#,
        ),
        // kubectl create clusterrolebinding crb1 --clusterrole=cr1 --user=bob
        (
            "clusterrolebinding",
            concat!(
                "6b3873000a320a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311212436c7573746572526f6c",
                "6542696e64696e67126f0a140a046372623112001a0022002a0032003800420012280a04557365721219726261632e61",
                "7574686f72697a6174696f6e2e6b38732e696f1a03626f6222001a2d0a19726261632e617574686f72697a6174696f6e",
                "2e6b38732e696f120b436c7573746572526f6c651a036372311a002200",
            ),
            r#"{"kind":"ClusterRoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"crb1","creationTimestamp":null},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"bob"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cr1"}}"#,
        ),
        // kubectl create ingress ing1 --class=nginx '--rule=foo.com/bar*=svc1:8080,tls=my-cert' --annotation=a=b
        (
            "ingress",
            concat!(
                "6b3873000a1f0a146e6574776f726b696e672e6b38732e696f2f76311207496e6772657373126f0a1c0a04696e673112",
                "001a0022002a0032003800420062060a0161120162124b12120a07666f6f2e636f6d12076d792d636572741a2e0a0766",
                "6f6f2e636f6d12230a210a1f0a042f626172120f220d0a047376633112050a0010903f1a0650726566697822056e6769",
                "6e781a020a001a002200",
            ),
            r#"{"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"ing1","creationTimestamp":null,"annotations":{"a":"b"}},"spec":{"ingressClassName":"nginx","tls":[{"hosts":["foo.com"],"secretName":"my-cert"}],"rules":[{"host":"foo.com","http":{"paths":[{"path":"/bar","pathType":"Prefix","backend":{"service":{"name":"svc1","port":{"number":8080}}}}]}}]},"status":{"loadBalancer":{}}}"#,
        ),
    ];

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fixture(name: &str) -> Vec<u8> {
        let (_, hex, _) = KUBECTL.iter().find(|(n, _, _)| *n == name).unwrap();
        unhex(hex)
    }

    fn body(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        envelope(Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        })
    }

    fn envelope(u: Unknown) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend(u.encode_to_vec());
        b
    }

    fn raw_of(body: &[u8]) -> Vec<u8> {
        Unknown::decode(&body[4..]).unwrap().raw.unwrap()
    }

    fn object_err(r: Result<Value, ProtobufError>) -> String {
        match r {
            Err(ProtobufError::Object { msg, .. }) => msg,
            other => panic!("expected an Object error, got {other:?}"),
        }
    }

    #[test]
    fn kubectl_bodies_decode_to_the_json_kubectl_prints() {
        assert_eq!(KUBECTL.len(), 25);
        for (name, hex, oracle) in KUBECTL {
            let got = decode(&unhex(hex)).unwrap_or_else(|e| panic!("{name}: {e}"));
            let want: Value = serde_json::from_str(oracle).unwrap();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn kubectl_configmap_and_secret() {
        assert_eq!(
            decode(&fixture("configmap")).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "c1", "creationTimestamp": null},
                   "data": {"a": "b", "x": "y"}})
        );
        assert_eq!(
            decode(&fixture("secret")).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "s1", "creationTimestamp": null},
                   "data": {"k": "dg=="}})
        );
        let cm = decode(&fixture("configmap_files")).unwrap();
        assert_eq!(cm["metadata"]["namespace"], "team-a");
        assert_eq!(cm["binaryData"]["bin"], "aGVsbG//AP5iaW4=");
        assert_eq!(cm["data"]["empty"], "");
        let ns = decode(&fixture("namespace")).unwrap();
        assert_eq!(
            ns,
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "n1", "creationTimestamp": null},
                   "spec": {}, "status": {}})
        );
    }

    #[test]
    fn kubectl_deployment_keeps_pointer_zero_replicas() {
        let d = decode(&fixture("deployment_full")).unwrap();
        assert_eq!(d["spec"]["replicas"], 0);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
            8080
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["command"],
            json!(["sleep", "3600"])
        );
    }

    fn full_meta() -> meta::ObjectMeta {
        meta::ObjectMeta {
            name: Some("cfg".into()),
            generate_name: Some("cfg-".into()),
            namespace: Some("ns1".into()),
            self_link: Some(String::new()),
            uid: Some(String::new()),
            resource_version: Some(String::new()),
            generation: Some(0),
            creation_timestamp: Some(meta::Time {
                seconds: Some(1_700_000_000),
                nanos: Some(5),
            }),
            deletion_timestamp: None,
            deletion_grace_period_seconds: Some(0),
            labels: BTreeMap::from([
                ("app".into(), "web".into()),
                ("empty".into(), String::new()),
            ]),
            annotations: BTreeMap::from([("note".into(), "x\ny".into())]),
            owner_references: vec![meta::OwnerReference {
                api_version: Some("apps/v1".into()),
                kind: Some("ReplicaSet".into()),
                name: Some("rs1".into()),
                uid: Some("u-1".into()),
                controller: Some(true),
                block_owner_deletion: None,
            }],
            finalizers: vec!["example.com/f".into()],
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                operation: Some("Update".into()),
                api_version: Some("v1".into()),
                time: Some(meta::Time {
                    seconds: Some(0),
                    nanos: None,
                }),
                fields_type: Some("FieldsV1".into()),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:data":{}}"#.to_vec()),
                }),
                subresource: None,
            }],
        }
    }

    fn full_meta_json() -> Value {
        json!({
            "name": "cfg", "generateName": "cfg-", "namespace": "ns1",
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "deletionGracePeriodSeconds": 0,
            "labels": {"app": "web", "empty": ""},
            "annotations": {"note": "x\ny"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs1",
                                 "uid": "u-1", "controller": true}],
            "finalizers": ["example.com/f"],
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                               "time": "1970-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:data": {}}}]
        })
    }

    #[test]
    fn configmap_with_every_create_time_field() {
        let cm = core::ConfigMap {
            metadata: Some(full_meta()),
            immutable: Some(false),
            data: BTreeMap::from([("k".into(), "v".into())]),
            binary_data: BTreeMap::from([("b".into(), vec![0, 255])]),
        };
        let got = decode(&body("v1", "ConfigMap", cm.encode_to_vec())).unwrap();
        assert_eq!(
            got,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": full_meta_json(),
                   "immutable": false, "data": {"k": "v"}, "binaryData": {"b": "AP8="}})
        );
    }

    #[test]
    fn secret_with_string_data_type_and_immutable() {
        let s = core::Secret {
            metadata: Some(meta::ObjectMeta {
                generate_name: Some("tok-".into()),
                ..Default::default()
            }),
            immutable: Some(true),
            data: BTreeMap::from([("bin".into(), vec![0xff, 0, 1]), ("e".into(), vec![])]),
            string_data: BTreeMap::from([("plain".into(), "text".into())]),
            r#type: Some("kubernetes.io/basic-auth".into()),
        };
        let got = decode(&body("v1", "Secret", s.encode_to_vec())).unwrap();
        assert_eq!(
            got,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"generateName": "tok-", "creationTimestamp": null},
                   "immutable": true, "data": {"bin": "/wAB", "e": ""},
                   "stringData": {"plain": "text"}, "type": "kubernetes.io/basic-auth"})
        );
    }

    #[test]
    fn namespace_spec_finalizers() {
        let ns = core::Namespace {
            metadata: Some(meta::ObjectMeta {
                name: Some("n".into()),
                ..Default::default()
            }),
            spec: Some(core::NamespaceSpec {
                finalizers: vec!["kubernetes".into()],
            }),
            status: None,
        };
        let got = decode(&body("v1", "Namespace", ns.encode_to_vec())).unwrap();
        assert_eq!(
            got,
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "n", "creationTimestamp": null},
                   "spec": {"finalizers": ["kubernetes"]}, "status": {}})
        );
    }

    #[test]
    fn pod_special_types_inline_and_pointers() {
        let q = |s: &str| Quantity {
            string: Some(s.into()),
        };
        let container = core::Container {
            name: Some("c".into()),
            image: Some("nginx".into()),
            resources: Some(core::ResourceRequirements {
                limits: BTreeMap::from([("cpu".into(), q("500m")), ("memory".into(), q("1Gi"))]),
                ..Default::default()
            }),
            readiness_probe: Some(core::Probe {
                handler: Some(core::ProbeHandler {
                    http_get: Some(core::HttpGetAction {
                        path: Some("/healthz".into()),
                        port: Some(IntOrString {
                            r#type: Some(1),
                            int_val: Some(0),
                            str_val: Some("http".into()),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                period_seconds: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod = core::Pod {
            metadata: Some(meta::ObjectMeta {
                name: Some("p".into()),
                ..Default::default()
            }),
            spec: Some(core::PodSpec {
                containers: vec![container],
                volumes: vec![core::Volume {
                    name: Some("v".into()),
                    volume_source: Some(core::VolumeSource {
                        empty_dir: Some(core::EmptyDirVolumeSource::default()),
                        ..Default::default()
                    }),
                }],
                priority: Some(0),
                termination_grace_period_seconds: Some(30),
                node_name: Some("node-1".into()),
                host_network: Some(false),
                ..Default::default()
            }),
            status: None,
        };
        let got = decode(&body("v1", "Pod", pod.encode_to_vec())).unwrap();
        let spec = &got["spec"];
        assert_eq!(spec["priority"], 0);
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["nodeName"], "node-1");
        assert!(spec.get("hostNetwork").is_none());
        assert_eq!(spec["volumes"], json!([{"name": "v", "emptyDir": {}}]));
        let c = &spec["containers"][0];
        assert_eq!(
            c["resources"],
            json!({"limits": {"cpu": "500m", "memory": "1Gi"}})
        );
        assert_eq!(
            c["readinessProbe"],
            json!({"httpGet": {"path": "/healthz", "port": "http"}})
        );
        assert_eq!(got["status"], json!({}));
    }

    #[test]
    fn int_or_string_as_number() {
        let svc = core::Service {
            spec: Some(core::ServiceSpec {
                ports: vec![core::ServicePort {
                    port: Some(80),
                    target_port: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: Some(String::new()),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = decode(&body("v1", "Service", svc.encode_to_vec())).unwrap();
        assert_eq!(
            got["spec"]["ports"],
            json!([{"port": 80, "targetPort": 8080}])
        );
    }

    #[test]
    fn envelope_errors() {
        assert_eq!(decode(b""), Err(ProtobufError::Empty));
        assert_eq!(decode(b"k8s"), Err(ProtobufError::BadMagic));
        assert_eq!(
            decode(b"{\"kind\":\"ConfigMap\"}"),
            Err(ProtobufError::BadMagic)
        );
        assert!(matches!(decode(b"k8s\0"), Err(ProtobufError::Envelope(_))));
        let full = fixture("configmap");
        // Cut inside the raw field: the envelope itself is truncated.
        let e = decode(&full[..30]).unwrap_err();
        assert!(matches!(e, ProtobufError::Envelope(_)), "{e}");
        assert!(
            e.to_string().starts_with("invalid protobuf envelope"),
            "{e}"
        );
        // Missing kind / apiVersion.
        let mut u = Unknown::decode(&full[4..]).unwrap();
        u.type_meta = Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: None,
        });
        assert!(
            matches!(decode(&envelope(u.clone())), Err(ProtobufError::Envelope(m)) if m.contains("kind"))
        );
        u.type_meta = None;
        assert!(matches!(
            decode(&envelope(u)),
            Err(ProtobufError::Envelope(_))
        ));
    }

    #[test]
    fn encoding_and_content_type_errors() {
        let full = fixture("secret");
        let mut u = Unknown::decode(&full[4..]).unwrap();
        u.content_encoding = Some("gzip".into());
        let e = decode(&envelope(u.clone())).unwrap_err();
        assert_eq!(e, ProtobufError::UnsupportedEncoding("gzip".into()));
        assert!(e.to_string().contains("gzip"));
        u.content_encoding = None;
        u.content_type = Some("application/json".into());
        assert_eq!(
            decode(&envelope(u.clone())),
            Err(ProtobufError::UnsupportedContentType(
                "application/json".into()
            ))
        );
        u.content_type = Some(MEDIA_TYPE.into());
        assert!(decode(&envelope(u)).is_ok());
    }

    #[test]
    fn unsupported_kinds() {
        let raw = raw_of(&fixture("configmap"));
        let e = decode(&body("v1", "Widget", raw.clone())).unwrap_err();
        assert_eq!(
            e,
            ProtobufError::UnsupportedKind {
                api_version: "v1".into(),
                kind: "Widget".into()
            }
        );
        assert!(e.to_string().contains("Widget"));
        assert!(matches!(
            decode(&body("apps/v1", "StatefulSet", raw.clone())),
            Err(ProtobufError::UnsupportedKind { .. })
        ));
        // Right kind, wrong version.
        assert!(matches!(
            decode(&body("v2", "ConfigMap", raw)),
            Err(ProtobufError::UnsupportedKind { .. })
        ));
        assert!(is_supported("v1", "ConfigMap"));
        assert!(is_supported("v1", "Secret"));
        assert!(is_supported("v1", "Namespace"));
        assert!(is_supported("apps/v1", "Deployment"));
        assert!(!is_supported("v1", "Widget"));
        assert_eq!(supported_kinds().count(), schema::ROOTS.len());
    }

    #[test]
    fn truncated_or_mismatched_raw() {
        let raw = raw_of(&fixture("configmap"));
        let msg = object_err(decode(&body(
            "v1",
            "ConfigMap",
            raw[..raw.len() - 3].to_vec(),
        )));
        assert!(msg.contains("truncated"), "{msg}");
        // A Deployment's bytes claimed to be a ConfigMap.
        let deploy = raw_of(&fixture("deployment"));
        let e = decode(&body("v1", "ConfigMap", deploy)).unwrap_err();
        assert!(
            matches!(&e, ProtobufError::Object { kind, .. } if kind == "ConfigMap"),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with("cannot decode ConfigMap from protobuf: data"),
            "{e}"
        );
        // A Secret with binary data claimed to be a ConfigMap: not UTF-8.
        let secret = raw_of(&fixture("secret_files"));
        let msg = object_err(decode(&body("v1", "ConfigMap", secret)));
        assert!(msg.contains("UTF-8") || msg.contains("wire type"), "{msg}");
        // Garbage.
        let msg = object_err(decode(&body("v1", "ConfigMap", vec![0xff; 12])));
        assert!(!msg.is_empty());
    }

    #[test]
    fn invalid_utf8_names_the_field() {
        let cm = core::ConfigMap {
            data: BTreeMap::from([("k".into(), "v".into())]),
            ..Default::default()
        };
        let mut raw = cm.encode_to_vec();
        let last = raw.len() - 1;
        raw[last] = 0xff; // the value "v" becomes invalid UTF-8
        let msg = object_err(decode(&body("v1", "ConfigMap", raw)));
        assert_eq!(msg, "data[\"k\"]: string is not valid UTF-8");
    }

    #[test]
    fn bad_special_values() {
        let bad_q = core::ResourceQuota {
            spec: Some(core::ResourceQuotaSpec {
                hard: BTreeMap::from([(
                    "cpu".into(),
                    Quantity {
                        string: Some("lots".into()),
                    },
                )]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let msg = object_err(decode(&body("v1", "ResourceQuota", bad_q.encode_to_vec())));
        assert!(
            msg.starts_with("spec.hard[\"cpu\"]: quantity \"lots\""),
            "{msg}"
        );
        let bad_port = core::Service {
            spec: Some(core::ServiceSpec {
                ports: vec![core::ServicePort {
                    target_port: Some(IntOrString {
                        r#type: Some(7),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let msg = object_err(decode(&body("v1", "Service", bad_port.encode_to_vec())));
        assert_eq!(
            msg,
            "spec.ports[0].targetPort: impossible IntOrString.Type 7"
        );
        let far = core::ConfigMap {
            metadata: Some(meta::ObjectMeta {
                creation_timestamp: Some(meta::Time {
                    seconds: Some(i64::MAX),
                    nanos: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let msg = object_err(decode(&body("v1", "ConfigMap", far.encode_to_vec())));
        assert!(msg.starts_with("metadata.creationTimestamp: time"), "{msg}");
        let bad_fields = core::ConfigMap {
            metadata: Some(meta::ObjectMeta {
                managed_fields: vec![meta::ManagedFieldsEntry {
                    fields_v1: Some(meta::FieldsV1 {
                        raw: Some(b"{nope".to_vec()),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let msg = object_err(decode(&body("v1", "ConfigMap", bad_fields.encode_to_vec())));
        assert!(
            msg.starts_with("metadata.managedFields[0].fieldsV1: fieldsV1 is not JSON"),
            "{msg}"
        );
    }

    #[test]
    fn quantity_syntax() {
        for ok in [
            "0", "1", "500m", "1Gi", "1.5", "+2k", "-3", "1e3", "2E-2", ".5", "5.",
        ] {
            assert!(valid_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1x", "1..2", "1e", "1Gi2", "--1", "1 Gi", "Gi"] {
            assert!(!valid_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(format_rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1_700_000_000).unwrap(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(format_rfc3339(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(-1).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(
            format_rfc3339(-62_135_596_800).unwrap(),
            "0001-01-01T00:00:00Z"
        );
        assert_eq!(
            format_rfc3339(253_402_300_799).unwrap(),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(format_rfc3339(253_402_300_800), None);
        assert_eq!(format_rfc3339(i64::MAX), None);
        assert_eq!(format_rfc3339(i64::MIN), None);
    }

    static TEST_MSG: Message = Message {
        name: "Test",
        fields: &[
            F(1, "xs", Ty::List(&Ty::I32), O),
            F(2, "names", Ty::List(&Ty::Str), 0),
            F(3, "ptr", Ty::I64, P),
            F(4, "count", Ty::I32, 0),
            F(5, "flag", Ty::Bool, O),
            F(6, "raw", Ty::Bytes, 0),
            F(7, "m", Ty::Map(&Ty::Str), 0),
            F(8, "when", Ty::Time, O),
            F(9, "q", Ty::Quantity, 0),
        ],
    };

    #[test]
    fn go_json_rules_for_absent_fields() {
        assert_eq!(
            Value::Object(message(&TEST_MSG, &[], 0).unwrap()),
            json!({"names": null, "ptr": null, "count": 0, "raw": null, "m": null,
                   "when": null, "q": "0"})
        );
    }

    #[test]
    fn packed_and_unpacked_repeated_varints() {
        // xs: unpacked 1, then packed [2, -1], then unpacked 3.
        let mut b = vec![0x08, 0x01, 0x0a, 0x0b, 0x02];
        b.extend([0xff; 9]);
        b.push(0x01);
        b.extend([0x08, 0x03]);
        let got = message(&TEST_MSG, &b, 0).unwrap();
        assert_eq!(got["xs"], json!([1, 2, -1, 3]));
        // A scalar repeated twice: the last one wins.
        let got = message(&TEST_MSG, &[0x20, 0x05, 0x20, 0x07], 0).unwrap();
        assert_eq!(got["count"], 7);
        // Wrong wire type for a string list.
        let e = message(&TEST_MSG, &[0x10, 0x01], 0)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("names: expected length-delimited"), "{e}");
    }

    #[test]
    fn hostile_wire_data_is_an_error() {
        for bad in [
            &[0x08][..], // varint missing
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ], // > 64 bits
            &[0x12, 0x7f, 0x00], // length past the end
            &[
                0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ], // huge length
            &[0x00, 0x00], // field 0
            &[0x0b],     // group
            &[0x0e],     // wire type 6
            &[0x09, 0x00], // fixed64 truncated
        ] {
            assert!(message(&TEST_MSG, bad, 0).is_err(), "{bad:02x?}");
        }
    }

    /// Flips, truncates and splices the captured bodies; nothing may panic.
    #[test]
    fn mutated_bodies_never_panic() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (_, hex, _) in KUBECTL {
            let good = unhex(hex);
            for cut in 0..good.len() {
                let _ = decode(&good[..cut]);
            }
            let raw = raw_of(&good);
            for cut in 0..raw.len() {
                let _ = decode(&body("apps/v1", "Deployment", raw[..cut].to_vec()));
            }
            for _ in 0..300 {
                let mut b = good.clone();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                let _ = decode(&b);
                let mut r = raw.clone();
                let i = (next() as usize) % r.len();
                r[i] = next() as u8;
                for (v, k) in supported_kinds() {
                    let _ = decode(&body(v, k, r.clone()));
                }
            }
        }
    }

    /// The generated table is consistent: unique numbers and JSON names, sane nesting.
    #[test]
    fn schema_is_consistent() {
        fn check(m: &'static Message, seen: &mut Vec<&'static str>) {
            if seen.contains(&m.name) {
                return;
            }
            seen.push(m.name);
            for (i, f) in m.fields.iter().enumerate() {
                for g in &m.fields[i + 1..] {
                    assert_ne!(f.0, g.0, "{}: duplicate field number", m.name);
                    if !f.1.is_empty() {
                        assert_ne!(f.1, g.1, "{}: duplicate JSON name", m.name);
                    }
                }
                assert_eq!(f.1.is_empty(), f.3 & I != 0, "{}.{}", m.name, f.0);
                let inner = match &f.2 {
                    Ty::List(t) | Ty::Map(t) => {
                        assert!(!matches!(t, Ty::List(_) | Ty::Map(_)), "{}.{}", m.name, f.1);
                        *t
                    }
                    t => t,
                };
                if let Ty::Msg(sub) = inner {
                    check(sub, seen);
                }
            }
        }
        let mut seen = Vec::new();
        for (_, _, m) in schema::ROOTS {
            check(m, &mut seen);
        }
        assert!(seen.len() > 150);
    }
}
