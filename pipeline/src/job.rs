//! One job: its keywords read and checked into a [`JobSpec`], the template of the
//! [`PlannedJob`]s it becomes once its conditions are evaluated and `parallel` expanded.
//!
//! `default:` keywords fill what the job leaves unset (no merging: a job's value replaces
//! the default), subject to `inherit:default`; global variables come before the job's,
//! subject to `inherit:variables` (CI/CD YAML reference, "default", "inherit").

use crate::check::Checker;
use crate::error::Diagnostic;
use crate::expr;
use crate::job_keys::*;
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

/// `parallel:` — N copies, or one job per combination of a matrix.
#[derive(Debug, Clone, Default)]
pub enum Parallel {
    #[default]
    None,
    Count(u32),
    /// Each combination's variables, in the matrix's order.
    Matrix(Vec<Vec<Variable>>),
}

/// One entry of `needs:`.
#[derive(Debug, Clone)]
pub struct NeedSpec {
    pub job: String,
    pub artifacts: bool,
    pub optional: bool,
    /// `parallel:matrix` selecting some instances of a matrix job.
    pub matrix: Option<Vec<Vec<Variable>>>,
    pub pos: Pos,
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

/// GitLab's maximum of `parallel` jobs and of `needs` entries.
const MAX_PARALLEL: usize = 200;
pub const MAX_NEEDS: usize = 50;

/// Reads job `name` (its mapping already `extends`-resolved) with the pipeline's defaults.
pub fn read_job(
    name: &str,
    pos: &Pos,
    job: &Map,
    defaults: &Map,
    global_variables: &[Variable],
    stages: &[String],
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<JobSpec> {
    let check = &mut Checker::new(Some(name), diagnostics);
    for entry in &job.entries {
        if let Some(reason) = unsupported(&entry.key) {
            check.error(&entry.key_pos, reason);
        } else if !JOB_KEYS.contains(&entry.key.as_str()) {
            check.unknown_key(&entry.key_pos, &entry.key, JOB_KEYS, "job");
        }
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
    Some(JobSpec {
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
    })
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

/// `coverage: /regex/` — kept without its slashes.
fn read_coverage(check: &mut Checker<'_>, node: &Node) -> Option<String> {
    let text = check.string(node, "coverage")?;
    match expr::compile_pattern(&text) {
        Ok(_) => text
            .strip_prefix('/')
            .and_then(|t| t.rsplit_once('/'))
            .map(|(p, _)| p.to_owned()),
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

/// `parallel: N` (2 to 200) or `parallel: {matrix: [{VAR: value | [values]}]}`.
fn read_parallel(check: &mut Checker<'_>, node: &Node) -> Parallel {
    match &node.value {
        Value::Int(count) => {
            if !(1..=MAX_PARALLEL as i64).contains(count) {
                check.error(
                    &node.pos,
                    format!("parallel must be between 1 and {MAX_PARALLEL}"),
                );
                return Parallel::None;
            }
            Parallel::Count(*count as u32)
        }
        Value::Map(map) => match map.get("matrix") {
            Some(matrix) => match read_matrix(check, matrix) {
                Some(combinations) if combinations.len() > MAX_PARALLEL => {
                    check.error(
                        &node.pos,
                        format!(
                            "parallel:matrix makes {} jobs, more than {MAX_PARALLEL}",
                            combinations.len()
                        ),
                    );
                    Parallel::None
                }
                Some(combinations) => Parallel::Matrix(combinations),
                None => Parallel::None,
            },
            None => {
                check.error(&node.pos, "parallel must be a number or {matrix: [...]}");
                Parallel::None
            }
        },
        _ => {
            check.error(
                &node.pos,
                format!(
                    "parallel must be a number or {{matrix: [...]}}, not {}",
                    node.kind()
                ),
            );
            Parallel::None
        }
    }
}

/// Every combination of a matrix, in GitLab's order: entries in order, and within one
/// entry the cartesian product with the first variable varying slowest.
pub fn read_matrix(check: &mut Checker<'_>, node: &Node) -> Option<Vec<Vec<Variable>>> {
    let Some(entries) = node.as_seq() else {
        check.error(&node.pos, "parallel:matrix must be a list of mappings");
        return None;
    };
    let mut combinations = Vec::new();
    for entry in entries {
        let Some(map) = entry.as_map() else {
            check.error(
                &entry.pos,
                "each parallel:matrix entry must be a mapping of variables to values",
            );
            return None;
        };
        let mut product: Vec<Vec<Variable>> = vec![Vec::new()];
        for variable in &map.entries {
            let values = check.strings(
                &variable.value,
                &format!("parallel:matrix:{}", variable.key),
            )?;
            product = product
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |value| {
                        let mut next = prefix.clone();
                        next.push(Variable {
                            key: variable.key.clone(),
                            value: value.clone(),
                        });
                        next
                    })
                })
                .collect();
            if product.len() > MAX_PARALLEL * 4 {
                check.error(
                    &entry.pos,
                    format!("parallel:matrix makes more than {MAX_PARALLEL} jobs"),
                );
                return None;
            }
        }
        combinations.extend(product);
    }
    Some(combinations)
}

/// `needs:` — names, or `{job, artifacts, optional, parallel: {matrix}}`.
fn read_needs(check: &mut Checker<'_>, node: &Node) -> Option<Vec<NeedSpec>> {
    let Some(items) = node.as_seq() else {
        check.error(
            &node.pos,
            format!("needs must be a list, not {}", node.kind()),
        );
        return None;
    };
    if items.len() > MAX_NEEDS {
        check.error(
            &node.pos,
            format!(
                "needs lists {} jobs, more than GitLab's limit of {MAX_NEEDS}",
                items.len()
            ),
        );
    }
    let mut needs = Vec::new();
    for item in items {
        let need = match &item.value {
            Value::Map(map) => {
                for key in ["project", "pipeline"] {
                    if map.contains_key(key) {
                        check.error(&item.pos, format!("needs:{key} (artifacts of another pipeline) is not supported by esteira"));
                    }
                }
                for entry in &map.entries {
                    if ![
                        "job",
                        "artifacts",
                        "optional",
                        "parallel",
                        "project",
                        "pipeline",
                        "ref",
                    ]
                    .contains(&entry.key.as_str())
                    {
                        check.unknown_key(
                            &entry.key_pos,
                            &entry.key,
                            &["job", "artifacts", "optional", "parallel"],
                            "needs",
                        );
                    }
                }
                let Some(job) = map.get("job").and_then(|j| check.string(j, "needs:job")) else {
                    check.error(&item.pos, "a needs entry needs 'job'");
                    continue;
                };
                let matrix = map
                    .get("parallel")
                    .and_then(|p| p.as_map().and_then(|m| m.get("matrix")).or(Some(p)))
                    .and_then(|m| read_matrix(check, m));
                NeedSpec {
                    job,
                    artifacts: map
                        .get("artifacts")
                        .and_then(|a| check.bool(a, "needs:artifacts"))
                        .unwrap_or(true),
                    optional: map
                        .get("optional")
                        .and_then(|o| check.bool(o, "needs:optional"))
                        .unwrap_or(false),
                    matrix,
                    pos: item.pos.clone(),
                }
            }
            _ => match check.string(item, "needs") {
                Some(job) => NeedSpec {
                    job,
                    artifacts: true,
                    optional: false,
                    matrix: None,
                    pos: item.pos.clone(),
                },
                None => continue,
            },
        };
        needs.push(need);
    }
    Some(needs)
}
