//! A cheap, linear pre-scan that bounds how deeply a YAML/JSON text nests before the
//! YAML parser sees it: the parser's cost grows with the square of the nesting (a
//! 200 KB file of `[[[[…` took 24 s), while every Kubernetes object Plimsoll reads
//! nests about 15 levels deep (25 inside a `List`).
//!
//! The depth is estimated per line as the block nesting (one level per indentation
//! step and per leading `- `) plus the open flow collections (`[`, `{`). Quoted
//! strings, comments and block scalars (`|`, `>`) are skipped, and a bracket counts
//! only where YAML could start a collection (at the start of a value), so brackets in
//! plain text do not add up. The estimate may differ from the parser's depth by a few
//! levels, which the generous limit absorbs.

/// The deepest nesting accepted: 100 levels of mappings and lists (serde_yaml's own
/// recursion limit is 128).
pub const MAX_NESTING_DEPTH: usize = 100;

/// The first line (1-based) where the estimated nesting exceeds [`MAX_NESTING_DEPTH`],
/// with the depth reached there; `None` if the text stays within the limit.
pub(crate) fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut s = Scan::default();
    for (i, line) in text.lines().enumerate() {
        let depth = s.line(line);
        if depth > MAX_NESTING_DEPTH {
            return Some((i + 1, depth));
        }
    }
    None
}

#[derive(Default)]
struct Scan {
    /// Open flow collections.
    flow: usize,
    /// Inside a quoted string (its quote character), possibly spanning lines.
    quote: Option<u8>,
    /// Inside a block scalar whose header line had this indentation.
    block_scalar: Option<usize>,
    /// Indentations of the enclosing block lines.
    indents: Vec<usize>,
}

impl Scan {
    /// Scans one line; returns the deepest nesting estimated on it.
    fn line(&mut self, line: &str) -> usize {
        let b = line.as_bytes();
        let indent = b.iter().take_while(|&&c| c == b' ').count();
        let blank = b[indent..].iter().all(|c| c.is_ascii_whitespace());
        if let Some(parent) = self.block_scalar {
            if blank || indent > parent {
                return 0;
            }
            self.block_scalar = None;
        }
        let mut block = self.indents.len();
        let mut i = indent;
        if self.flow == 0 && self.quote.is_none() && !blank && b[indent] != b'#' {
            if line.starts_with("---") || line.starts_with("...") {
                self.indents.clear();
                return 0;
            }
            while self.indents.last().is_some_and(|&top| top >= indent) {
                self.indents.pop();
            }
            self.indents.push(indent);
            block = self.indents.len();
            // Compact nested sequences (`- - x`) open one level per dash.
            while i + 1 < b.len() && b[i] == b'-' && b[i + 1] == b' ' {
                block += 1;
                i += 2;
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
            }
        }
        let mut deepest = block + self.flow;
        // The last non-blank byte before `i` on this line, and whether blanks followed.
        let mut prev: Option<u8> = None;
        let mut spaced = true;
        let mut last_token_start = i;
        while i < b.len() {
            let c = b[i];
            if let Some(q) = self.quote {
                if q == b'"' && c == b'\\' {
                    i += 2;
                    continue;
                }
                if c == q {
                    if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    self.quote = None;
                    prev = Some(c);
                    spaced = false;
                }
                i += 1;
                continue;
            }
            if c == b' ' || c == b'\t' {
                spaced = true;
                i += 1;
                continue;
            }
            let value_start = match prev {
                None => true,
                Some(b'[' | b'{' | b',') => true,
                Some(b':') => spaced || self.flow > 0,
                Some(b'-' | b'?') => spaced,
                _ => false,
            };
            match c {
                b'#' if spaced || prev.is_none() => break,
                b'"' | b'\'' if value_start => self.quote = Some(c),
                b'[' | b'{' if value_start => {
                    self.flow += 1;
                    deepest = deepest.max(block + self.flow);
                    if deepest > MAX_NESTING_DEPTH {
                        return deepest;
                    }
                }
                b']' | b'}' if self.flow > 0 => self.flow -= 1,
                _ => {}
            }
            if spaced {
                last_token_start = i;
            }
            prev = Some(c);
            spaced = false;
            i += 1;
        }
        // A block scalar header (`key: |`, `- >-`): the lines indented deeper are text.
        if self.flow == 0 && self.quote.is_none() {
            let tail = &line[last_token_start.min(line.len())..];
            let tail = tail.split(" #").next().unwrap_or("").trim_end();
            let is_header = tail
                .strip_prefix(['|', '>'])
                .is_some_and(|r| r.bytes().all(|c| matches!(c, b'-' | b'+' | b'0'..=b'9')));
            if is_header {
                self.block_scalar = Some(indent);
            }
        }
        deepest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_manifests_are_shallow() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web # [[[[\n  labels: {app: web}\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        command: [\"sh\", \"-c\", \"echo [[[[[[\"]\n        args:\n        - |\n          [[[[[[[[[[[[[[[[[[[[[[[[\n        env: [{name: a, value: '[[['}]\n";
        let mut s = Scan::default();
        let deepest = text.lines().map(|l| s.line(l)).max().unwrap();
        assert!(deepest < 12, "{deepest}");
        assert_eq!(too_deep(text), None);
        let json = r#"{"kind":"Pod","spec":{"containers":[{"name":"a","resources":{"requests":{"cpu":"1"}}}]}}"#;
        assert_eq!(too_deep(json), None);
    }

    #[test]
    fn deep_flow_and_block_nesting_are_found_early() {
        let flow = "[".repeat(200_000);
        assert_eq!(too_deep(&flow), Some((1, MAX_NESTING_DEPTH + 1)));
        let mut block = String::new();
        for d in 0..150 {
            block.push_str(&" ".repeat(d));
            block.push_str("a:\n");
        }
        assert_eq!(
            too_deep(&block).map(|(l, _)| l),
            Some(MAX_NESTING_DEPTH + 1)
        );
        let mixed = format!("a:\n  b: {}1", "{x: ".repeat(120));
        assert_eq!(too_deep(&mixed).map(|(l, _)| l), Some(2));
    }
}
