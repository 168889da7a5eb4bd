//! What `esteira exec` runs: the event made from the local git state (branch, commit,
//! message, predefined `CI_*` variables), the plan the `pipeline` crate makes for it as
//! the coordinator would, and the selection of jobs (`--job`, `--stage`, manual jobs),
//! each job out of it with the reason.

use std::collections::BTreeMap;

use esteira_pipeline::{Diagnostic, DirSource, EventContext, Plan, PlannedJob, RefKind, When};

use super::snapshot::{GitState, WorkingTree};

/// The pipeline id jobs see: there is no coordinator to number pipelines.
pub const LOCAL_PIPELINE_ID: &str = "0";

/// The event of a pipeline for `git_ref` at the working tree's `HEAD`, with `given`
/// variables (`--var`) winning over the file's, as pipeline variables do.
pub fn event(
    tree: &WorkingTree,
    state: &GitState,
    git_ref: &str,
    given: &[(String, String)],
) -> EventContext {
    let mut variables: BTreeMap<String, String> = state.commit_variables.iter().cloned().collect();
    variables.extend(
        [
            ("CI_DEFAULT_BRANCH", state.default_branch.as_str()),
            ("ESTEIRA", "true"),
            ("CI_PIPELINE_ID", LOCAL_PIPELINE_ID),
            ("CI_PIPELINE_IID", LOCAL_PIPELINE_ID),
        ]
        .map(|(key, value)| (key.to_string(), value.to_string())),
    );
    EventContext {
        git_ref: RefKind::Branch(git_ref.to_string()),
        sha: state.head.clone().unwrap_or_else(|| "0".repeat(40)),
        source: esteira_pipeline::PipelineSource::Push,
        // Unknown, as for a push the coordinator cannot diff: `rules:changes` holds.
        changed_files: None,
        variables,
        overriding_variables: given.iter().cloned().collect(),
        project_path: tree.project_name(),
    }
}

/// The plan of `file` (a path in the working tree) for `event`, read from the working
/// tree as it is.
pub fn plan(tree: &WorkingTree, file: &str, event: &EventContext) -> Result<Plan, Vec<Diagnostic>> {
    esteira_pipeline::plan_pipeline(&DirSource::new(&tree.top), file, event)
}

/// What was asked to run: jobs by name and whole stages; nothing asked means every job
/// but the manual ones.
pub struct Request<'a> {
    pub jobs: &'a [String],
    pub stages: &'a [String],
}

/// Whether a planned job runs, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Runs,
    /// Runs because a job that runs needs it (the first such job).
    NeededBy(String),
    /// Does not run; the reason, for the plan and the summary.
    Out(String),
}

/// Each planned job with its [`Choice`], in plan order; an error naming what does not
/// exist when `--job` or `--stage` names something the plan lacks.
pub fn select(plan: &Plan, request: &Request<'_>) -> Result<Vec<Choice>, String> {
    for name in request.jobs {
        if !plan.jobs.iter().any(|job| job.name == *name) {
            return Err(unknown("job", name, plan.jobs.iter().map(|job| &job.name)));
        }
    }
    for stage in request.stages {
        if !plan.stages.contains(stage) {
            return Err(unknown("stage", stage, plan.stages.iter()));
        }
    }
    let everything = request.jobs.is_empty() && request.stages.is_empty();
    let mut choices: Vec<Choice> = plan
        .jobs
        .iter()
        .map(|job| {
            let named = request.jobs.contains(&job.name);
            if everything && job.when == When::Manual {
                Choice::Out(format!("manual: run it with --job '{}'", job.name))
            } else if everything || named || request.stages.contains(&job.stage) {
                Choice::Runs
            } else {
                Choice::Out("not selected by --job or --stage".to_string())
            }
        })
        .collect();
    // What the jobs asked for need runs too, however deep (a manual job included: it was
    // asked for through them). Without a request, a manual job runs only when named.
    let mut pending: Vec<usize> = (0..choices.len())
        .filter(|index| !everything && choices[*index] == Choice::Runs)
        .collect();
    while let Some(index) = pending.pop() {
        for needed in upstream_names(&plan.jobs[index]) {
            for (other, job) in plan.jobs.iter().enumerate() {
                if needs_match(&job.name, needed) && matches!(choices[other], Choice::Out(_)) {
                    choices[other] = Choice::NeededBy(plan.jobs[index].name.clone());
                    pending.push(other);
                }
            }
        }
    }
    Ok(choices)
}

/// The jobs a job names as upstream: its `needs`, else its `dependencies`.
pub fn upstream_names(job: &PlannedJob) -> Vec<&str> {
    match (&job.needs, &job.dependencies) {
        (Some(needs), _) => needs.iter().map(|need| need.job.as_str()).collect(),
        (None, Some(dependencies)) => dependencies.iter().map(String::as_str).collect(),
        (None, None) => Vec::new(),
    }
}

/// Whether the job `name` is what `needs`/`dependencies` entry `needed` means: the same
/// name, or one of the instances of a `parallel` job of that name (`test 1/3`,
/// `test: [a, b]`).
pub fn needs_match(name: &str, needed: &str) -> bool {
    let instance =
        |rest: &str| rest.starts_with(": [") || (rest.starts_with(' ') && rest.contains('/'));
    name == needed || name.strip_prefix(needed).is_some_and(instance)
}

fn unknown<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a String>) -> String {
    let known: Vec<&str> = known.map(String::as_str).collect();
    format!(
        "the plan has no {what} '{name}'; it has: {}",
        known.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use esteira_pipeline::Need;

    use super::*;

    fn plan() -> Plan {
        let job = |name: &str, stage: &str| PlannedJob {
            name: name.to_string(),
            stage: stage.to_string(),
            ..PlannedJob::default()
        };
        let mut release = job("release", "deploy");
        release.when = When::Manual;
        release.needs = Some(vec![Need {
            job: "compile".to_string(),
            artifacts: true,
            optional: false,
        }]);
        let mut compile = job("compile", "build");
        compile.dependencies = Some(vec!["lint".to_string()]);
        Plan {
            stages: vec!["test".into(), "build".into(), "deploy".into()],
            jobs: vec![
                job("lint 1/2", "test"),
                job("lint 2/2", "test"),
                compile,
                release,
            ],
            variables: Vec::new(),
        }
    }

    #[test]
    fn everything_but_manual_jobs_runs_without_a_request() {
        let request = Request {
            jobs: &[],
            stages: &[],
        };
        let choices = select(&plan(), &request).expect("selection");
        assert_eq!(choices[..3], [Choice::Runs, Choice::Runs, Choice::Runs]);
        assert_eq!(
            choices[3],
            Choice::Out("manual: run it with --job 'release'".to_string())
        );
    }

    #[test]
    fn a_named_job_brings_what_it_needs_however_deep() {
        let jobs = ["release".to_string()];
        let request = Request {
            jobs: &jobs,
            stages: &[],
        };
        let choices = select(&plan(), &request).expect("selection");
        assert_eq!(
            choices,
            [
                Choice::NeededBy("compile".to_string()),
                Choice::NeededBy("compile".to_string()),
                Choice::NeededBy("release".to_string()),
                Choice::Runs,
            ]
        );
        let unknown = ["nope".to_string()];
        let request = Request {
            jobs: &unknown,
            stages: &[],
        };
        assert!(
            select(&plan(), &request)
                .is_err_and(|error| error.contains("no job 'nope'; it has: lint 1/2"))
        );
    }

    #[test]
    fn needs_name_parallel_and_matrix_instances() {
        assert!(needs_match("lint", "lint"));
        assert!(needs_match("lint 2/3", "lint"));
        assert!(needs_match("test: [ruby, 3.2]", "test"));
        assert!(!needs_match("linter", "lint"));
        assert!(!needs_match("lint fast", "lint"));
    }
}
