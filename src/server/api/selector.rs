//! Label and field selectors, as `?labelSelector=` / `?fieldSelector=` and `metav1.LabelSelector`
//! objects (`spec.selector` of Deployments, Jobs, PodDisruptionBudgets …) use them.
//!
//! The grammar, validation and matching follow k8s.io/apimachinery v0.32 (`pkg/labels/selector.go`,
//! `pkg/fields/selector.go`, `LabelSelectorAsSelector`), and error texts follow theirs, e.g.
//! `found 'b', expected: ',' or 'end of string'` or
//! `unable to parse requirement: key: Invalid value: "-a": name part must consist of …`.
//!
//! Label selectors: comma-separated requirements, all of which must hold:
//! `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a` (exists), `!a` (does not exist), and the
//! integer comparisons `a>5`, `a<5`. Whitespace may surround tokens. Keys must be qualified names
//! (optional DNS-subdomain prefix and `/`, then ≤ 63 characters of `[A-Za-z0-9._-]` starting and
//! ending alphanumeric); values must be empty or the same shape without a prefix.
//!
//! Field selectors: comma-separated `field=value`, `field==value`, `field!=value`; in values,
//! `\,`, `\=` and `\\` stand for `,`, `=` and `\`. A missing field counts as `""`.

use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// Why a selector could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector string breaks the grammar between requirements (Go's own text).
    #[error("{0}")]
    Syntax(String),
    /// One requirement of a label selector string is malformed or invalid.
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// A requirement built from a `metav1.LabelSelector` object is invalid (bad key, value or values).
    #[error("{0}")]
    Invalid(String),
    /// A `metav1.LabelSelector` JSON object has the wrong shape.
    #[error("invalid label selector object: {0}")]
    Json(String),
    /// A field selector term has no `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm {
        /// The whole selector.
        selector: String,
        /// The term that has no operator.
        term: String,
    },
    /// A field selector value has a backslash not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    FieldEscape(String),
    /// A field selector value has an unescaped `,` or `=`.
    #[error("invalid field selector: unescaped character in value: '{0}'")]
    FieldUnescaped(char),
}

// ---------------------------------------------------------------------------------------------
// Validation (k8s.io/apimachinery/pkg/util/validation).

const QUALIFIED_NAME_MAX: usize = 63;
const SUBDOMAIN_MAX: usize = 253;
const QNAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QNAME_EXAMPLES: &str = "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, without the length limit.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// A lowercase RFC 1123 subdomain: dot-separated labels of `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                (f.is_ascii_lowercase() || f.is_ascii_digit())
                    && (l.is_ascii_lowercase() || l.is_ascii_digit())
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            }
            _ => false,
        }
    })
}

/// The problems `IsQualifiedName` reports for a label key (empty if it is valid).
fn qualified_name_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > SUBDOMAIN_MAX {
                    errs.push(format!(
                        "prefix part must be no more than {SUBDOMAIN_MAX} characters"
                    ));
                }
                if !is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {SUBDOMAIN_MSG}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {QNAME_MSG} {QNAME_EXAMPLES} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!(
            "name part must be no more than {QUALIFIED_NAME_MAX} characters"
        ));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!("name part {QNAME_MSG} {QNAME_EXAMPLES}"));
    }
    errs
}

/// The problems `IsValidLabelValue` reports (empty if it is valid).
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > QUALIFIED_NAME_MAX {
        errs.push(format!(
            "must be no more than {QUALIFIED_NAME_MAX} characters"
        ));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(LABEL_VALUE_MSG.to_string());
    }
    errs
}

/// Whether `key` is a valid label key (a qualified name).
pub fn is_valid_label_key(key: &str) -> bool {
    qualified_name_errors(key).is_empty()
}

/// Whether `value` is a valid label value (empty, or ≤ 63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends).
pub fn is_valid_label_value(value: &str) -> bool {
    label_value_errors(value).is_empty()
}

/// `field.Invalid(path, value, detail).Error()`.
fn invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {value:?}: {detail}")
}

// ---------------------------------------------------------------------------------------------
// Label requirements.

/// The operator of one label requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`.
    Equals,
    /// `key==value`.
    DoubleEquals,
    /// `key!=value` (also true when the label is absent).
    NotEquals,
    /// `key in (v1,v2)`.
    In,
    /// `key notin (v1,v2)` (also true when the label is absent).
    NotIn,
    /// `key`: the label is present.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key>n`: the label is an integer greater than n.
    GreaterThan,
    /// `key<n`: the label is an integer less than n.
    LessThan,
}

/// One requirement of a label selector: a key, an operator and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// A validated requirement (`labels.NewRequirement`); values are sorted and deduplicated.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        let mut errs = Vec::new();
        let key_errs = qualified_name_errors(key);
        if !key_errs.is_empty() {
            errs.push(invalid("key", key, &key_errs.join("; ")));
        }
        let shown = || serde_json::to_string(&values).unwrap_or_default();
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push(format!(
                "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
                shown()
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
                errs.push(format!(
                    "values: Invalid value: {}: exact-match compatibility requires one single value",
                    shown()
                ))
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errs.push(format!(
                "values: Invalid value: {}: values set must be empty for exists and does not exist",
                shown()
            )),
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        shown()
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(invalid(
                            &format!("values[{i}]"),
                            v,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let v_errs = label_value_errors(v);
            if !v_errs.is_empty() {
                errs.push(invalid(
                    &format!("values[{i}][{key}]"),
                    v,
                    &v_errs.join("; "),
                ));
            }
        }
        if !errs.is_empty() {
            let msg = if errs.len() == 1 {
                errs.remove(0)
            } else {
                format!("[{}]", errs.join(", "))
            };
            return Err(SelectorError::Invalid(msg));
        }
        let mut values = values;
        values.sort();
        values.dedup();
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        })
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values (sorted, deduplicated; empty for Exists / DoesNotExist).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether a label whose value is `value` (`None` = absent) satisfies this requirement.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match (self.operator, value) {
            (Operator::In | Operator::Equals | Operator::DoubleEquals, v) => v.is_some_and(has),
            (Operator::NotIn | Operator::NotEquals, v) => !v.is_some_and(has),
            (Operator::Exists, v) => v.is_some(),
            (Operator::DoesNotExist, v) => v.is_none(),
            (Operator::GreaterThan | Operator::LessThan, None) => false,
            (op, Some(v)) => {
                let (Ok(have), [want]) = (v.parse::<i64>(), self.values.as_slice()) else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if op == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            Operator::Exists => return f.write_str(&self.key),
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
        };
        let values = self.values.join(",");
        if matches!(self.operator, Operator::In | Operator::NotIn) {
            write!(f, "{}{op}({values})", self.key)
        } else {
            write!(f, "{}{op}{values}", self.key)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Label selectors.

/// A parsed label selector (`?labelSelector=`), Kubernetes syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-separated (AND).
///
/// Besides the AND of its requirements, a selector can be *nothing* (matches no object): that is
/// what a `null` `metav1.LabelSelector` means. An empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches every object (the empty selector, `""` or `{}`).
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// The selector that matches no object (a `null` `metav1.LabelSelector`).
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the string form (`labels.Parse`); `""` and whitespace select everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let tokens = lex(s);
        let mut p = Parser { tokens, pos: 0 };
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = p.lookahead(Ctx::Values);
            match tok {
                Tok::Ident | Tok::Not => {
                    let r = p.requirement().map_err(|e| match e {
                        SelectorError::Invalid(m) | SelectorError::Syntax(m) => {
                            SelectorError::Requirement(m)
                        }
                        other => other,
                    })?;
                    requirements.push(r);
                    let (t, l) = p.consume(Ctx::Values);
                    match t {
                        Tok::End => break,
                        Tok::Comma => {
                            let (t2, l2) = p.lookahead(Ctx::Values);
                            if t2 != Tok::Ident && t2 != Tok::Not {
                                return Err(SelectorError::Syntax(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(SelectorError::Syntax(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )));
                        }
                    }
                }
                Tok::End => break,
                _ => {
                    return Err(SelectorError::Syntax(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// From a metav1.LabelSelector JSON object (matchLabels / matchExpressions with operators In, NotIn, Exists, DoesNotExist).
    ///
    /// Follows `LabelSelectorAsSelector`: `null` gives [`LabelSelector::nothing`] (matches no
    /// object), `{}` or empty matchLabels and matchExpressions give [`LabelSelector::everything`].
    /// (A *missing* selector field is the caller's choice: pass `&Value::Null` for Go's nil.)
    pub fn from_json(v: &Value) -> Result<Self, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(o) => o,
            other => {
                return Err(SelectorError::Json(format!(
                    "expected an object, got {}",
                    json_type(other)
                )));
            }
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (k, v) in labels {
                    let Value::String(v) = v else {
                        return Err(SelectorError::Json(format!(
                            "matchLabels[{k:?}] must be a string, got {}",
                            json_type(v)
                        )));
                    };
                    requirements.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
                }
            }
            Some(other) => {
                return Err(SelectorError::Json(format!(
                    "matchLabels must be an object, got {}",
                    json_type(other)
                )));
            }
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for (i, e) in exprs.iter().enumerate() {
                    requirements.push(expression(i, e)?);
                }
            }
            Some(other) => {
                return Err(SelectorError::Json(format!(
                    "matchExpressions must be an array, got {}",
                    json_type(other)
                )));
            }
        }
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Whether an object with these labels matches. Non-string label values count as absent.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        self.matches_with(|k| labels.get(k).and_then(Value::as_str))
    }

    /// Whether an object matches, given a lookup of its label values (`None` = no such label).
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        !self.nothing
            && self
                .requirements
                .iter()
                .all(|r| r.matches_value(get(&r.key)))
    }

    /// Whether this selector has no requirements and so matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty() && !self.nothing
    }

    /// Whether this selector matches no object at all (from a `null` metav1.LabelSelector).
    pub fn selects_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, all of which must hold (sorted by key when parsed from a string).
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical string form (`Selector.String()`); `""` for everything and for nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(s)
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One `matchExpressions` entry.
fn expression(i: usize, e: &Value) -> Result<Requirement, SelectorError> {
    let Value::Object(e) = e else {
        return Err(SelectorError::Json(format!(
            "matchExpressions[{i}] must be an object, got {}",
            json_type(e)
        )));
    };
    let string = |name: &str| -> Result<String, SelectorError> {
        match e.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(SelectorError::Json(format!(
                "matchExpressions[{i}].{name} must be a string, got {}",
                json_type(other)
            ))),
        }
    };
    let key = string("key")?;
    let op = string("operator")?;
    let operator = match op.as_str() {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        _ => {
            return Err(SelectorError::Invalid(format!(
                "{op:?} is not a valid label selector operator"
            )));
        }
    };
    let values = match e.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(vs)) => {
            let mut out = Vec::with_capacity(vs.len());
            for (j, v) in vs.iter().enumerate() {
                let Value::String(s) = v else {
                    return Err(SelectorError::Json(format!(
                        "matchExpressions[{i}].values[{j}] must be a string, got {}",
                        json_type(v)
                    )));
                };
                out.push(s.clone());
            }
            out
        }
        Some(other) => {
            return Err(SelectorError::Json(format!(
                "matchExpressions[{i}].values must be an array, got {}",
                json_type(other)
            )));
        }
    };
    Requirement::new(&key, operator, values)
}

// ---------------------------------------------------------------------------------------------
// Label selector lexer and parser (mirrors labels.Lexer / labels.Parser).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    End,
    ClosePar,
    Comma,
    Not,
    DoubleEquals,
    Equals,
    Greater,
    Ident,
    In,
    Less,
    NotEquals,
    NotIn,
    OpenPar,
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn lex(s: &str) -> Vec<(Tok, &str)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && is_whitespace(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            out.push((Tok::End, ""));
            return out;
        }
        let start = i;
        if is_special(b[i]) {
            // Longest match among the one- and two-character symbols.
            let two = b.get(i + 1).copied();
            let tok = match (b[i], two) {
                (b'!', Some(b'=')) => Tok::NotEquals,
                (b'=', Some(b'=')) => Tok::DoubleEquals,
                (b'!', _) => Tok::Not,
                (b'=', _) => Tok::Equals,
                (b'(', _) => Tok::OpenPar,
                (b')', _) => Tok::ClosePar,
                (b',', _) => Tok::Comma,
                (b'>', _) => Tok::Greater,
                _ => Tok::Less,
            };
            i += if matches!(tok, Tok::NotEquals | Tok::DoubleEquals) {
                2
            } else {
                1
            };
            out.push((tok, &s[start..i]));
        } else {
            while i < b.len() && !is_special(b[i]) && !is_whitespace(b[i]) {
                i += 1;
            }
            let word = &s[start..i];
            let tok = match word {
                "in" => Tok::In,
                "notin" => Tok::NotIn,
                _ => Tok::Ident,
            };
            out.push((tok, word));
        }
    }
}

/// Whether `in` / `notin` are keywords (operator position) or plain identifiers (elsewhere).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct Parser<'a> {
    tokens: Vec<(Tok, &'a str)>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn at(&self, i: usize, ctx: Ctx) -> (Tok, &'a str) {
        let (tok, lit) = self.tokens.get(i).copied().unwrap_or((Tok::End, ""));
        match (ctx, tok) {
            (Ctx::Values, Tok::In | Tok::NotIn) => (Tok::Ident, lit),
            _ => (tok, lit),
        }
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, &'a str) {
        self.at(self.pos, ctx)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, &'a str) {
        let t = self.at(self.pos, ctx);
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let syntax = |m: String| SelectorError::Syntax(m);
        // Key, with `!` in front for DoesNotExist, or alone for Exists.
        let (mut tok, mut key) = self.consume(Ctx::Values);
        let mut operator = None;
        if tok == Tok::Not {
            operator = Some(Operator::DoesNotExist);
            (tok, key) = self.consume(Ctx::Values);
        }
        if tok != Tok::Ident {
            return Err(syntax(format!("found '{key}', expected: identifier")));
        }
        let key_errs = qualified_name_errors(key);
        if !key_errs.is_empty() {
            return Err(SelectorError::Invalid(invalid(
                "key",
                key,
                &key_errs.join("; "),
            )));
        }
        if matches!(self.lookahead(Ctx::Values).0, Tok::End | Tok::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        if let Some(op) = operator {
            return Requirement::new(key, op, Vec::new());
        }
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        let op = match tok {
            Tok::In => Operator::In,
            Tok::Equals => Operator::Equals,
            Tok::DoubleEquals => Operator::DoubleEquals,
            Tok::Greater => Operator::GreaterThan,
            Tok::Less => Operator::LessThan,
            Tok::NotIn => Operator::NotIn,
            Tok::NotEquals => Operator::NotEquals,
            _ => {
                return Err(syntax(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                )));
            }
        };
        let values = if matches!(op, Operator::In | Operator::NotIn) {
            self.values()?
        } else {
            self.exact_value()?
        };
        Requirement::new(key, op, values)
    }

    /// `( v1, v2, … )`; `()` and empty items mean the empty value.
    fn values(&mut self) -> Result<Vec<String>, SelectorError> {
        let syntax = |m: String| SelectorError::Syntax(m);
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(syntax(format!("found '{lit}' expected: '('")));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Ident | Tok::Comma => {
                let s = self.identifiers()?;
                let (tok, _) = self.consume(Ctx::Values);
                if tok != Tok::ClosePar {
                    return Err(syntax(format!("found '{lit}', expected: ')'")));
                }
                Ok(s)
            }
            Tok::ClosePar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(syntax(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn identifiers(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut s: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Ident => {
                    s.push(lit.to_string());
                    let (tok2, lit2) = self.lookahead(Ctx::Values);
                    match tok2 {
                        Tok::Comma => continue,
                        Tok::ClosePar => return Ok(s),
                        _ => {
                            return Err(SelectorError::Syntax(format!(
                                "found '{lit2}', expected: ',' or ')'"
                            )));
                        }
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.push(String::new()); // "(,"
                    }
                    let (tok2, _) = self.lookahead(Ctx::Values);
                    if tok2 == Tok::ClosePar {
                        s.push(String::new()); // ",)"
                        return Ok(s);
                    }
                    if tok2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        s.push(String::new()); // ",,"
                    }
                }
                _ => {
                    return Err(SelectorError::Syntax(format!(
                        "found '{lit}', expected: ',', or identifier"
                    )));
                }
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>`, `<`; nothing before `,` or the end means `""`.
    fn exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        if matches!(self.lookahead(Ctx::Values).0, Tok::End | Tok::Comma) {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Ident {
            Ok(vec![lit.to_string()])
        } else {
            Err(SelectorError::Syntax(format!(
                "found '{lit}', expected: identifier"
            )))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field selectors.

/// The operator of one field selector term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value`.
    Equals,
    /// `field==value`.
    DoubleEquals,
    /// `field!=value`.
    NotEquals,
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// The field path, as written (e.g. `metadata.name`, `spec.nodeName`).
    pub field: String,
    /// The operator.
    pub operator: FieldOperator,
    /// The value, unescaped.
    pub value: String,
}

impl FieldTerm {
    /// Whether a field whose value is `value` (absent = `""`) satisfies this term.
    pub fn matches_value(&self, value: &str) -> bool {
        match self.operator {
            FieldOperator::Equals | FieldOperator::DoubleEquals => value == self.value,
            FieldOperator::NotEquals => value != self.value,
        }
    }
}

impl fmt::Display for FieldTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::NotEquals => "!=",
            _ => "=",
        };
        write!(f, "{}{op}{}", self.field, escape_field_value(&self.value))
    }
}

/// A parsed field selector (`?fieldSelector=`): `f=v`, `f==v`, `f!=v`, comma-separated (AND); values may escape `\,` `\=` `\\` as Kubernetes does.
///
/// Like Kubernetes, field names are not checked here (use [`FieldSelector::fields`] to reject the
/// ones a kind does not support) and spaces are not trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// The selector that matches everything (`""`).
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// Parses the string form (`fields.ParseSelector`); empty terms are ignored.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, operator, rhs)) = split_term(part) else {
                return Err(SelectorError::FieldTerm {
                    selector: s.to_string(),
                    term: part.to_string(),
                });
            };
            terms.push(FieldTerm {
                field: field.to_string(),
                operator,
                value: unescape_field_value(rhs)?,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// The fields it names (for the server to reject fields a kind does not support).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.field.as_str())
    }

    /// The terms, all of which must hold (sorted as Kubernetes sorts them).
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// Whether this selector has no terms and so matches everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether an object matches, given a lookup of field values (None = the field is absent, treated as "").
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.terms
            .iter()
            .all(|t| t.matches_value(get(&t.field).as_deref().unwrap_or("")))
    }

    /// For `metadata.name=x` selectors: the single name required, if any (lets the server get instead of list).
    ///
    /// This is the value of the first `=`/`==` term on `field` (`RequiresExactMatch`); other terms
    /// still apply, so the server must still check [`FieldSelector::matches`] on what it gets.
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.operator != FieldOperator::NotEquals)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical string form, values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// Escapes `\`, `,` and `=` in a field selector value (`fields.EscapeValue`).
pub fn escape_field_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits on commas not preceded by a backslash escape.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits `lhs op rhs` at the first `!=`, `==` or `=`.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::DoubleEquals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], kind, rhs));
            }
        }
    }
    None
}

/// Undoes [`escape_field_value`] (`fields.UnescapeValue`).
fn unescape_field_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::FieldEscape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' || c == '=' {
            return Err(SelectorError::FieldUnescaped(c));
        } else {
            out.push(c);
        }
    }
    if in_slash {
        return Err(SelectorError::FieldEscape("\\".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(v) => panic!("{s:?} parsed as {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn label_operators_match_like_kubernetes() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "7", "empty": ""}));
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "app in (db,web)",
            "app notin (db)",
            "missing notin (x)",
            "app",
            "!missing",
            "n>5",
            "n<10",
            "empty=",
            "empty in ()",
            "empty in (,x)",
            "app=web,tier=front",
            "  app = web ,  tier in ( front , back )  ",
            "",
            "   ",
        ];
        for s in yes {
            assert!(sel(s).matches(&l), "{s:?} should match");
        }
        let no = [
            "app=db",
            "app!=web",
            "missing=x",
            "missing in (x)",
            "app notin (web)",
            "missing",
            "!app",
            "n>7",
            "n<7",
            "app>1",
            "missing>1",
            "missing=",
            "app=web,tier=back",
        ];
        for s in no {
            assert!(!sel(s).matches(&l), "{s:?} should not match");
        }
    }

    #[test]
    fn keywords_and_odd_values() {
        let l = labels(json!({"in": "notin", "x": "in"}));
        assert!(sel("in=notin").matches(&l));
        assert!(sel("x in (in,notin)").matches(&l));
        assert!(sel("notin").matches(&labels(json!({"notin": "1"}))));
        // Non-string label values count as absent.
        assert!(!sel("a").matches(&labels(json!({"a": 1}))));
        assert!(sel("a!=1").matches(&labels(json!({"a": 1}))));
        // Prefixed keys.
        let l = labels(json!({"app.kubernetes.io/name": "web"}));
        assert!(sel("app.kubernetes.io/name=web").matches(&l));
        assert!(sel("app.kubernetes.io/name in (web)").matches(&l));
    }

    #[test]
    fn requirements_are_sorted_and_printable() {
        let s = sel("b=1, a in (y,x,y), !c, d notin (q), e, f>3, g<2, h==z, i!=w");
        let keys: Vec<&str> = s.requirements().iter().map(Requirement::key).collect();
        assert_eq!(keys, ["a", "b", "c", "d", "e", "f", "g", "h", "i"]);
        assert_eq!(s.requirements()[0].values(), ["x", "y"]);
        assert_eq!(s.requirements()[0].operator(), Operator::In);
        assert_eq!(
            s.to_string(),
            "a in (x,y),b=1,!c,d notin (q),e,f>3,g<2,h==z,i!=w"
        );
        assert_eq!(sel(&s.to_string()), s);
        assert_eq!("a=b".parse::<LabelSelector>().unwrap(), sel("a=b"));
        assert!(sel("").is_empty());
        assert!(!sel("a").is_empty());
    }

    #[test]
    fn label_syntax_errors() {
        let cases = [
            (
                "a b",
                "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
            ),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("a,", "found '', expected: identifier after ','"),
            ("a,,b", "found ',', expected: identifier after ','"),
            (
                ",a",
                "found ',', expected: !, identifier, or 'end of string'",
            ),
            (
                "=a",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            ("!a=b", "found '=', expected: ',' or 'end of string'"),
            (
                "a in x",
                "unable to parse requirement: found 'x' expected: '('",
            ),
            (
                "a in (x",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "a in (x y)",
                "unable to parse requirement: found 'y', expected: ',' or ')'",
            ),
            (
                "a in (=)",
                "unable to parse requirement: found '=', expected: ',', ')' or identifier",
            ),
            (
                "a=(b)",
                "unable to parse requirement: found '(', expected: identifier",
            ),
            (
                "a in",
                "unable to parse requirement: found '' expected: '('",
            ),
            (
                "a (b)",
                "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "!",
                "unable to parse requirement: found '', expected: identifier",
            ),
            (
                "!=a",
                "found '!=', expected: !, identifier, or 'end of string'",
            ),
        ];
        for (s, want) in cases {
            assert_eq!(err(s), want, "{s:?}");
        }
    }

    #[test]
    fn label_validation_errors() {
        let e = err("-a=b");
        assert!(
            e.starts_with("unable to parse requirement: key: Invalid value: \"-a\": name part must consist of alphanumeric characters"),
            "{e}"
        );
        let e = err("a=-b");
        assert!(
            e.starts_with("unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty string"),
            "{e}"
        );
        let e = err("a>x");
        assert!(e.contains("the value must be an integer"), "{e}");
        assert!(err("Example.com/a").contains("prefix part a lowercase RFC 1123 subdomain"));
        assert!(err("/a").contains("prefix part must be non-empty"));
        assert!(err("a/").contains("name part must be non-empty"));
        assert!(err("a/b/c").contains("a qualified name must consist"));
        assert!(err("a=ü").contains("a valid label must be"));
        assert!(err("ü").contains("name part must consist"));
        let long = "a".repeat(64);
        assert!(err(&long).contains("name part must be no more than 63 characters"));
        assert!(err(&format!("a={long}")).contains("must be no more than 63 characters"));
        sel(&"a".repeat(63));
        sel(&format!("a={}", "b".repeat(63)));
        sel(&format!("{}/x", ["abc"; 63].join(".")));
        assert!(err(&format!("{}/x", ["abcd"; 51].join("."))).contains("no more than 253"));
        sel("a.b-c_d=E.f-G_h");
        assert!(is_valid_label_key("example.com/My_Name.1"));
        assert!(!is_valid_label_key("example.com/"));
        assert!(is_valid_label_value(""));
        assert!(!is_valid_label_value("a b"));
    }

    #[test]
    fn from_json_follows_label_selector_as_selector() {
        let l = labels(json!({"app": "web", "tier": "front"}));
        let nothing = LabelSelector::from_json(&Value::Null).unwrap();
        assert!(nothing.selects_nothing() && !nothing.is_empty());
        assert!(!nothing.matches(&l));
        assert!(!nothing.matches(&Map::new()));
        for empty in [
            json!({}),
            json!({"matchLabels": {}, "matchExpressions": []}),
            json!({"matchLabels": null}),
        ] {
            let s = LabelSelector::from_json(&empty).unwrap();
            assert!(
                s.is_empty() && s.matches(&l) && s.matches(&Map::new()),
                "{empty}"
            );
        }
        let s = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "tier", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist", "values": []},
            ]
        }))
        .unwrap();
        assert!(s.matches(&l));
        assert!(!s.matches(&labels(json!({"app": "web", "tier": "mid"}))));
        assert!(!s.matches(&labels(
            json!({"app": "web", "tier": "front", "legacy": ""})
        )));
        assert!(!s.matches(&labels(
            json!({"app": "web", "tier": "front", "env": "prod"})
        )));
        assert_eq!(
            s.to_string(),
            "app=web,tier in (back,front),env notin (prod),tier,!legacy"
        );
    }

    #[test]
    fn from_json_errors() {
        let e = |v: Value| LabelSelector::from_json(&v).unwrap_err();
        assert_eq!(
            e(json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})),
            SelectorError::Invalid("\"Gt\" is not a valid label selector operator".into())
        );
        assert_eq!(
            e(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}))
                .to_string(),
            "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            e(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}))
                .to_string(),
            "values: Invalid value: [\"x\"]: values set must be empty for exists and does not exist"
        );
        let bad = e(json!({"matchLabels": {"app": "-x"}})).to_string();
        assert!(
            bad.starts_with("values[0][app]: Invalid value: \"-x\""),
            "{bad}"
        );
        let bad = e(json!({"matchExpressions": [{"operator": "Exists"}]})).to_string();
        assert!(
            bad.starts_with("key: Invalid value: \"\": name part must be non-empty"),
            "{bad}"
        );
        let both = e(json!({"matchExpressions": [{"key": "-", "operator": "In"}]})).to_string();
        assert!(both.starts_with("[key: Invalid value"), "{both}");
        for shape in [
            json!([]),
            json!("a=b"),
            json!({"matchLabels": []}),
            json!({"matchLabels": {"a": 1}}),
            json!({"matchExpressions": {}}),
            json!({"matchExpressions": [1]}),
            json!({"matchExpressions": [{"key": 1, "operator": "Exists"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}),
        ] {
            assert!(
                matches!(e(shape.clone()), SelectorError::Json(_)),
                "{shape}"
            );
        }
    }

    fn fsel(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn getter<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |f| {
            pairs
                .iter()
                .find(|(k, _)| *k == f)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn field_selectors_match() {
        let obj = [
            ("metadata.name", "web-1"),
            ("spec.nodeName", "n1"),
            ("status.phase", "Running"),
        ];
        for s in [
            "metadata.name=web-1",
            "metadata.name==web-1",
            "spec.nodeName!=n2",
            "metadata.name=web-1,spec.nodeName=n1",
            "spec.schedulerName=",
            "spec.schedulerName!=x",
            "",
            ",,",
            "status.phase=Running,",
        ] {
            assert!(fsel(s).matches(getter(&obj)), "{s:?}");
        }
        for s in [
            "metadata.name=web-2",
            "spec.nodeName!=n1",
            "spec.schedulerName!=",
            "missing=x",
            "metadata.name=web-1,spec.nodeName=n2",
            "metadata.name= web-1",
        ] {
            assert!(!fsel(s).matches(getter(&obj)), "{s:?}");
        }
    }

    #[test]
    fn field_selector_escapes() {
        let s = fsel(r"metadata.name=a\,b\=c\\d");
        assert_eq!(s.terms().len(), 1);
        assert_eq!(s.terms()[0].value, r"a,b=c\d");
        assert_eq!(s.required_value("metadata.name"), Some(r"a,b=c\d"));
        assert_eq!(s.to_string(), r"metadata.name=a\,b\=c\\d");
        assert_eq!(escape_field_value(r"x,y=z\"), r"x\,y\=z\\");
        assert_eq!(
            FieldSelector::parse(r"a=\q"),
            Err(SelectorError::FieldEscape(r"\q".into()))
        );
        assert_eq!(
            FieldSelector::parse("a=x\\"),
            Err(SelectorError::FieldEscape("\\".into()))
        );
        assert_eq!(
            FieldSelector::parse("a=b=c"),
            Err(SelectorError::FieldUnescaped('='))
        );
        assert_eq!(
            FieldSelector::parse("a=b=c").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: '='"
        );
        assert_eq!(
            FieldSelector::parse("a=b,nonsense")
                .unwrap_err()
                .to_string(),
            "invalid selector: 'a=b,nonsense'; can't understand 'nonsense'"
        );
        // Escapes in values with multibyte characters.
        assert_eq!(fsel(r"a=é\,ü").terms()[0].value, "é,ü");
    }

    #[test]
    fn field_selector_terms_fields_and_required_value() {
        let s = fsel(r"spec.nodeName!=n1,metadata.namespace==ns,metadata.name=x,a!=b\=c");
        let fields: Vec<&str> = s.fields().collect();
        // Sorted by term text, as Kubernetes sorts them.
        assert_eq!(
            fields,
            ["a", "metadata.name", "metadata.namespace", "spec.nodeName"]
        );
        assert_eq!(s.terms()[0].operator, FieldOperator::NotEquals);
        assert_eq!(s.terms()[0].value, "b=c");
        assert_eq!(s.required_value("metadata.name"), Some("x"));
        assert_eq!(s.required_value("metadata.namespace"), Some("ns"));
        assert_eq!(s.required_value("spec.nodeName"), None);
        assert_eq!(s.required_value("other"), None);
        assert!(fsel("").is_empty());
        assert!(FieldSelector::everything().is_empty());
        assert_eq!("a=b".parse::<FieldSelector>().unwrap(), fsel("a=b"));
        assert_eq!(fsel("b=2,a!=1").to_string(), "a!=1,b=2");
    }

    /// Random strings over a hostile alphabet: parsing never panics, and printing a parsed
    /// selector gives one that parses back to the same thing.
    #[test]
    fn random_input_never_panics_and_round_trips() {
        let alphabet: Vec<char> = "ab=!(),<> \t\\éin/.-_0".chars().collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 16) as usize;
            let s: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if let Ok(l) = LabelSelector::parse(&s) {
                assert_eq!(
                    LabelSelector::parse(&l.to_string()).as_ref(),
                    Ok(&l),
                    "{s:?}"
                );
            }
            if let Ok(f) = FieldSelector::parse(&s) {
                let again = FieldSelector::parse(&f.to_string()).unwrap();
                let terms = |f: &FieldSelector| {
                    let mut t: Vec<String> = f.terms().iter().map(|t| t.to_string()).collect();
                    t.sort();
                    t
                };
                assert_eq!(terms(&again), terms(&f), "{s:?}");
                let _ = f.matches(|_| None);
            }
        }
    }
}
