//! The whole file, checked: global keywords (`stages`, `variables`, `default`, `workflow`,
//! the deprecated global `image`/`services`/`cache`/`before_script`/`after_script` and
//! `types`) and every job, plus the checks that need all jobs at once (`needs`,
//! `dependencies`). `default:` and global variables are copied into every job, so the jobs
//! are counted against a [`JobBudget`] as they are read.

use std::collections::HashMap;

use crate::check::Checker;
use crate::error::Diagnostic;
use crate::job::{Condition, DEFAULT_KEYS, JobSpec, read_job, unsupported};
use crate::limits::JobBudget;
use crate::plan::Variable;
use crate::rules::{Rule, read_rules};
use crate::vars::read_variables;
use crate::yaml::{Map, Node, Value};

/// Top-level keywords that are not jobs.
pub const GLOBAL_KEYS: &[&str] = &[
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
    "types",
    "spec",
];

/// Stage list when the file has none (CI/CD YAML reference, "stages").
const DEFAULT_STAGES: &[&str] = &["build", "test", "deploy"];

/// A checked pipeline file, ready to be planned for any event.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Stages in order, `.pre` first and `.post` last.
    pub stages: Vec<String>,
    pub variables: Vec<Variable>,
    pub workflow: Option<Vec<Rule>>,
    /// Visible jobs in file order (hidden `.jobs` are templates only).
    pub jobs: Vec<JobSpec>,
}

/// Reads the resolved configuration; problems go to `diagnostics`.
pub fn read_pipeline(mut root: Map, diagnostics: &mut Vec<Diagnostic>) -> Pipeline {
    remove_nulls(&mut root);
    let root = &root;
    let stages = read_stages(root, diagnostics);
    let variables = root
        .get("variables")
        .map(|n| read_variables(&mut Checker::new(None, diagnostics), n))
        .unwrap_or_default();
    let defaults = read_defaults(root, diagnostics);
    let workflow = root
        .get("workflow")
        .and_then(|n| read_workflow(n, diagnostics));
    let mut jobs = Vec::new();
    let mut budget = JobBudget::new("the file defines");
    let mut refused = false;
    for entry in &root.entries {
        let key = entry.key.as_str();
        if GLOBAL_KEYS.contains(&key) {
            continue;
        }
        if key.starts_with('.') {
            continue;
        }
        match &entry.value.value {
            Value::Map(job) => {
                let spec = read_job(
                    key,
                    &entry.key_pos,
                    job,
                    &defaults,
                    &variables,
                    &stages,
                    diagnostics,
                );
                if let Err(message) = budget.charge_jobs(&spec.template, 1) {
                    diagnostics.push(entry.key_pos.error(Some(key), message));
                    refused = true;
                    break;
                }
                jobs.push(spec);
            }
            _ => {
                let mut check = Checker::new(None, diagnostics);
                if let Some(reason) = unsupported(key) {
                    check.error(&entry.key_pos, reason);
                } else if crate::check::did_you_mean(key, GLOBAL_KEYS).is_some() {
                    check.unknown_key(&entry.key_pos, key, GLOBAL_KEYS, "top-level");
                } else {
                    check.error(
                        &entry.key_pos,
                        format!(
                            "job '{key}' must be a mapping of keywords, not {}",
                            entry.value.kind()
                        ),
                    );
                }
            }
        }
    }
    let pipeline = Pipeline {
        stages,
        variables,
        workflow,
        jobs,
    };
    if !refused {
        check_references(&pipeline, diagnostics);
    }
    pipeline
}

/// GitLab treats a keyword set to null as not set (so a later duplicate `key:` with no
/// value unsets an earlier one): removed from the top level, jobs and `default:`.
fn remove_nulls(root: &mut Map) {
    root.entries.retain(|e| !e.value.is_null());
    for entry in &mut root.entries {
        let is_job_or_default =
            entry.key == "default" || !GLOBAL_KEYS.contains(&entry.key.as_str());
        if let (true, Value::Map(map)) = (is_job_or_default, &mut entry.value.value) {
            map.entries.retain(|e| !e.value.is_null());
        }
    }
}

fn read_stages(root: &Map, diagnostics: &mut Vec<Diagnostic>) -> Vec<String> {
    let node = root.get("stages").or_else(|| root.get("types"));
    let declared = match node {
        Some(node) => Checker::new(None, diagnostics)
            .strings(node, "stages")
            .unwrap_or_default(),
        None => DEFAULT_STAGES.iter().map(|s| s.to_string()).collect(),
    };
    let mut stages = vec![".pre".to_owned()];
    for stage in declared {
        if !stages.contains(&stage) && stage != ".post" {
            stages.push(stage);
        }
    }
    stages.push(".post".to_owned());
    stages
}

/// `default:` merged with the deprecated global keywords it replaces (`default:` wins).
fn read_defaults(root: &Map, diagnostics: &mut Vec<Diagnostic>) -> Map {
    let mut defaults = Map::default();
    for key in [
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
    ] {
        if let Some(entry) = root.entry(key) {
            defaults.insert(key.to_owned(), entry.key_pos.clone(), entry.value.clone());
        }
    }
    let Some(node) = root.get("default") else {
        return defaults;
    };
    let mut check = Checker::new(None, diagnostics);
    let Some(map) = node.as_map() else {
        check.error(
            &node.pos,
            format!("default must be a mapping, not {}", node.kind()),
        );
        return defaults;
    };
    for entry in &map.entries {
        if let Some(reason) = unsupported(&entry.key) {
            check.error(&entry.key_pos, reason);
        } else if !DEFAULT_KEYS.contains(&entry.key.as_str()) {
            check.unknown_key(&entry.key_pos, &entry.key, DEFAULT_KEYS, "default");
        } else {
            defaults.insert(
                entry.key.clone(),
                entry.key_pos.clone(),
                entry.value.clone(),
            );
        }
    }
    defaults
}

fn read_workflow(node: &Node, diagnostics: &mut Vec<Diagnostic>) -> Option<Vec<Rule>> {
    let mut check = Checker::new(None, diagnostics);
    let Some(map) = node.as_map() else {
        check.error(
            &node.pos,
            "workflow must be a mapping (rules, name, auto_cancel)",
        );
        return None;
    };
    for entry in &map.entries {
        if !["rules", "name", "auto_cancel"].contains(&entry.key.as_str()) {
            check.unknown_key(
                &entry.key_pos,
                &entry.key,
                &["rules", "name", "auto_cancel"],
                "workflow",
            );
        }
    }
    map.get("rules")
        .map(|rules| read_rules(&mut check, rules, true))
}

/// `needs` and `dependencies` checked as if every job ran: the jobs exist, run in the same
/// or an earlier stage (dependencies: an earlier one), and `needs` has no cycle.
fn check_references(pipeline: &Pipeline, diagnostics: &mut Vec<Diagnostic>) {
    let stage_of: HashMap<&str, usize> = pipeline
        .jobs
        .iter()
        .map(|job| {
            (
                job.name.as_str(),
                pipeline
                    .stages
                    .iter()
                    .position(|s| *s == job.template.stage)
                    .unwrap_or(0),
            )
        })
        .collect();
    for job in &pipeline.jobs {
        let own_stage = stage_of.get(job.name.as_str()).copied().unwrap_or(0);
        let rule_needs = match &job.condition {
            Condition::Rules(rules) => rules
                .iter()
                .flat_map(|r| r.needs.iter().flatten())
                .collect(),
            Condition::OnlyExcept { .. } => Vec::new(),
        };
        for need in job.needs.iter().flatten().chain(rule_needs) {
            match stage_of
                .get(need.job.as_str())
                .or_else(|| stage_of.get(parallel_base(&need.job)))
            {
                None => diagnostics.push(need.pos.error(
                    Some(&job.name),
                    format!("needs '{}', which is not a job of this pipeline", need.job),
                )),
                Some(&stage) if stage > own_stage => diagnostics.push(need.pos.error(
                    Some(&job.name),
                    format!(
                        "needs '{}', which runs in a later stage ({})",
                        need.job, pipeline.stages[stage]
                    ),
                )),
                Some(_) => {}
            }
        }
        if let (Some(dependencies), Some(pos)) = (&job.template.dependencies, &job.dependencies_pos)
        {
            for dependency in dependencies {
                match stage_of.get(dependency.as_str()) {
                    None => diagnostics.push(pos.error(Some(&job.name), format!("dependencies lists '{dependency}', which is not a job of this pipeline"))),
                    Some(&stage) if stage >= own_stage && job.needs.is_none() => diagnostics.push(pos.error(
                        Some(&job.name),
                        format!("dependencies lists '{dependency}', which does not run in an earlier stage"),
                    )),
                    // "dependencies" with "needs": each dependency must also be needed.
                    Some(_) if job.needs.as_ref().is_some_and(|needs| !needs.iter().any(|n| n.job == *dependency)) => {
                        diagnostics.push(pos.error(
                            Some(&job.name),
                            format!("dependencies lists '{dependency}', which must also be in needs"),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    let edges: Vec<(String, Vec<String>)> = pipeline
        .jobs
        .iter()
        .map(|job| {
            (
                job.name.clone(),
                job.needs.iter().flatten().map(|n| n.job.clone()).collect(),
            )
        })
        .collect();
    if let Some(cycle) = crate::planner::find_cycle(&edges)
        && let Some(job) = pipeline.jobs.iter().find(|j| j.name == cycle[0])
    {
        diagnostics.push(job.pos.error(
            Some(&job.name),
            format!("needs form a cycle: {}", cycle.join(" -> ")),
        ));
    }
}

/// The job a parallel instance's name comes from: `job 2/3` and `job: [a, b]` are `job`.
pub fn parallel_base(name: &str) -> &str {
    if let Some((base, _)) = name.rsplit_once(": [").filter(|_| name.ends_with(']')) {
        return base;
    }
    match name.rsplit_once(' ') {
        Some((base, index))
            if index
                .split_once('/')
                .is_some_and(|(i, n)| is_number(i) && is_number(n)) =>
        {
            base
        }
        _ => name,
    }
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}
