//! Variables: reading a `variables:` block, and `$VAR`/`${VAR}` expansion where GitLab
//! expands at plan time (image, services, tags, environment, the esteira extensions).
//!
//! Variables may refer to variables ten levels deep, so a few short values can stand for
//! gigabytes (`A: $B$B$B…`, `B: $C$C$C…`): every byte a substitution produces, and every
//! substitution, is paid from an [`ExpansionBudget`] shared by all the scopes of one plan.
//! Once it is spent, expansion substitutes nothing more and the planner refuses the file.

use std::collections::HashMap;
use std::sync::Arc;

use crate::check::Checker;
use crate::limits::{ExpansionBudget, SUBSTITUTION_COST};
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
    budget: Arc<ExpansionBudget>,
}

impl Scope {
    pub fn new(base: impl IntoIterator<Item = (String, String)>) -> Self {
        Scope {
            base: Arc::new(base.into_iter().collect()),
            overlay: HashMap::new(),
            overriding: Arc::default(),
            budget: Arc::default(),
        }
    }

    /// Whether an expansion in this scope, or any scope derived from the same one, ran out
    /// of budget (its results are then incomplete).
    pub fn budget_exceeded(&self) -> bool {
        self.budget.exceeded()
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
        self.raw(name).map(|value| self.expand_from(value, 1))
    }

    /// Expands `$VAR`, `${VAR}` (unset ones become empty) and `$$` (a literal `$`).
    pub fn expand(&self, text: &str) -> String {
        self.expand_from(text, 0)
    }

    /// `text` expanded; its own characters are free, what substitutions bring is paid.
    fn expand_from(&self, text: &str, depth: usize) -> String {
        if !text.contains('$') {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        self.expand_into(&mut out, text, depth, false);
        out
    }

    /// Appends `piece` to `out`, paying for it when it comes from a substitution.
    fn push(&self, out: &mut String, piece: &str, paid: bool) {
        if !paid || self.budget.spend(piece.len()) {
            out.push_str(piece);
        }
    }

    fn expand_into(&self, out: &mut String, text: &str, depth: usize, paid: bool) {
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            self.push(out, &rest[..at], paid);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                self.push(out, "$", paid);
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
                self.push(out, "$", paid);
                rest = after;
                continue;
            }
            let substituted = self.raw(name);
            if let Some(value) = substituted.filter(|_| self.budget.spend(SUBSTITUTION_COST)) {
                if depth < MAX_DEPTH {
                    self.expand_into(out, value, depth + 1, true);
                } else {
                    self.push(out, value, true);
                }
            }
            rest = &after[consumed..];
        }
        self.push(out, rest, paid);
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
        assert!(!s.budget_exceeded());
    }

    #[test]
    fn an_expansion_bomb_spends_the_budget_and_stops() {
        // Ten references per level, ten levels: 10^10 substitutions if nothing stopped it.
        let ten = "$A".repeat(10);
        let s = scope(&[("A", ten.as_str())]);
        let started = std::time::Instant::now();
        let expanded = s.expand("$A");
        assert!(s.budget_exceeded());
        assert!(expanded.len() <= crate::limits::MAX_EXPANSION_BYTES);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // Scopes derived from it share the spent budget.
        assert!(s.with(&[]).budget_exceeded());
    }
}
