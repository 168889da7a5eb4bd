//! The local run: the chosen jobs in stage and `needs` order through the executor the
//! agents use, each job's log streamed as it comes, its artifacts handed to the jobs
//! after it as the coordinator hands them (`needs` with artifacts, else `dependencies`,
//! else every earlier stage), `when`, `allow_failure` and failures of the jobs before a
//! job deciding whether it runs.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use esteira_executor::{Executor, JobResult, JobRun, Outcome};
use esteira_pipeline::{AllowFailure, EventContext, Plan, PlannedJob, RefKind, When};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::output::Output;
use super::plan::{Choice, needs_match};
use super::snapshot::Snapshot;

/// How a job of the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Failed,
    /// Failed, and its `allow_failure` tolerates it.
    FailedAllowed,
    Canceled,
    /// Not run: what came before it did not let it (`after_failure` when a failure did).
    Skipped {
        after_failure: bool,
    },
    /// Not part of the run (manual, not selected).
    NotRun,
}

impl Status {
    /// Whether the jobs after this one see a failure before them.
    fn fails_downstream(self) -> bool {
        matches!(
            self,
            Status::Failed
                | Status::Canceled
                | Status::Skipped {
                    after_failure: true
                }
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failed => "failed",
            Status::FailedAllowed => "failed (allowed)",
            Status::Canceled => "canceled",
            Status::Skipped { .. } => "skipped",
            Status::NotRun => "not run",
        }
    }
}

/// One job's line of the summary.
#[derive(Debug, Clone)]
pub struct JobReport {
    pub name: String,
    pub stage: String,
    pub status: Status,
    pub duration: Option<Duration>,
    /// Why it failed or did not run.
    pub reason: Option<String>,
}

/// Whether the pipeline succeeded: no job failed without leave, none was canceled.
pub fn succeeded(reports: &[JobReport]) -> bool {
    !reports
        .iter()
        .any(|report| matches!(report.status, Status::Failed | Status::Canceled))
}

/// What every job of one run shares.
pub struct LocalRun<'a> {
    pub executor: Arc<Executor>,
    pub snapshot: &'a Snapshot,
    pub project: String,
    pub event: &'a EventContext,
    /// Runs at most this many jobs at once.
    pub parallel: usize,
    pub output: Arc<Output>,
    pub cancel: CancellationToken,
}

enum State {
    Waiting,
    Ready,
    Running,
    Ended {
        report: JobReport,
        artifacts: Option<PathBuf>,
    },
}

impl LocalRun<'_> {
    /// Runs the jobs `choices` keep; returns a report per planned job, in plan order.
    pub async fn run(&self, plan: &Plan, choices: &[Choice]) -> Vec<JobReport> {
        let mut states: Vec<State> = plan
            .jobs
            .iter()
            .zip(choices)
            .map(|(job, choice)| match choice {
                Choice::Out(reason) => State::Ended {
                    report: report(job, Status::NotRun, None, Some(reason.clone())),
                    artifacts: None,
                },
                Choice::Runs | Choice::NeededBy(_) => State::Waiting,
            })
            .collect();
        let upstream = upstream(plan);
        let mut ready = VecDeque::new();
        let mut running = JoinSet::new();
        let mut running_ids = HashMap::new();
        loop {
            for index in 0..states.len() {
                if !matches!(states[index], State::Waiting) {
                    continue;
                }
                match decide(
                    plan,
                    index,
                    &upstream[index],
                    &states,
                    self.cancel.is_cancelled(),
                ) {
                    Decision::Wait => {}
                    Decision::Start => {
                        states[index] = State::Ready;
                        ready.push_back(index);
                    }
                    Decision::Skip(status, reason) => {
                        states[index] = State::Ended {
                            report: report(&plan.jobs[index], status, None, Some(reason)),
                            artifacts: None,
                        };
                    }
                }
            }
            while running.len() < self.parallel.max(1)
                && let Some(index) = ready.pop_front()
            {
                let job = &plan.jobs[index];
                let artifacts_in = artifacts_for(plan, index, &states);
                let handle = running.spawn(self.start(job, index, artifacts_in));
                running_ids.insert(handle.id(), index);
                states[index] = State::Running;
            }
            let Some(joined) = running.join_next_with_id().await else {
                break;
            };
            let (index, ended) = match joined {
                Ok((id, ended)) => (running_ids[&id], ended),
                Err(error) => {
                    let failure = format!("the job's task failed: {error}");
                    (running_ids[&error.id()], Ended::failure(failure))
                }
            };
            let job = &plan.jobs[index];
            let status = status_of(job, &ended.outcome);
            let reason = ended.outcome.failure.map(|failure| failure.message);
            let report = report(job, status, Some(ended.duration), reason);
            self.output.job_ended(&report);
            states[index] = State::Ended {
                report,
                artifacts: ended.outcome.artifacts,
            };
        }
        states
            .into_iter()
            .zip(&plan.jobs)
            .map(|(state, job)| match state {
                State::Ended { report, .. } => report,
                // Only a cycle of `needs` leaves a job waiting.
                _ => report(
                    job,
                    Status::Skipped {
                        after_failure: false,
                    },
                    None,
                    Some("waits for a job that waits for it".to_string()),
                ),
            })
            .collect()
    }

    /// Runs one job through the executor, its log printed as it comes.
    fn start(
        &self,
        job: &PlannedJob,
        index: usize,
        artifacts_in: Vec<PathBuf>,
    ) -> impl Future<Output = Ended> + Send + 'static {
        let job_id = i64::try_from(index + 1).unwrap_or(i64::MAX);
        let run = JobRun {
            job_id,
            project: self.project.clone(),
            repo_url: format!("file://{}", self.snapshot.repository.display()),
            sha: self.snapshot.sha.clone(),
            git_ref: ref_name(self.event).to_string(),
            env: job_variables(self.event, job, job_id),
            spec: job.clone(),
            artifacts_in,
            ..JobRun::default()
        };
        let (executor, output, cancel) = (
            self.executor.clone(),
            self.output.clone(),
            self.cancel.clone(),
        );
        async move {
            output.job_started(&run.spec);
            let started = Instant::now();
            let (log, lines) = mpsc::channel(256);
            let name = run.spec.name.clone();
            let (outcome, ()) =
                tokio::join!(executor.run(run, log, cancel), output.stream(&name, lines));
            Ended {
                outcome,
                duration: started.elapsed(),
            }
        }
    }
}

/// What waiting job `index` does now that some of the jobs before it (`upstream`) may
/// have ended.
fn decide(
    plan: &Plan,
    index: usize,
    upstream: &[usize],
    states: &[State],
    canceled: bool,
) -> Decision {
    let job = &plan.jobs[index];
    let mut failed_before = false;
    for &before in upstream {
        let State::Ended { report, .. } = &states[before] else {
            return Decision::Wait;
        };
        let other = &plan.jobs[before];
        let manual = other.when == When::Manual && report.status == Status::NotRun;
        let did_not_run = matches!(report.status, Status::NotRun | Status::Skipped { .. });
        let needed = job.needs.as_ref().is_some_and(|needs| {
            needs
                .iter()
                .any(|need| !need.optional && needs_match(&other.name, &need.job))
        });
        // A job needed did not run, or a manual job not allowed to fail holds the stages
        // after it: GitLab's pipeline would wait for it.
        if manual && (needed || job.needs.is_none() && other.allow_failure == AllowFailure::No) {
            let reason = format!(
                "waits for manual job '{}': run it with --job '{}'",
                other.name, other.name
            );
            return Decision::Skip(Status::NotRun, reason);
        }
        if needed && did_not_run {
            let status = Status::Skipped {
                after_failure: report.status.fails_downstream(),
            };
            return Decision::Skip(status, format!("needs '{}', which did not run", other.name));
        }
        failed_before |= report.status.fails_downstream();
    }
    if canceled {
        let status = Status::Skipped {
            after_failure: true,
        };
        return Decision::Skip(status, "the run was canceled".to_string());
    }
    match (job.when, failed_before) {
        (When::Always, _) | (When::OnFailure, true) => Decision::Start,
        (When::OnSuccess | When::Manual | When::Delayed, false) => Decision::Start,
        (When::OnFailure, false) => Decision::Skip(
            Status::Skipped {
                after_failure: false,
            },
            "when: on_failure, and nothing failed before it".to_string(),
        ),
        _ => Decision::Skip(
            Status::Skipped {
                after_failure: true,
            },
            "a job before it failed".to_string(),
        ),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Wait,
    Start,
    Skip(Status, String),
}

/// A job's end as its task returns it.
struct Ended {
    outcome: Outcome,
    duration: Duration,
}

impl Ended {
    fn failure(message: String) -> Ended {
        Ended {
            outcome: Outcome {
                result: JobResult::Failed,
                exit_code: None,
                failure: Some(esteira_executor::Failure {
                    kind: esteira_executor::FailureKind::RunnerSystemFailure,
                    message,
                }),
                artifacts: None,
                details: serde_json::Value::Null,
            },
            duration: Duration::ZERO,
        }
    }
}

/// The branch or tag the run is for.
pub fn ref_name(event: &EventContext) -> &str {
    match &event.git_ref {
        RefKind::Branch(name) | RefKind::Tag(name) => name,
    }
}

fn report(
    job: &PlannedJob,
    status: Status,
    duration: Option<Duration>,
    reason: Option<String>,
) -> JobReport {
    JobReport {
        name: job.name.clone(),
        stage: job.stage.clone(),
        status,
        duration,
        reason,
    }
}

/// For each job, the jobs it waits for: those it `needs`, else those of earlier stages.
fn upstream(plan: &Plan) -> Vec<Vec<usize>> {
    let stage_of = |job: &PlannedJob| plan.stages.iter().position(|s| *s == job.stage);
    let waits_for = |job: &PlannedJob, other: &PlannedJob| match &job.needs {
        Some(needs) => needs.iter().any(|need| needs_match(&other.name, &need.job)),
        None => stage_of(other) < stage_of(job),
    };
    plan.jobs
        .iter()
        .map(|job| {
            let before = plan.jobs.iter().enumerate();
            before
                .filter(|(_, other)| waits_for(job, other))
                .map(|(index, _)| index)
                .collect()
        })
        .collect()
}

/// The status a job's outcome gives it, its `allow_failure` considered.
fn status_of(job: &PlannedJob, outcome: &Outcome) -> Status {
    match outcome.result {
        JobResult::Success => Status::Success,
        JobResult::Canceled => Status::Canceled,
        JobResult::Failed if failure_allowed(job, outcome.exit_code) => Status::FailedAllowed,
        JobResult::Failed => Status::Failed,
    }
}

fn failure_allowed(job: &PlannedJob, exit_code: Option<i64>) -> bool {
    match &job.allow_failure {
        AllowFailure::No => false,
        AllowFailure::Yes => true,
        AllowFailure::ExitCodes(codes) => {
            exit_code.is_some_and(|code| codes.iter().any(|&allowed| code == i64::from(allowed)))
        }
    }
}

/// The archives of the ended jobs whose artifacts job `index` gets.
fn artifacts_for(plan: &Plan, index: usize, states: &[State]) -> Vec<PathBuf> {
    let job = &plan.jobs[index];
    let stage = |job: &PlannedJob| plan.stages.iter().position(|s| *s == job.stage);
    let wanted = |other: &PlannedJob| match (&job.needs, &job.dependencies) {
        (Some(needs), _) => needs
            .iter()
            .any(|need| need.artifacts && needs_match(&other.name, &need.job)),
        (None, Some(dependencies)) => dependencies.iter().any(|d| needs_match(&other.name, d)),
        (None, None) => stage(other) < stage(job),
    };
    plan.jobs
        .iter()
        .zip(states)
        .filter_map(|(other, state)| match state {
            State::Ended {
                artifacts: Some(archive),
                ..
            } if wanted(other) => Some(archive.clone()),
            _ => None,
        })
        .collect()
}

/// The job's variables as the coordinator gives them, lowest precedence first:
/// predefined, the job's own (global ones included), the pipeline's (`--var`); each
/// value expanded against those before it.
fn job_variables(event: &EventContext, job: &PlannedJob, job_id: i64) -> Vec<(String, String)> {
    let predefined = esteira_pipeline::predefined_variables(event);
    let own = [
        ("CI_JOB_ID", job_id.to_string()),
        ("CI_JOB_NAME", job.name.clone()),
        ("CI_JOB_STAGE", job.stage.clone()),
    ]
    .map(|(key, value)| (key.to_string(), value));
    let raw = predefined
        .into_iter()
        .chain(own)
        .chain(
            job.variables
                .iter()
                .map(|v| (v.key.clone(), v.value.clone())),
        )
        .chain(event.overriding_variables.clone());
    raw.fold(Vec::new(), |mut done, (key, value)| {
        let value = esteira_executor::expand(&value, &done);
        done.retain(|(earlier, _)| *earlier != key);
        done.push((key, value));
        done
    })
}

#[cfg(test)]
mod tests {
    use esteira_pipeline::Need;

    use super::*;

    fn job(name: &str, stage: &str) -> PlannedJob {
        PlannedJob {
            name: name.to_string(),
            stage: stage.to_string(),
            ..PlannedJob::default()
        }
    }

    fn plan(jobs: Vec<PlannedJob>) -> Plan {
        Plan {
            stages: vec!["test".into(), "build".into(), "deploy".into()],
            jobs,
            variables: Vec::new(),
        }
    }

    fn ended(job: &PlannedJob, status: Status, archive: Option<&str>) -> State {
        State::Ended {
            report: report(job, status, None, None),
            artifacts: archive.map(PathBuf::from),
        }
    }

    fn need(job: &str, artifacts: bool) -> Need {
        Need {
            job: job.to_string(),
            artifacts,
            optional: false,
        }
    }

    #[test]
    fn when_and_allow_failure_decide_after_the_jobs_before() {
        let mut notify = job("notify", "build");
        notify.when = When::OnFailure;
        let mut always = job("always", "build");
        always.when = When::Always;
        let plan = plan(vec![
            job("unit", "test"),
            job("build", "build"),
            notify,
            always,
        ]);
        let failed = [
            ended(&plan.jobs[0], Status::Failed, None),
            State::Waiting,
            State::Waiting,
            State::Waiting,
        ];
        let skipped = Decision::Skip(
            Status::Skipped {
                after_failure: true,
            },
            "a job before it failed".to_string(),
        );
        assert_eq!(decide(&plan, 1, &[0], &failed, false), skipped);
        assert_eq!(decide(&plan, 2, &[0], &failed, false), Decision::Start);
        assert_eq!(decide(&plan, 3, &[0], &failed, false), Decision::Start);

        let allowed = [
            ended(&plan.jobs[0], Status::FailedAllowed, None),
            State::Waiting,
            State::Waiting,
            State::Waiting,
        ];
        assert_eq!(decide(&plan, 1, &[0], &allowed, false), Decision::Start);
        assert!(matches!(
            decide(&plan, 2, &[0], &allowed, false),
            Decision::Skip(
                Status::Skipped {
                    after_failure: false
                },
                _
            )
        ));
        let running = [
            State::Running,
            State::Waiting,
            State::Waiting,
            State::Waiting,
        ];
        assert_eq!(decide(&plan, 1, &[0], &running, false), Decision::Wait);
        assert!(matches!(
            decide(&plan, 1, &[0], &allowed, true),
            Decision::Skip(_, reason) if reason == "the run was canceled"
        ));
    }

    #[test]
    fn what_needs_a_manual_job_not_run_does_not_run() {
        let mut release = job("release", "build");
        release.when = When::Manual;
        let mut publish = job("publish", "deploy");
        publish.needs = Some(vec![need("release", true)]);
        let plan = plan(vec![release, publish, job("later", "deploy")]);
        let states = [
            ended(&plan.jobs[0], Status::NotRun, None),
            State::Waiting,
            State::Waiting,
        ];
        assert!(matches!(
            decide(&plan, 1, &[0], &states, false),
            Decision::Skip(Status::NotRun, reason) if reason.starts_with("waits for manual job 'release'")
        ));
        // A manual job that may not fail (`allow_failure: false`) holds the later stages.
        assert!(matches!(
            decide(&plan, 2, &[0], &states, false),
            Decision::Skip(Status::NotRun, _)
        ));
    }

    #[test]
    fn artifacts_come_from_needs_dependencies_or_earlier_stages() {
        let mut by_needs = job("by-needs", "deploy");
        by_needs.needs = Some(vec![need("compile", true), need("docs", false)]);
        let mut by_dependencies = job("by-dependencies", "deploy");
        by_dependencies.dependencies = Some(vec!["docs".to_string()]);
        let plan = plan(vec![
            job("compile", "build"),
            job("docs", "build"),
            by_needs,
            by_dependencies,
            job("by-stage", "deploy"),
        ]);
        let states = [
            ended(&plan.jobs[0], Status::Success, Some("compile.tar.gz")),
            ended(&plan.jobs[1], Status::Success, Some("docs.tar.gz")),
            State::Waiting,
            State::Waiting,
            State::Waiting,
        ];
        let archives = |index| artifacts_for(&plan, index, &states);
        assert_eq!(archives(2), [PathBuf::from("compile.tar.gz")]);
        assert_eq!(archives(3), [PathBuf::from("docs.tar.gz")]);
        assert_eq!(
            archives(4),
            [
                PathBuf::from("compile.tar.gz"),
                PathBuf::from("docs.tar.gz")
            ]
        );
    }

    #[test]
    fn job_variables_expand_in_precedence_order() {
        let mut unit = job("unit", "test");
        unit.variables = vec![esteira_pipeline::Variable {
            key: "IMAGE".to_string(),
            value: "app:$CI_COMMIT_SHORT_SHA-$SUFFIX".to_string(),
        }];
        let event = EventContext {
            git_ref: RefKind::Branch("main".to_string()),
            sha: "0123456789abcdef".to_string(),
            source: esteira_pipeline::PipelineSource::Push,
            changed_files: None,
            variables: Default::default(),
            overriding_variables: [("SUFFIX".to_string(), "given".to_string())].into(),
            project_path: "app".to_string(),
        };
        let vars = job_variables(&event, &unit, 7);
        let value = |key: &str| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        // SUFFIX comes after IMAGE: unknown when IMAGE is expanded, as on the coordinator.
        assert_eq!(value("IMAGE"), Some("app:01234567-"));
        assert_eq!(value("SUFFIX"), Some("given"));
        assert_eq!(value("CI_JOB_ID"), Some("7"));
    }
}
