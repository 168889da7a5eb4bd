//! Variables: reading a `variables:` block, and `$VAR`/`${VAR}` expansion where GitLab
//! expands at plan time (image, services, tags, environment, the esteira extensions).

use std::collections::HashMap;
use std::sync::Arc;

use crate::check::Checker;
use crate::plan::Variable;
use crate::yaml::{Node, Value};

/// How deep a variable may refer to another before expansion stops.
const MAX_DEPTH: usize = 10;

/// Reads a `variables:` mapping: `KEY: value` or `KEY: {value, description, expand, options}`.
pub fn read_variables(check: &mut Checker<'_>, node: &Node) -> Vec<Variable> {
    let Some(map) = node.as_map() else {
        if !node.is_null() {
            check.error(
                &node.pos,
                format!(
                    "variables must be a mapping of names to values, not {}",
                    node.kind()
                ),
            );
        }
        return Vec::new();
    };
    let mut variables = Vec::new();
    for entry in &map.entries {
        // Docker passes any name without '=' or blanks into the job's environment.
        let invalid = |c: char| c == '=' || c.is_whitespace() || c == '\0';
        if entry.key.is_empty() || entry.key.contains(invalid) {
            check.error(
                &entry.key_pos,
                format!(
                    "'{}' is not a valid variable name (no '=' or blanks)",
                    entry.key
                ),
            );
            continue;
        }
        let value = match &entry.value.value {
            Value::Map(options) => {
                for option in &options.entries {
                    if !["value", "description", "expand", "options"].contains(&option.key.as_str())
                    {
                        check.unknown_key(
                            &option.key_pos,
                            &option.key,
                            &["value", "description", "expand", "options"],
                            "variable",
                        );
                    }
                }
                match options.get("value") {
                    Some(value) => scalar_value(check, &entry.key, value),
                    None => Some(String::new()),
                }
            }
            _ => scalar_value(check, &entry.key, &entry.value),
        };
        if let Some(value) = value {
            variables.push(Variable {
                key: entry.key.clone(),
                value,
            });
        }
    }
    variables
}

fn scalar_value(check: &mut Checker<'_>, key: &str, node: &Node) -> Option<String> {
    match &node.value {
        Value::Null => Some(String::new()),
        Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) => node.scalar_text(),
        _ => {
            check.error(
                &node.pos,
                format!(
                    "variable '{key}' must be a string or a number, not {}",
                    node.kind()
                ),
            );
            None
        }
    }
}

/// Sets `key` in `list`, replacing an earlier definition (later wins) at its place.
pub fn set_variable(list: &mut Vec<Variable>, key: &str, value: &str) {
    match list.iter_mut().find(|v| v.key == key) {
        Some(existing) => existing.value = value.to_owned(),
        None => list.push(Variable {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// The variables a job sees: the event's (predefined) then the file's, later wins, and
/// over both the overriding ones (project and pipeline variables). The event's and the
/// overriding ones are shared between the scopes of all jobs.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    base: Arc<HashMap<String, String>>,
    overlay: HashMap<String, String>,
    overriding: Arc<HashMap<String, String>>,
}

impl Scope {
    pub fn new(base: impl IntoIterator<Item = (String, String)>) -> Self {
        Scope {
            base: Arc::new(base.into_iter().collect()),
            overlay: HashMap::new(),
            overriding: Arc::default(),
        }
    }

    /// This scope with `overriding` winning over every other variable.
    pub fn overridden_by(mut self, overriding: impl IntoIterator<Item = (String, String)>) -> Self {
        self.overriding = Arc::new(overriding.into_iter().collect());
        self
    }

    pub fn with(&self, variables: &[Variable]) -> Scope {
        let mut scope = self.clone();
        for variable in variables {
            scope
                .overlay
                .insert(variable.key.clone(), variable.value.clone());
        }
        scope
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.overlay.insert(key.to_owned(), value.to_owned());
    }

    fn raw(&self, name: &str) -> Option<&String> {
        self.overriding
            .get(name)
            .or_else(|| self.overlay.get(name))
            .or_else(|| self.base.get(name))
    }

    /// A variable's value with its own references expanded, `None` when unset.
    pub fn get(&self, name: &str) -> Option<String> {
        self.raw(name).map(|value| self.expand_depth(value, 1))
    }

    /// Expands `$VAR`, `${VAR}` (unset ones become empty) and `$$` (a literal `$`).
    pub fn expand(&self, text: &str) -> String {
        self.expand_depth(text, 0)
    }

    fn expand_depth(&self, text: &str, depth: usize) -> String {
        if !text.contains('$') {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
                continue;
            }
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(close) => (&braced[..close], close + 2),
                    None => ("", 0),
                }
            } else {
                let len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..len], len)
            };
            if name.is_empty() {
                out.push('$');
                rest = after;
                continue;
            }
            if let Some(value) = self.raw(name) {
                if depth < MAX_DEPTH {
                    out.push_str(&self.expand_depth(value, depth + 1));
                } else {
                    out.push_str(value);
                }
            }
            rest = &after[consumed..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(pairs: &[(&str, &str)]) -> Scope {
        Scope::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    // "Use CI/CD variables in job scripts": $VAR and ${VAR}; unset variables expand to nothing.
    #[test]
    fn expands_both_forms() {
        let s = scope(&[("A", "x"), ("REG", "registry:5000/app")]);
        assert_eq!(s.expand("$REG:${A}-$NOPE."), "registry:5000/app:x-.");
        assert_eq!(s.expand("cost $$5"), "cost $5");
    }

    #[test]
    fn expands_references_inside_values() {
        let s = scope(&[("IMAGE", "$REG/app"), ("REG", "r.local")]);
        assert_eq!(s.expand("$IMAGE:1"), "r.local/app:1");
        assert_eq!(s.get("IMAGE").as_deref(), Some("r.local/app"));
    }

    #[test]
    fn self_reference_stops() {
        let s = scope(&[("A", "$A-x")]);
        assert!(s.expand("$A").ends_with("-x"));
    }
}
