//! Job and pipeline conditions: `rules` (and `workflow:rules`), `only` and `except`.
//!
//! Conditions are parsed once (so that lint reports every mistake) and evaluated against
//! an [`Env`] per event. Semantics follow the CI/CD YAML reference: rules are evaluated in
//! order and the first match decides; a rule without clauses always matches; no match
//! means the job is not added. `only`/`except` default to `only: [branches, tags]`.

use std::cell::OnceCell;

use globset::{GlobBuilder, GlobMatcher};

use crate::check::Checker;
use crate::context::{EventContext, PipelineSource, RefKind};
use crate::duration::parse_duration;
use crate::expr::{self, Expr};
use crate::graph_keys::{NeedSpec, read_needs};
use crate::job_keys::{read_allow_failure, read_when};
use crate::plan::{AllowFailure, Variable, When};
use crate::vars::{Scope, read_variables};
use crate::yaml::{Node, Value};

/// One entry of `rules:`.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub condition: Option<Expr>,
    pub changes: Option<Vec<String>>,
    pub exists: Option<Vec<String>>,
    pub when: Option<When>,
    pub start_in_secs: Option<u64>,
    pub allow_failure: Option<AllowFailure>,
    pub variables: Vec<Variable>,
    /// `rules:needs` replaces the job's `needs`.
    pub needs: Option<Vec<NeedSpec>>,
    pub interruptible: Option<bool>,
}

const RULE_KEYS: &[&str] = &[
    "if",
    "changes",
    "exists",
    "when",
    "start_in",
    "allow_failure",
    "variables",
    "needs",
    "interruptible",
];

/// Reads `rules:` (nested lists from `!reference` are flattened).
pub fn read_rules(check: &mut Checker<'_>, node: &Node, workflow: bool) -> Vec<Rule> {
    let mut items = Vec::new();
    flatten(node, &mut items);
    if !matches!(node.value, Value::Seq(_)) {
        check.error(
            &node.pos,
            format!("rules must be a list of rules, not {}", node.kind()),
        );
        return Vec::new();
    }
    items
        .into_iter()
        .filter_map(|item| read_rule(check, item, workflow))
        .collect()
}

fn flatten<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
    match &node.value {
        Value::Seq(items) => items.iter().for_each(|item| flatten(item, out)),
        _ => out.push(node),
    }
}

fn read_rule(check: &mut Checker<'_>, node: &Node, workflow: bool) -> Option<Rule> {
    let Some(map) = node.as_map() else {
        check.error(
            &node.pos,
            format!(
                "each rule must be a mapping (if, changes, exists, when, ...), not {}",
                node.kind()
            ),
        );
        return None;
    };
    let mut rule = Rule::default();
    for entry in &map.entries {
        let value = &entry.value;
        match entry.key.as_str() {
            "if" => {
                let text = check.string(value, "rules:if")?;
                match expr::parse(&text) {
                    Ok(parsed) => rule.condition = Some(parsed),
                    Err(message) => {
                        check.error(&value.pos, format!("rules:if '{text}': {message}"))
                    }
                }
            }
            "changes" => rule.changes = read_paths(check, value, "rules:changes"),
            "exists" => rule.exists = read_paths(check, value, "rules:exists"),
            "when" => {
                rule.when = read_when(check, value);
                if workflow && !matches!(rule.when, Some(When::Always | When::Never) | None) {
                    check.error(
                        &value.pos,
                        "workflow:rules:when must be 'always' or 'never'",
                    );
                }
            }
            "start_in" => {
                let text = check.string(value, "start_in")?;
                match parse_duration(&text) {
                    Ok(seconds) => rule.start_in_secs = Some(seconds),
                    Err(message) => check.error(&value.pos, message),
                }
            }
            "allow_failure" if !workflow => rule.allow_failure = read_allow_failure(check, value),
            "variables" => rule.variables = read_variables(check, value),
            "needs" if !workflow => rule.needs = read_needs(check, value),
            "interruptible" if !workflow => {
                rule.interruptible = check.bool(value, "rules:interruptible")
            }
            other => check.unknown_key(&entry.key_pos, other, RULE_KEYS, "rules"),
        }
    }
    Some(rule)
}

/// `changes`/`exists`: a list of globs, or `{paths: [...], compare_to: ref}`.
fn read_paths(check: &mut Checker<'_>, node: &Node, what: &str) -> Option<Vec<String>> {
    let paths = match node.as_map() {
        Some(map) => {
            for entry in &map.entries {
                match entry.key.as_str() {
                    "paths" | "compare_to" => {}
                    "project" | "ref" => check.error(
                        &entry.key_pos,
                        format!(
                            "{what}:{} (files of another project) is not supported by esteira",
                            entry.key
                        ),
                    ),
                    other => {
                        check.unknown_key(&entry.key_pos, other, &["paths", "compare_to"], what)
                    }
                }
            }
            match map.get("paths") {
                Some(paths) => check.strings(paths, what)?,
                None => {
                    check.error(&node.pos, format!("{what} needs 'paths'"));
                    return None;
                }
            }
        }
        None => check.strings(node, what)?,
    };
    for path in &paths {
        if let Err(message) = glob(path) {
            check.error(&node.pos, format!("{what}: {message}"));
        }
    }
    Some(paths)
}

fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("invalid glob '{pattern}': {e}"))
}

/// What conditions are evaluated against.
pub struct Env<'a> {
    pub ctx: &'a EventContext,
    /// The repository's files, listed on first use (for `exists`).
    pub repository_files: &'a dyn Fn() -> Vec<String>,
    pub listed: OnceCell<Vec<String>>,
}

impl<'a> Env<'a> {
    pub fn new(ctx: &'a EventContext, repository_files: &'a dyn Fn() -> Vec<String>) -> Self {
        Env {
            ctx,
            repository_files,
            listed: OnceCell::new(),
        }
    }

    fn any_changed(&self, patterns: &[String], scope: &Scope) -> bool {
        let Some(changed) = &self.ctx.changed_files else {
            return true;
        };
        any_match(patterns, changed, scope)
    }

    fn any_exists(&self, patterns: &[String], scope: &Scope) -> bool {
        let files = self.listed.get_or_init(|| (self.repository_files)());
        any_match(patterns, files, scope)
    }
}

fn any_match(patterns: &[String], files: &[String], scope: &Scope) -> bool {
    patterns
        .iter()
        .any(|pattern| match glob(&scope.expand(pattern)) {
            Ok(matcher) => files
                .iter()
                .any(|file| matcher.is_match(file.trim_start_matches('/'))),
            Err(_) => false,
        })
}

/// The first rule whose clauses all hold, if any.
pub fn first_match<'r>(rules: &'r [Rule], env: &Env<'_>, scope: &Scope) -> Option<&'r Rule> {
    rules.iter().find(|rule| {
        rule.condition
            .as_ref()
            .is_none_or(|c| c.eval(&|name| scope.get(name)))
            && rule
                .changes
                .as_ref()
                .is_none_or(|p| env.any_changed(p, scope))
            && rule
                .exists
                .as_ref()
                .is_none_or(|p| env.any_exists(p, scope))
    })
}

/// `only:` or `except:`, in the full form; the list form is `refs`.
#[derive(Debug, Clone, Default)]
pub struct RefFilter {
    pub refs: Option<Vec<String>>,
    pub variables: Option<Vec<Expr>>,
    pub changes: Option<Vec<String>>,
}

pub fn read_ref_filter(check: &mut Checker<'_>, node: &Node, what: &str) -> Option<RefFilter> {
    match &node.value {
        Value::Map(map) => {
            let mut filter = RefFilter::default();
            for entry in &map.entries {
                match entry.key.as_str() {
                    "refs" => filter.refs = read_refs(check, &entry.value, what),
                    "variables" => {
                        let texts = check.strings(&entry.value, &format!("{what}:variables"))?;
                        let mut parsed = Vec::new();
                        for text in texts {
                            match expr::parse(&text) {
                                Ok(e) => parsed.push(e),
                                Err(message) => check.error(
                                    &entry.value.pos,
                                    format!("{what}:variables '{text}': {message}"),
                                ),
                            }
                        }
                        filter.variables = Some(parsed);
                    }
                    "changes" => {
                        filter.changes = read_paths(check, &entry.value, &format!("{what}:changes"))
                    }
                    "kubernetes" => check.error(
                        &entry.key_pos,
                        format!("{what}:kubernetes is not supported by esteira"),
                    ),
                    other => check.unknown_key(
                        &entry.key_pos,
                        other,
                        &["refs", "variables", "changes"],
                        what,
                    ),
                }
            }
            Some(filter)
        }
        _ => Some(RefFilter {
            refs: read_refs(check, node, what),
            ..RefFilter::default()
        }),
    }
}

fn read_refs(check: &mut Checker<'_>, node: &Node, what: &str) -> Option<Vec<String>> {
    let refs = check.strings(node, what)?;
    for reference in &refs {
        let name = reference.split('@').next().unwrap_or(reference);
        if name.len() > 1
            && name.starts_with('/')
            && let Err(message) = expr::compile_pattern(name)
        {
            check.error(&node.pos, format!("{what}: {message}"));
        }
    }
    Some(refs)
}

impl RefFilter {
    /// GitLab: the keys of one `only`/`except` are joined by AND; within a key, any entry
    /// matching is enough.
    pub fn matches(&self, env: &Env<'_>, scope: &Scope) -> bool {
        self.refs
            .as_ref()
            .is_none_or(|refs| refs.iter().any(|r| ref_matches(r, env.ctx)))
            && self
                .variables
                .as_ref()
                .is_none_or(|vars| vars.iter().any(|e| e.eval(&|n| scope.get(n))))
            && self
                .changes
                .as_ref()
                .is_none_or(|paths| env.any_changed(paths, scope))
    }
}

/// One `only`/`except` ref entry: a keyword, a `/regex/`, or an exact name, optionally
/// followed by `@group/project` restricting it to that project.
fn ref_matches(entry: &str, ctx: &EventContext) -> bool {
    let (pattern, project) = match entry.rsplit_once('@') {
        Some((pattern, project)) if !pattern.is_empty() && project.contains('/') => {
            (pattern, Some(project))
        }
        _ => (entry, None),
    };
    if project.is_some_and(|p| p != ctx.project_path) {
        return false;
    }
    let name = match &ctx.git_ref {
        RefKind::Branch(name) | RefKind::Tag(name) => name.as_str(),
    };
    let is_mr = ctx.source == PipelineSource::MergeRequestEvent;
    match pattern {
        "branches" => matches!(ctx.git_ref, RefKind::Branch(_)) && !is_mr,
        "tags" => matches!(ctx.git_ref, RefKind::Tag(_)),
        "merge_requests" => is_mr,
        "api" => ctx.source == PipelineSource::Api,
        "pushes" => ctx.source == PipelineSource::Push,
        "schedules" => ctx.source == PipelineSource::Schedule,
        "web" => ctx.source == PipelineSource::Web,
        "triggers" | "pipelines" => ctx.source == PipelineSource::Trigger,
        "chat" | "external" | "external_pull_requests" => false,
        _ if pattern.len() > 1 && pattern.starts_with('/') => {
            expr::compile_pattern(pattern).is_ok_and(|p| p.regex.is_match(name))
        }
        _ => pattern == name,
    }
}

/// Whether `only`/`except` let the job run. Without `only`, GitLab applies
/// `only: [branches, tags]` — unless the pipeline has `workflow:rules`, which drop that
/// default (GitLab's `Entry::Processable`, "workflow:rules" in the reference).
pub fn only_except_allows(
    only: Option<&RefFilter>,
    except: Option<&RefFilter>,
    default_only: bool,
    env: &Env<'_>,
    scope: &Scope,
) -> bool {
    let branches_and_tags = RefFilter {
        refs: Some(vec!["branches".into(), "tags".into()]),
        ..RefFilter::default()
    };
    let only = only.or(default_only.then_some(&branches_and_tags));
    only.is_none_or(|o| o.matches(env, scope)) && !except.is_some_and(|e| e.matches(env, scope))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::yaml;

    fn ctx(git_ref: RefKind) -> EventContext {
        EventContext {
            git_ref,
            sha: "0123456789abcdef".into(),
            source: PipelineSource::Push,
            changed_files: Some(vec!["src/main.rs".into(), "docs/a.md".into()]),
            variables: BTreeMap::new(),
            overriding_variables: BTreeMap::new(),
            project_path: "group/project".into(),
        }
    }

    fn filter(text: &str) -> RefFilter {
        let node = yaml::parse("ci.yml", text, &mut Default::default()).unwrap();
        let mut diagnostics = Vec::new();
        let filter =
            read_ref_filter(&mut Checker::new(None, &mut diagnostics), &node, "only").unwrap();
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        filter
    }

    fn allows(text: &str, context: &EventContext) -> bool {
        let list = || Vec::new();
        let env = Env::new(context, &list);
        filter(text).matches(&env, &Scope::default())
    }

    // "only:refs / except:refs": names, regexes, keywords.
    #[test]
    fn refs_names_regexes_keywords() {
        let main = ctx(RefKind::Branch("main".into()));
        let tag = ctx(RefKind::Tag("v1.0".into()));
        assert!(allows("[main]", &main));
        assert!(!allows("[master]", &main));
        assert!(allows("[/^ma/]", &main));
        assert!(allows("[/^V1/i]", &tag));
        assert!(allows("[tags]", &tag));
        assert!(!allows("[branches]", &tag));
        assert!(allows("[branches]", &main));
    }

    // "only:refs": `branches@group/project` restricts to the project (not forks).
    #[test]
    fn refs_at_project() {
        let main = ctx(RefKind::Branch("main".into()));
        assert!(allows("[main@group/project]", &main));
        assert!(!allows("[main@fork/project]", &main));
        assert!(allows("[branches@group/project]", &main));
    }

    // "only:changes": any changed file matching any glob.
    #[test]
    fn changes() {
        let main = ctx(RefKind::Branch("main".into()));
        assert!(allows("{changes: ['src/**/*.rs']}", &main));
        assert!(!allows("{changes: ['*.rs']}", &main));
        assert!(!allows("{refs: [main], changes: ['web/*']}", &main));
    }
}
