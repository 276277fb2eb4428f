//! Manifest errors: every one names the file, the document (1-based), the object, the line
//! where it can be found, and the field path in Kubernetes spelling.

use crate::records::DatasetError;
use std::fmt::Write as _;

/// Why manifests could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// An object is malformed or inconsistent with the others.
    #[error("{0}")]
    Invalid(Box<InvalidManifest>),
    /// A file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An openb CSV file is malformed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

/// Where and why an object is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(file, *document, object.as_deref(), *line, field.as_deref(), message))]
pub struct InvalidManifest {
    /// File (or source name) the object came from.
    pub file: String,
    /// 1-based document index in the file (`None` for whole-file problems).
    pub document: Option<usize>,
    /// `Kind namespace/name` of the object, when known.
    pub object: Option<String>,
    /// 1-based line in the file, when it can be found.
    pub line: Option<usize>,
    /// Field path, e.g. `spec.containers[0].resources.requests.cpu`.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl From<InvalidManifest> for ManifestError {
    fn from(e: InvalidManifest) -> Self {
        ManifestError::Invalid(Box::new(e))
    }
}

fn describe(
    file: &str,
    document: Option<usize>,
    object: Option<&str>,
    line: Option<usize>,
    field: Option<&str>,
    message: &str,
) -> String {
    let mut s = file.to_string();
    if let Some(d) = document {
        let _ = write!(s, ": document {d}");
    }
    if let Some(o) = object {
        let _ = write!(s, " ({o})");
    }
    if let Some(l) = line {
        let _ = write!(s, ", line {l}");
    }
    s.push_str(": ");
    if let Some(f) = field.filter(|f| !f.is_empty()) {
        let _ = write!(s, "{f}: ");
    }
    s.push_str(message);
    s
}

/// An error inside one object: the field path and the message. The caller adds the file,
/// document, object and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// Field path.
    pub path: String,
    /// What is wrong.
    pub msg: String,
}

/// Builds a [`FieldError`].
pub(crate) fn ferr(path: &str, msg: impl Into<String>) -> FieldError {
    FieldError {
        path: path.to_string(),
        msg: msg.into(),
    }
}

/// Where a document sits: the file text's lines that belong to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DocSpan {
    /// First line (0-based index into the file's lines).
    pub start: usize,
    /// One past the last line.
    pub end: usize,
}

/// Splits `text` into document spans the way YAML's `---` separators do. Returns `None`
/// when the split does not look reliable (the caller then reports no lines).
pub(crate) fn doc_spans(text: &str) -> Vec<DocSpan> {
    let lines: Vec<&str> = text.lines().collect();
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("---") {
            spans.push(DocSpan { start, end: i });
            start = i + 1;
        }
    }
    spans.push(DocSpan {
        start,
        end: lines.len(),
    });
    // Drop spans with no content (a leading `---`, a trailing separator).
    spans
        .into_iter()
        .filter(|s| {
            lines[s.start..s.end].iter().any(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with('#') && t != "..."
            })
        })
        .collect()
}

/// Finds the 1-based line of `path` (e.g. `spec.containers[1].resources`) inside the
/// document span by scanning for each key in turn (YAML `key:` or JSON `"key":`), skipping
/// block-sequence items for indices. `None` if a key cannot be found.
pub(crate) fn find_line(lines: &[&str], span: DocSpan, path: &str) -> Option<usize> {
    // A quoted map key such as `metadata.annotations["plimsoll.io/gpu-milli"]` may
    // contain dots: find the head, then the key after it.
    if let Some(q) = path.find("[\"") {
        let head = find_line(lines, span, &path[..q])?;
        let key = path[q + 2..].trim_end_matches("\"]");
        let pats = [format!("{key}:"), format!("\"{key}\":")];
        return (head - 1..span.end)
            .find(|&i| {
                pats.iter()
                    .any(|p| lines[i].trim_start().starts_with(p.as_str()))
            })
            .map(|i| i + 1);
    }
    let mut pos = span.start;
    let mut found = None;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (key, indices) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        let pats = [
            format!("{key}:"),
            format!("\"{key}\":"),
            format!("'{key}':"),
        ];
        let at_start = (pos..span.end).find(|&i| {
            let t = lines[i].trim_start().trim_start_matches("- ").trim_start();
            pats.iter().any(|p| t.starts_with(p.as_str()))
        });
        // Flow style (`spec: {minMember: 3}`): the key follows `{`, `,` or a space.
        let hit = at_start.or_else(|| {
            (pos..span.end).find(|&i| {
                pats.iter().any(|p| {
                    ["{", ",", " "]
                        .iter()
                        .any(|sep| lines[i].contains(&format!("{sep}{p}")))
                })
            })
        })?;
        pos = hit;
        found = Some(hit);
        for ix in indices
            .split(['[', ']'])
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse::<usize>().ok())
        {
            // The items of a block sequence start with `-` at one indentation.
            // The items of a block sequence start with `-` at one indentation. A flow
            // list (`[...]`, JSON) is not followed item by item: the line holding the
            // list is the answer then.
            let indent_of = |l: &str| l.len() - l.trim_start().len();
            let key_indent = indent_of(lines[pos]);
            let item = (!lines[pos].contains('['))
                .then(|| (pos + 1..span.end).find(|&i| lines[i].trim_start().starts_with('-')))
                .flatten()
                .filter(|&first| indent_of(lines[first]) >= key_indent)
                .and_then(|first| {
                    let indent = indent_of(lines[first]);
                    (first..span.end)
                        .take_while(|&i| {
                            let l = lines[i];
                            l.trim().is_empty()
                                || indent_of(l) > indent
                                || (indent_of(l) == indent && l.trim_start().starts_with('-'))
                        })
                        .filter(|&i| {
                            indent_of(lines[i]) == indent && lines[i].trim_start().starts_with('-')
                        })
                        .nth(ix)
                });
            let Some(item) = item else {
                return found.map(|l| l + 1);
            };
            pos = item;
            found = Some(item);
        }
    }
    found.map(|l| l + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_lines() {
        let text = "a: 1\n---\nkind: Pod\nspec:\n  containers:\n  - name: a\n    resources: {}\n  - name: b\n    resources:\n      requests:\n        cpu: x\n";
        let lines: Vec<&str> = text.lines().collect();
        let spans = doc_spans(text);
        assert_eq!(spans.len(), 2);
        let l = find_line(
            &lines,
            spans[1],
            "spec.containers[1].resources.requests.cpu",
        );
        assert_eq!(l, Some(11));
        assert_eq!(
            find_line(&lines, spans[1], "spec.containers[0].name"),
            Some(6)
        );
        assert_eq!(find_line(&lines, spans[1], "spec.nothing"), None);
        // A sibling list after the one indexed is not counted.
        let text = "spec:\n  containers:\n  - name: a\n  volumes:\n  - name: v\n";
        let lines: Vec<&str> = text.lines().collect();
        let span = doc_spans(text)[0];
        assert_eq!(find_line(&lines, span, "spec.containers[1].name"), Some(2));
        // A flow list stops at the line holding it.
        let text = "spec:\n  tolerations: [{key: a, operater: Exists}]\n";
        let lines: Vec<&str> = text.lines().collect();
        let span = doc_spans(text)[0];
        assert_eq!(
            find_line(&lines, span, "spec.tolerations[0].operater"),
            Some(2)
        );
    }
}
