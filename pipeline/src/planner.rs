//! Evaluation of a checked [`Pipeline`] against one event: `workflow:rules`, each job's
//! `rules` or `only`/`except`, `parallel` expansion with GitLab's job names, plan-time
//! variable expansion, and the `needs` graph of the jobs that remain. What the plan holds is
//! counted against a [`JobBudget`] before `parallel` copies are made.

use std::collections::{HashMap, HashSet};

use crate::error::Diagnostic;
use crate::graph_keys::{NeedSpec, Parallel};
use crate::job::{Condition, JobSpec, job_variables};
use crate::job_keys::guess_tier;
use crate::limits::JobBudget;
use crate::pipeline::Pipeline;
use crate::plan::{AllowFailure, Need, Plan, PlannedJob, Variable, When};
use crate::rules::{Env, first_match, only_except_allows};
use crate::vars::{Scope, set_variable};

/// The plan for the event in `env`; `base` holds the event's variables (predefined first).
pub fn plan(pipeline: &Pipeline, env: &Env<'_>, base: &Scope) -> Result<Plan, Vec<Diagnostic>> {
    let mut globals = pipeline.variables.clone();
    if let Some(rules) = &pipeline.workflow {
        let scope = base.with(&globals);
        match first_match(rules, env, &scope) {
            Some(rule) if rule.when != Some(When::Never) => {
                for variable in &rule.variables {
                    set_variable(&mut globals, &variable.key, &variable.value);
                }
            }
            _ => {
                return Ok(Plan {
                    stages: Vec::new(),
                    jobs: Vec::new(),
                    variables: globals,
                });
            }
        }
    }
    let default_only = pipeline.workflow.is_none();
    let mut budget = JobBudget::new("the plan for this event has");
    let mut selected: Vec<(usize, usize, Evaluated<'_>)> = Vec::new();
    for (spec_index, spec) in pipeline.jobs.iter().enumerate() {
        let variables = job_variables(
            &globals,
            spec.inherited_variables.as_deref(),
            &spec.own_variables,
        );
        let evaluated = evaluate_job(spec, variables, default_only, env, base, &mut budget)
            .map_err(|message| vec![spec.pos.error(Some(&spec.name), message)])?;
        if let Some(evaluated) = evaluated {
            let stage = pipeline
                .stages
                .iter()
                .position(|s| *s == spec.template.stage)
                .unwrap_or(0);
            selected.push((stage, spec_index, evaluated));
        }
    }
    selected.sort_by_key(|(stage, _, _)| *stage);
    // "stage: .pre": a pipeline holding only .pre and .post jobs does not run.
    if selected
        .iter()
        .all(|(_, i, _)| [".pre", ".post"].contains(&pipeline.jobs[*i].template.stage.as_str()))
    {
        selected.clear();
    }
    let jobs: Vec<Linked<'_>> = selected
        .into_iter()
        .flat_map(|(_, spec_index, evaluated)| {
            let needs = evaluated.needs;
            evaluated
                .jobs
                .into_iter()
                .map(move |job| (spec_index, needs, job))
        })
        .collect();
    let jobs = link_needs(pipeline, jobs, &mut budget)?;
    let mut stages: Vec<String> = Vec::new();
    for job in &jobs {
        if !stages.contains(&job.stage) {
            stages.push(job.stage.clone());
        }
    }
    Ok(Plan {
        stages,
        jobs,
        variables: globals,
    })
}

/// A job kept by its conditions: its planned copies and the `needs` that apply.
struct Evaluated<'s> {
    jobs: Vec<PlannedJob>,
    needs: Option<&'s [NeedSpec]>,
}

/// A planned job with the index of its spec and its `needs` as written.
type Linked<'s> = (usize, Option<&'s [NeedSpec]>, PlannedJob);

/// The planned copies of one job, or `None` when its conditions exclude it; `Err` when
/// they would not fit in `budget`.
fn evaluate_job<'s>(
    spec: &'s JobSpec,
    mut variables: Vec<Variable>,
    default_only: bool,
    env: &Env<'_>,
    base: &Scope,
    budget: &mut JobBudget,
) -> Result<Option<Evaluated<'s>>, String> {
    let scope = base.with(&variables);
    let mut start_in = spec.template.start_in_secs;
    let mut needs = spec.needs.as_deref();
    let mut interruptible = spec.template.interruptible;
    let (when, allow_failure) = match &spec.condition {
        Condition::Rules(rules) => {
            let Some(rule) = first_match(rules, env, &scope) else {
                return Ok(None);
            };
            needs = rule.needs.as_deref().or(needs);
            interruptible = rule.interruptible.unwrap_or(interruptible);
            for variable in &rule.variables {
                set_variable(&mut variables, &variable.key, &variable.value);
            }
            start_in = rule.start_in_secs.or(start_in);
            let when = rule.when.or(spec.when).unwrap_or_default();
            // "allow_failure": false by default for manual jobs added by rules.
            let manual_from_job = rule.when.is_none() && when == When::Manual;
            let allow = rule
                .allow_failure
                .clone()
                .or_else(|| spec.allow_failure.clone());
            (
                when,
                allow.unwrap_or(if manual_from_job {
                    AllowFailure::Yes
                } else {
                    AllowFailure::No
                }),
            )
        }
        Condition::OnlyExcept { only, except } => {
            if !only_except_allows(only.as_ref(), except.as_ref(), default_only, env, &scope) {
                return Ok(None);
            }
            let when = spec.when.unwrap_or_default();
            // "allow_failure": true by default for `when: manual` jobs.
            let default = if when == When::Manual {
                AllowFailure::Yes
            } else {
                AllowFailure::No
            };
            (when, spec.allow_failure.clone().unwrap_or(default))
        }
    };
    if when == When::Never {
        return Ok(None);
    }
    let mut job = spec.template.clone();
    job.when = when;
    job.allow_failure = allow_failure;
    job.start_in_secs = if when == When::Delayed {
        start_in
    } else {
        None
    };
    job.variables = variables;
    job.interruptible = interruptible;
    budget.charge_jobs(&job, spec.parallel.copies())?;
    let jobs = expand_parallel(spec, job)
        .into_iter()
        .map(|job| expand_plan_time(job, base))
        .collect();
    Ok(Some(Evaluated { jobs, needs }))
}

/// `parallel: N` makes `name 1/N` … `name N/N`; a matrix makes `name: [v1, v2]`.
fn expand_parallel(spec: &JobSpec, job: PlannedJob) -> Vec<PlannedJob> {
    match &spec.parallel {
        Parallel::None => vec![job],
        Parallel::Count(total) => (1..=*total)
            .map(|index| {
                let mut copy = job.clone();
                copy.name = format!("{} {index}/{total}", job.name);
                set_variable(&mut copy.variables, "CI_NODE_INDEX", &index.to_string());
                set_variable(&mut copy.variables, "CI_NODE_TOTAL", &total.to_string());
                copy
            })
            .collect(),
        Parallel::Matrix(combinations) => {
            let total = combinations.len();
            combinations
                .iter()
                .enumerate()
                .map(|(i, combination)| {
                    let mut copy = job.clone();
                    copy.name = matrix_name(&job.name, combination);
                    for variable in combination {
                        set_variable(&mut copy.variables, &variable.key, &variable.value);
                    }
                    set_variable(&mut copy.variables, "CI_NODE_INDEX", &(i + 1).to_string());
                    set_variable(&mut copy.variables, "CI_NODE_TOTAL", &total.to_string());
                    copy
                })
                .collect()
        }
    }
}

/// GitLab's name of one matrix job: `name: [value1, value2]`.
pub fn matrix_name(name: &str, combination: &[Variable]) -> String {
    let values: Vec<&str> = combination.iter().map(|v| v.value.as_str()).collect();
    format!("{name}: [{}]", values.join(", "))
}

/// Expands variables where GitLab does before the job runs: image, services, tags,
/// environment, resource group and esteira's `build:`/`deploy:`.
fn expand_plan_time(mut job: PlannedJob, base: &Scope) -> PlannedJob {
    let mut scope = base.with(&job.variables);
    let x = |text: &mut String, scope: &Scope| *text = scope.expand(text);
    if let Some(environment) = &mut job.environment {
        x(&mut environment.name, &scope);
        if let Some(url) = &mut environment.url {
            x(url, &scope);
        }
        if environment.deployment_tier.is_empty() {
            environment.deployment_tier = guess_tier(&environment.name).to_owned();
        }
        scope.set("CI_ENVIRONMENT_NAME", &environment.name);
    }
    if let Some(image) = &mut job.image {
        x(&mut image.name, &scope);
    }
    for service in &mut job.services {
        x(&mut service.name, &scope);
        service.aliases.iter_mut().for_each(|a| x(a, &scope));
    }
    job.tags.iter_mut().for_each(|t| x(t, &scope));
    if let Some(group) = &mut job.resource_group {
        x(group, &scope);
    }
    if let Some(build) = &mut job.build {
        x(&mut build.context, &scope);
        x(&mut build.dockerfile, &scope);
        build.args.values_mut().for_each(|v| x(v, &scope));
        build.labels.values_mut().for_each(|v| x(v, &scope));
        build.tags.iter_mut().for_each(|t| x(t, &scope));
    }
    if let Some(deploy) = &mut job.deploy {
        x(&mut deploy.image, &scope);
        x(&mut deploy.service, &scope);
        deploy.ports.iter_mut().for_each(|p| x(p, &scope));
        deploy.env.values_mut().for_each(|v| x(v, &scope));
        if let Some(health) = &mut deploy.health
            && let Some(http) = &mut health.http
        {
            x(http, &scope);
        }
    }
    job
}

/// Resolves `needs` against the planned jobs: a parallel job's name stands for all its
/// copies; a missing job is an error unless `optional: true`; cycles are errors.
fn link_needs(
    pipeline: &Pipeline,
    jobs: Vec<Linked<'_>>,
    budget: &mut JobBudget,
) -> Result<Vec<PlannedJob>, Vec<Diagnostic>> {
    let mut copies: HashMap<&str, Vec<String>> = HashMap::new();
    for (spec_index, _, job) in &jobs {
        copies
            .entry(pipeline.jobs[*spec_index].name.as_str())
            .or_default()
            .push(job.name.clone());
    }
    let present: HashSet<String> = jobs.iter().map(|(_, _, j)| j.name.clone()).collect();
    let mut diagnostics = Vec::new();
    let mut linked_jobs = Vec::with_capacity(jobs.len());
    for (spec_index, needs, mut job) in jobs {
        let spec = &pipeline.jobs[spec_index];
        if let Some(dependencies) = &mut job.dependencies {
            dependencies.retain(|d| present.contains(d) || copies.contains_key(d.as_str()));
        }
        if let Some(needs) = needs {
            let mut linked = Vec::new();
            for need in needs {
                let targets: Vec<String> = match &need.matrix {
                    Some(combinations) => combinations
                        .iter()
                        .map(|c| matrix_name(&need.job, c))
                        .filter(|n| present.contains(n))
                        .collect(),
                    // A parallel instance may be named on its own (`job 2/3`, `job: [a]`).
                    None => match copies.get(need.job.as_str()) {
                        Some(names) => names.clone(),
                        None if present.contains(&need.job) => vec![need.job.clone()],
                        None => Vec::new(),
                    },
                };
                if targets.is_empty() && !need.optional {
                    diagnostics.push(need.pos.error(
                        Some(&spec.name),
                        format!("needs '{}', which is not in the pipeline for this event (add optional: true to allow that)", need.job),
                    ));
                }
                linked.extend(targets.into_iter().map(|job| Need {
                    job,
                    artifacts: need.artifacts,
                    optional: need.optional,
                }));
            }
            // A need of a parallel job stands for each of its copies.
            budget
                .charge_json(&linked)
                .map_err(|message| vec![spec.pos.error(Some(&spec.name), message)])?;
            job.needs = Some(linked);
        }
        linked_jobs.push(job);
    }
    let jobs = linked_jobs;
    let edges: Vec<(String, Vec<String>)> = jobs
        .iter()
        .map(|j| {
            (
                j.name.clone(),
                j.needs.iter().flatten().map(|n| n.job.clone()).collect(),
            )
        })
        .collect();
    if let Some(cycle) = find_cycle(&edges) {
        let pos = pipeline.jobs.first().map(|j| j.pos.clone());
        if let Some(pos) = pos {
            diagnostics
                .push(pos.error(None, format!("needs form a cycle: {}", cycle.join(" -> "))));
        }
    }
    if diagnostics.is_empty() {
        Ok(jobs)
    } else {
        Err(diagnostics)
    }
}

/// A cycle in the `needs` graph, as the list of names around it, if there is one.
pub fn find_cycle(edges: &[(String, Vec<String>)]) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = edges
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    // 0: unvisited, 1: on the current path, 2: done.
    let mut state = vec![0u8; edges.len()];
    for start in 0..edges.len() {
        if state[start] != 0 {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            let targets = &edges[node].1;
            if *next < targets.len() {
                let target = index.get(targets[*next].as_str()).copied();
                *next += 1;
                match target.map(|t| (t, state[t])) {
                    Some((t, 0)) => {
                        state[t] = 1;
                        path.push((t, 0));
                    }
                    Some((t, 1)) => {
                        let from = path.iter().position(|(n, _)| *n == t).unwrap_or(0);
                        let mut cycle: Vec<String> = path[from..]
                            .iter()
                            .map(|(n, _)| edges[*n].0.clone())
                            .collect();
                        cycle.push(edges[t].0.clone());
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                path.pop();
            }
        }
    }
    None
}
