//! One job: its keywords read and checked into a [`JobSpec`], the template of the
//! [`PlannedJob`]s it becomes once its conditions are evaluated and `parallel` expanded.
//!
//! `default:` keywords fill what the job leaves unset (no merging: a job's value replaces
//! the default), subject to `inherit:default`; global variables come before the job's,
//! subject to `inherit:variables` (CI/CD YAML reference, "default", "inherit").

use crate::check::Checker;
use crate::error::Diagnostic;
use crate::expr;
use crate::graph_keys::{NeedSpec, Parallel, read_needs, read_parallel};
use crate::job_keys::{
    read_allow_failure, read_artifacts, read_build, read_caches, read_deploy, read_environment,
    read_image, read_retry, read_services, read_start_in, read_timeout, read_when,
};
use crate::plan::{AllowFailure, PlannedJob, Variable, When};
use crate::rules::{RefFilter, Rule, read_ref_filter, read_rules};
use crate::vars::{read_variables, set_variable};
use crate::yaml::{Map, Node, Pos, Value};

/// Keywords a job may use (GitLab's, then esteira's extensions).
pub const JOB_KEYS: &[&str] = &[
    "after_script",
    "allow_failure",
    "artifacts",
    "before_script",
    "cache",
    "coverage",
    "dependencies",
    "environment",
    "extends",
    "image",
    "inherit",
    "interruptible",
    "needs",
    "parallel",
    "resource_group",
    "retry",
    "rules",
    "script",
    "services",
    "stage",
    "start_in",
    "tags",
    "timeout",
    "variables",
    "when",
    "only",
    "except",
    "type",
    "manual_confirmation",
    "build",
    "deploy",
    "trigger",
    "pages",
    "release",
    "secrets",
    "id_tokens",
    "hooks",
    "identity",
    "dast_configuration",
    "run",
    "environment",
];

/// GitLab's longest job name.
const MAX_NAME_LEN: usize = 255;

/// Keywords `default:` may set.
pub const DEFAULT_KEYS: &[&str] = &[
    "after_script",
    "artifacts",
    "before_script",
    "cache",
    "hooks",
    "id_tokens",
    "image",
    "interruptible",
    "retry",
    "services",
    "tags",
    "timeout",
];

/// Keywords esteira recognises but cannot honour, and why.
pub fn unsupported(keyword: &str) -> Option<&'static str> {
    Some(match keyword {
        "trigger" => "downstream pipelines (trigger) are not supported by esteira",
        "pages" => "GitLab Pages (pages) is not supported by esteira",
        "release" => "GitLab releases (release) are not supported by esteira",
        "secrets" => {
            "external secrets (secrets) are not supported by esteira; use project variables"
        }
        "id_tokens" => "OIDC tokens (id_tokens) are not supported by esteira",
        "hooks" => "runner hooks (hooks) are not supported by esteira",
        "identity" => "cloud identities (identity) are not supported by esteira",
        "dast_configuration" => "DAST profiles (dast_configuration) are not supported by esteira",
        "run" => "CI steps (run) are not supported by esteira; use script",
        _ => return None,
    })
}

/// Which jobs a job's rules, or its only/except, select.
#[derive(Debug, Clone)]
pub enum Condition {
    Rules(Vec<Rule>),
    OnlyExcept {
        only: Option<RefFilter>,
        except: Option<RefFilter>,
    },
}

/// A job as written, checked, before evaluation.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: String,
    pub pos: Pos,
    pub template: PlannedJob,
    /// Job-level `when`, the default of its rules.
    pub when: Option<When>,
    pub allow_failure: Option<AllowFailure>,
    pub condition: Condition,
    pub parallel: Parallel,
    pub needs: Option<Vec<NeedSpec>>,
    pub dependencies_pos: Option<Pos>,
    /// The job's own `variables:`; the template's are the global ones it inherits then these.
    pub own_variables: Vec<Variable>,
    /// `inherit:variables` as a list of names; `None` inherits all, `Some([])` none.
    pub inherited_variables: Option<Vec<String>>,
}

/// Reads job `name` (its mapping already `extends`-resolved) with the pipeline's defaults.
pub fn read_job(
    name: &str,
    pos: &Pos,
    job: &Map,
    defaults: &Map,
    global_variables: &[Variable],
    stages: &[String],
    diagnostics: &mut Vec<Diagnostic>,
) -> JobSpec {
    let check = &mut Checker::new(Some(name), diagnostics);
    for entry in &job.entries {
        if let Some(reason) = unsupported(&entry.key) {
            check.error(&entry.key_pos, reason);
        } else if !JOB_KEYS.contains(&entry.key.as_str()) {
            check.unknown_key(&entry.key_pos, &entry.key, JOB_KEYS, "job");
        }
    }
    if name.len() > MAX_NAME_LEN || name.trim().is_empty() {
        check.error(
            pos,
            format!("a job name must have 1 to {MAX_NAME_LEN} characters"),
        );
    }
    if name == "pages" {
        check.error(pos, "a job named 'pages' publishes GitLab Pages, which esteira does not support; rename the job");
    }
    let (inherit_default, inherited_variables) = read_inherit(check, job.get("inherit"));
    let get = |key: &str| -> Option<&Node> {
        job.get(key).or_else(|| {
            if inherit_default(key) {
                defaults.get(key)
            } else {
                None
            }
        })
    };
    let mut planned = PlannedJob {
        name: name.to_owned(),
        ..PlannedJob::default()
    };

    let stage = job.get("stage").or_else(|| job.get("type"));
    planned.stage = match stage {
        Some(node) => check.string(node, "stage").unwrap_or_default(),
        None => "test".into(),
    };
    if !stages.contains(&planned.stage)
        && let Some(node) = stage
    {
        check.error(
            &node.pos,
            format!(
                "stage '{}' is not defined in stages ({})",
                planned.stage,
                stages.join(", ")
            ),
        );
    }

    let read_script = |check: &mut Checker<'_>, key: &str| {
        get(key)
            .and_then(|n| check.script(n, key))
            .unwrap_or_default()
    };
    planned.before_script = read_script(check, "before_script");
    planned.script = read_script(check, "script");
    planned.after_script = read_script(check, "after_script");
    planned.build = job.get("build").and_then(|n| read_build(check, n));
    planned.deploy = job.get("deploy").and_then(|n| read_deploy(check, n));
    let actions = [
        job.contains_key("script"),
        job.contains_key("build"),
        job.contains_key("deploy"),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if actions == 0 && !job.contains_key("trigger") && !job.contains_key("run") {
        check.error(
            pos,
            "a job needs 'script' (or esteira's 'build:' or 'deploy:')",
        );
    } else if actions > 1 {
        check.error(
            pos,
            "a job has one of 'script', 'build:' and 'deploy:', not several",
        );
    }
    if job
        .get("script")
        .is_some_and(|s| matches!(&s.value, Value::Seq(items) if items.is_empty()))
    {
        check.error(pos, "script must not be empty");
    }

    planned.image = get("image").and_then(|n| read_image(check, n));
    planned.services = get("services")
        .map(|n| read_services(check, n))
        .unwrap_or_default();
    planned.tags = get("tags")
        .and_then(|n| check.strings(n, "tags"))
        .unwrap_or_default();
    planned.retry = get("retry")
        .and_then(|n| read_retry(check, n))
        .unwrap_or_default();
    planned.timeout_secs = get("timeout").and_then(|n| read_timeout(check, n));
    planned.interruptible = get("interruptible")
        .and_then(|n| check.bool(n, "interruptible"))
        .unwrap_or(false);
    planned.artifacts = get("artifacts").and_then(|n| read_artifacts(check, n));
    planned.cache = get("cache")
        .map(|n| read_caches(check, n))
        .unwrap_or_default();
    planned.resource_group = job
        .get("resource_group")
        .and_then(|n| check.string(n, "resource_group"));
    planned.environment = job
        .get("environment")
        .and_then(|n| read_environment(check, n));
    if let Some(node) = job.get("coverage") {
        planned.coverage = read_coverage(check, node);
    }

    let own_variables = job
        .get("variables")
        .map(|node| read_variables(check, node))
        .unwrap_or_default();
    planned.variables = job_variables(
        global_variables,
        inherited_variables.as_deref(),
        &own_variables,
    );

    let when = job.get("when").and_then(|n| read_when(check, n));
    if let Some(node) = job.get("start_in") {
        planned.start_in_secs = read_start_in(check, node);
    }
    let has_rules = job.contains_key("rules");
    if planned.start_in_secs.is_some() && when != Some(When::Delayed) && !has_rules {
        check.error(pos, "start_in is only for when: delayed");
    }
    if when == Some(When::Delayed) && planned.start_in_secs.is_none() {
        check.error(pos, "when: delayed needs start_in");
    }
    let allow_failure = job
        .get("allow_failure")
        .and_then(|n| read_allow_failure(check, n));

    let condition = read_condition(check, job, pos);
    let parallel = job
        .get("parallel")
        .map(|n| read_parallel(check, n))
        .unwrap_or_default();
    let needs = job.get("needs").and_then(|n| read_needs(check, n));
    planned.dependencies = job
        .get("dependencies")
        .and_then(|n| check.strings(n, "dependencies"));
    JobSpec {
        name: name.to_owned(),
        pos: pos.clone(),
        template: planned,
        when,
        allow_failure,
        condition,
        parallel,
        needs,
        dependencies_pos: job.get("dependencies").map(|n| n.pos.clone()),
        own_variables,
        inherited_variables,
    }
}

/// The global variables a job inherits, then its own (later wins).
pub fn job_variables(
    global: &[Variable],
    inherited: Option<&[String]>,
    own: &[Variable],
) -> Vec<Variable> {
    let mut variables: Vec<Variable> = global
        .iter()
        .filter(|v| inherited.is_none_or(|names| names.contains(&v.key)))
        .cloned()
        .collect();
    for variable in own {
        set_variable(&mut variables, &variable.key, &variable.value);
    }
    variables
}

/// `inherit: {default: bool | [keys], variables: bool | [names]}`, each as the list of
/// names inherited (`None`: all of them).
fn read_inherit(
    check: &mut Checker<'_>,
    node: Option<&Node>,
) -> (impl Fn(&str) -> bool + use<>, Option<Vec<String>>) {
    let Some(map) = node.and_then(|node| {
        let map = node.as_map();
        if map.is_none() {
            check.error(&node.pos, "inherit must be a mapping (default, variables)");
        }
        map
    }) else {
        return (inherit_filter(None), None);
    };
    let mut read = |key: &str| -> Option<Vec<String>> {
        match map.get(key).map(|n| &n.value) {
            None | Some(Value::Bool(true)) => None,
            Some(Value::Bool(false)) => Some(Vec::new()),
            Some(_) => Some(
                map.get(key)
                    .and_then(|n| check.strings(n, &format!("inherit:{key}")))
                    .unwrap_or_default(),
            ),
        }
    };
    let default = inherit_filter(read("default"));
    let variables = read("variables");
    for entry in &map.entries {
        if !["default", "variables"].contains(&entry.key.as_str()) {
            check.unknown_key(
                &entry.key_pos,
                &entry.key,
                &["default", "variables"],
                "inherit",
            );
        }
    }
    (default, variables)
}

fn inherit_filter(names: Option<Vec<String>>) -> impl Fn(&str) -> bool + use<> {
    move |key| {
        names
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == key))
    }
}

/// `coverage: /regex/flags` — kept without its slashes, flags inline.
fn read_coverage(check: &mut Checker<'_>, node: &Node) -> Option<String> {
    let text = check.string(node, "coverage")?;
    match expr::compile_pattern(&text) {
        // Flags become inline (`/total: (\d+)/i` is `(?i)total: (\d+)`).
        Ok(pattern) => Some(pattern.regex.as_str().to_owned()),
        Err(message) => {
            check.error(&node.pos, format!("coverage must be a /regex/: {message}"));
            None
        }
    }
}

fn read_condition(check: &mut Checker<'_>, job: &Map, pos: &Pos) -> Condition {
    let only = job.get("only");
    let except = job.get("except");
    if let Some(rules) = job.get("rules") {
        if only.is_some() || except.is_some() {
            check.error(pos, "rules cannot be used together with only/except");
        }
        return Condition::Rules(read_rules(check, rules, false));
    }
    Condition::OnlyExcept {
        only: only.and_then(|n| read_ref_filter(check, n, "only")),
        except: except.and_then(|n| read_ref_filter(check, n, "except")),
    }
}
