//! Reading typed values out of YAML nodes while collecting diagnostics.
//!
//! Every keyword reader goes through a [`Checker`], so that each error names the file,
//! position and job, and so that one bad keyword does not hide the others.

use crate::error::Diagnostic;
use crate::yaml::{Node, Pos, Value};

/// How deeply nested lists of script lines are flattened (GitLab's limit).
const MAX_FLATTEN_DEPTH: usize = 10;

pub struct Checker<'a> {
    pub job: Option<&'a str>,
    pub diagnostics: &'a mut Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub fn new(job: Option<&'a str>, diagnostics: &'a mut Vec<Diagnostic>) -> Self {
        Checker { job, diagnostics }
    }

    pub fn error(&mut self, pos: &Pos, message: impl Into<String>) {
        self.diagnostics.push(pos.error(self.job, message));
    }

    /// An unknown key, with "did you mean" when a known one is close.
    pub fn unknown_key(&mut self, pos: &Pos, key: &str, known: &[&str], what: &str) {
        let message = match did_you_mean(key, known) {
            Some(close) => format!("unknown {what} keyword '{key}' (did you mean '{close}'?)"),
            None => format!("unknown {what} keyword '{key}'"),
        };
        self.error(pos, message);
    }

    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(_) | Value::Int(_) | Value::Float(_) => node.scalar_text(),
            _ => {
                self.error(
                    &node.pos,
                    format!("{what} must be a string, not {}", node.kind()),
                );
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.value {
            Value::Bool(value) => Some(value),
            _ => {
                self.error(
                    &node.pos,
                    format!("{what} must be true or false, not {}", node.kind()),
                );
                None
            }
        }
    }

    pub fn int(&mut self, node: &Node, what: &str) -> Option<i64> {
        match node.value {
            Value::Int(value) => Some(value),
            _ => {
                self.error(
                    &node.pos,
                    format!("{what} must be an integer, not {}", node.kind()),
                );
                None
            }
        }
    }

    /// A string or a list of strings (GitLab accepts both for most list keywords).
    pub fn strings(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        match &node.value {
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.string(item, &format!("each entry of {what}"))?);
                }
                Some(out)
            }
            Value::Null => Some(Vec::new()),
            _ => self.string(node, what).map(|s| vec![s]),
        }
    }

    /// Script lines: a string or a list whose nested lists are flattened, as GitLab does
    /// for `!reference` results.
    pub fn script(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        let mut lines = Vec::new();
        self.flatten(node, what, 0, &mut lines).then_some(lines)
    }

    fn flatten(&mut self, node: &Node, what: &str, depth: usize, lines: &mut Vec<String>) -> bool {
        match &node.value {
            Value::Seq(items) if depth < MAX_FLATTEN_DEPTH => items
                .iter()
                .all(|item| self.flatten(item, what, depth + 1, lines)),
            Value::Seq(_) => {
                self.error(
                    &node.pos,
                    format!("{what} nests lists deeper than {MAX_FLATTEN_DEPTH} levels"),
                );
                false
            }
            Value::Null if depth > 0 => true,
            Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                lines.extend(node.scalar_text());
                true
            }
            _ => {
                self.error(
                    &node.pos,
                    format!(
                        "{what} must be a string or a list of strings, not {}",
                        node.kind()
                    ),
                );
                false
            }
        }
    }
}

/// The known name closest to `key` by edit distance, when close enough to be a typo.
pub fn did_you_mean<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let allowed = |candidate: &str| (candidate.len() / 3).max(1);
    known
        .iter()
        // The length difference bounds the distance from below: skip hopeless candidates.
        .filter(|candidate| key.len().abs_diff(candidate.len()) <= allowed(candidate))
        .map(|candidate| (edit_distance(key, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= allowed(candidate))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keywords() {
        assert_eq!(did_you_mean("scirpt", &["script", "stage"]), Some("script"));
        assert_eq!(
            did_you_mean("before_scripts", &["before_script", "script"]),
            Some("before_script")
        );
        assert_eq!(did_you_mean("zzz", &["script", "stage"]), None);
    }
}
