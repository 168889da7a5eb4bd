//! The scheduler's pure rules: what a waiting job becomes, what a pipeline's status is,
//! whether a failure is retried, whose artifacts a job gets. No I/O, no lock: every input
//! is a value, so each rule has unit tests of its own.

use esteira_pipeline::{AllowFailure, PlannedJob, When};

use crate::model::{JobId, JobStatus, PipelineStatus};
use crate::store::jobs::{JobEnding, JobWithArtifacts};

/// Whether a protected-branch `pattern` (`*` a wildcard) covers `git_ref`.
pub fn ref_matches(pattern: &str, git_ref: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == git_ref,
        Some((prefix, suffix)) => {
            git_ref.len() >= prefix.len() + suffix.len()
                && git_ref.starts_with(prefix)
                && git_ref.ends_with(suffix)
        }
    }
}

/// Whether a finished job's failure is tolerated by its `allow_failure`.
pub fn failure_allowed(spec: &PlannedJob, exit_code: Option<i64>) -> bool {
    match &spec.allow_failure {
        AllowFailure::No => false,
        AllowFailure::Yes => true,
        AllowFailure::ExitCodes(codes) => {
            exit_code.is_some_and(|code| codes.iter().any(|allowed| i64::from(*allowed) == code))
        }
    }
}

/// A job that fails the pipeline's path: failed or lost without leave, or canceled.
pub fn blocks_success(spec: &PlannedJob, status: JobStatus, exit_code: Option<i64>) -> bool {
    status == JobStatus::Canceled || (status.is_failure() && !failure_allowed(spec, exit_code))
}

/// Whether the jobs after this one may go on: it finished, or it is a manual job that is
/// allowed to fail (GitLab's optional manual action).
pub fn lets_later_jobs_start(spec: &PlannedJob, status: JobStatus) -> bool {
    status.is_finished() || (status == JobStatus::Manual && spec.allow_failure != AllowFailure::No)
}

/// Whether a job `needs` names this one: a `parallel` job (`test 1/3`) and a
/// `parallel: matrix` one (`test: [a, b]`) are needed by their base name too.
pub fn is_needed_as(job_name: &str, need: &str) -> bool {
    job_name == need
        || job_name.strip_prefix(need).is_some_and(|rest| {
            (rest.starts_with(' ') && rest.contains('/'))
                || (rest.starts_with(": [") && rest.ends_with(']'))
        })
}

/// What a `created` job becomes once everything it waits for let it go on: `upstream_failed`
/// says whether one of them blocks the pipeline's success.
pub fn next_status(spec: &PlannedJob, upstream_failed: bool) -> JobStatus {
    match (spec.when, upstream_failed) {
        (When::Always, _) | (When::OnFailure, true) => JobStatus::Pending,
        (When::OnSuccess | When::Delayed, false) => JobStatus::Pending,
        (When::Manual, false) => JobStatus::Manual,
        _ => JobStatus::Skipped,
    }
}

/// Counts over a pipeline's latest job attempts: all its status depends on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    by_status: [usize; 9],
    /// Manual jobs that are not allowed to fail: the pipeline waits for them.
    blocking_manual: usize,
    /// Failed or lost jobs whose failure is not allowed.
    failures: usize,
}

impl Tally {
    fn slot(status: JobStatus) -> usize {
        status as usize
    }

    fn count(&self, status: JobStatus) -> usize {
        self.by_status[Self::slot(status)]
    }

    /// Counts a job in (`sign` 1) or out (`sign` -1).
    fn change(&mut self, spec: &PlannedJob, status: JobStatus, exit_code: Option<i64>, add: bool) {
        let step = |count: &mut usize| {
            *count = if add {
                *count + 1
            } else {
                count.saturating_sub(1)
            }
        };
        step(&mut self.by_status[Self::slot(status)]);
        if status == JobStatus::Manual && spec.allow_failure == AllowFailure::No {
            step(&mut self.blocking_manual);
        }
        if status.is_failure() && !failure_allowed(spec, exit_code) {
            step(&mut self.failures);
        }
    }

    pub fn add(&mut self, spec: &PlannedJob, status: JobStatus, exit_code: Option<i64>) {
        self.change(spec, status, exit_code, true);
    }

    pub fn remove(&mut self, spec: &PlannedJob, status: JobStatus, exit_code: Option<i64>) {
        self.change(spec, status, exit_code, false);
    }

    /// The pipeline's status as its latest job attempts make it.
    pub fn pipeline_status(&self) -> PipelineStatus {
        use JobStatus::*;
        let total: usize = self.by_status.iter().sum();
        if self.count(Running) > 0 {
            return PipelineStatus::Running;
        }
        if self.count(Pending) + self.count(Created) > 0 {
            let finished = [Success, Failed, Canceled, Skipped, Lost]
                .iter()
                .map(|status| self.count(*status))
                .sum::<usize>();
            return if finished > 0 {
                PipelineStatus::Running
            } else {
                PipelineStatus::Pending
            };
        }
        if self.blocking_manual > 0 {
            PipelineStatus::Manual
        } else if self.failures > 0 {
            PipelineStatus::Failed
        } else if self.count(Canceled) > 0 {
            PipelineStatus::Canceled
        } else if self.count(Skipped) == total {
            PipelineStatus::Skipped
        } else {
            PipelineStatus::Success
        }
    }
}

/// Whether `retry:` asks for another attempt after this failure of attempt `attempt`.
pub fn retries(spec: &PlannedJob, attempt: i64, ending: &JobEnding) -> bool {
    let retry = &spec.retry;
    if i64::from(retry.max) < attempt {
        return false;
    }
    let kind = ending.failure_kind.as_deref().unwrap_or("unknown_failure");
    let when_matches = retry.when.is_empty()
        || retry
            .when
            .iter()
            .any(|when| when == "always" || when == kind);
    let code_matches = retry.exit_codes.is_empty()
        || ending
            .exit_code
            .is_some_and(|code| retry.exit_codes.iter().any(|c| i64::from(*c) == code));
    when_matches && code_matches
}

/// The earlier jobs whose artifacts a job gets, among those that kept some: those it
/// `needs` with artifacts, else its `dependencies`, else every job of the earlier stages
/// (GitLab's default).
pub fn artifact_sources(
    spec: &PlannedJob,
    job: JobId,
    stage_index: i64,
    kept: &[JobWithArtifacts],
) -> Vec<i64> {
    let wanted = |other: &JobWithArtifacts| match (&spec.needs, &spec.dependencies) {
        (Some(needs), _) => needs
            .iter()
            .any(|need| need.artifacts && is_needed_as(&other.name, &need.job)),
        (None, Some(dependencies)) => dependencies
            .iter()
            .any(|name| is_needed_as(&other.name, name)),
        (None, None) => other.stage_index < stage_index,
    };
    kept.iter()
        .filter(|other| other.id != job && wanted(other))
        .map(|other| other.id.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use esteira_pipeline::{Need, Retry};

    use super::*;

    fn spec() -> PlannedJob {
        PlannedJob::default()
    }

    #[test]
    fn protected_patterns_cover_branches() {
        assert!(ref_matches("master", "master"));
        assert!(ref_matches("release/*", "release/1.2"));
        assert!(ref_matches("*", "devel"));
        assert!(!ref_matches("release/*", "releases"));
        assert!(!ref_matches("master", "master2"));
    }

    #[test]
    fn parallel_and_matrix_jobs_are_needed_by_their_base_name() {
        assert!(is_needed_as("test", "test"));
        assert!(is_needed_as("test 1/3", "test"));
        assert!(is_needed_as("test: [linux, amd64]", "test"));
        assert!(is_needed_as("test: [linux, amd64]", "test: [linux, amd64]"));
        assert!(!is_needed_as(
            "test: [linux, amd64]",
            "test: [linux, arm64]"
        ));
        assert!(!is_needed_as("tests", "test"));
        assert!(!is_needed_as("test extra", "test"));
    }

    #[test]
    fn when_and_upstream_failure_decide_the_next_status() {
        let mut job = spec();
        assert_eq!(next_status(&job, false), JobStatus::Pending);
        assert_eq!(next_status(&job, true), JobStatus::Skipped);
        job.when = When::OnFailure;
        assert_eq!(next_status(&job, false), JobStatus::Skipped);
        assert_eq!(next_status(&job, true), JobStatus::Pending);
        job.when = When::Always;
        assert_eq!(next_status(&job, true), JobStatus::Pending);
        job.when = When::Manual;
        assert_eq!(next_status(&job, false), JobStatus::Manual);
        assert_eq!(next_status(&job, true), JobStatus::Skipped);
    }

    #[test]
    fn allowed_failures_and_optional_manual_jobs_do_not_block() {
        let mut job = spec();
        assert!(blocks_success(&job, JobStatus::Failed, Some(1)));
        assert!(blocks_success(&job, JobStatus::Canceled, None));
        job.allow_failure = AllowFailure::ExitCodes(vec![3]);
        assert!(!blocks_success(&job, JobStatus::Failed, Some(3)));
        assert!(blocks_success(&job, JobStatus::Failed, Some(4)));
        assert!(!lets_later_jobs_start(&spec(), JobStatus::Manual));
        job.allow_failure = AllowFailure::Yes;
        assert!(lets_later_jobs_start(&job, JobStatus::Manual));
        assert!(!lets_later_jobs_start(&job, JobStatus::Pending));
    }

    fn tally(jobs: &[(JobStatus, AllowFailure)]) -> PipelineStatus {
        let mut tally = Tally::default();
        for (status, allow) in jobs {
            let job = PlannedJob {
                allow_failure: allow.clone(),
                ..spec()
            };
            tally.add(&job, *status, Some(1));
        }
        tally.pipeline_status()
    }

    #[test]
    fn the_pipeline_status_follows_its_jobs() {
        use JobStatus::*;
        let no = AllowFailure::No;
        assert_eq!(tally(&[(Created, no.clone())]), PipelineStatus::Pending);
        assert_eq!(
            tally(&[(Success, no.clone()), (Pending, no.clone())]),
            PipelineStatus::Running
        );
        assert_eq!(
            tally(&[(Success, no.clone()), (Manual, no.clone())]),
            PipelineStatus::Manual
        );
        assert_eq!(
            tally(&[(Success, no.clone()), (Manual, AllowFailure::Yes)]),
            PipelineStatus::Success
        );
        assert_eq!(
            tally(&[(Failed, AllowFailure::Yes), (Success, no.clone())]),
            PipelineStatus::Success
        );
        assert_eq!(
            tally(&[(Lost, no.clone()), (Canceled, no.clone())]),
            PipelineStatus::Failed
        );
        assert_eq!(
            tally(&[(Canceled, no.clone()), (Success, no.clone())]),
            PipelineStatus::Canceled
        );
        assert_eq!(tally(&[(Skipped, no.clone())]), PipelineStatus::Skipped);
        assert_eq!(tally(&[]), PipelineStatus::Skipped);
    }

    #[test]
    fn counting_a_job_out_undoes_counting_it_in() {
        let job = spec();
        let mut tally = Tally::default();
        tally.add(&job, JobStatus::Failed, Some(1));
        tally.remove(&job, JobStatus::Failed, Some(1));
        assert_eq!(tally, Tally::default());
    }

    #[test]
    fn retry_follows_max_when_and_exit_codes() {
        let failed = |kind: &str, code: i64| JobEnding {
            status: JobStatus::Failed,
            exit_code: Some(code),
            failure_kind: Some(kind.to_string()),
            failure_message: None,
            details_json: None,
        };
        let mut job = spec();
        job.retry = Retry {
            max: 2,
            when: vec!["script_failure".to_string()],
            exit_codes: vec![],
        };
        assert!(retries(&job, 1, &failed("script_failure", 1)));
        assert!(retries(&job, 2, &failed("script_failure", 1)));
        assert!(!retries(&job, 3, &failed("script_failure", 1)));
        assert!(!retries(&job, 1, &failed("runner_system_failure", 1)));
        job.retry.when.clear();
        job.retry.exit_codes = vec![137];
        assert!(retries(&job, 1, &failed("script_failure", 137)));
        assert!(!retries(&job, 1, &failed("script_failure", 1)));
    }

    #[test]
    fn artifacts_come_from_needs_dependencies_or_earlier_stages() {
        let kept = |id: i64, name: &str, stage_index: i64| JobWithArtifacts {
            id: JobId(id),
            name: name.to_string(),
            stage_index,
        };
        let kept = [kept(1, "build", 0), kept(2, "lint", 0), kept(3, "test", 1)];
        let job = spec();
        assert_eq!(artifact_sources(&job, JobId(9), 1, &kept), vec![1, 2]);
        let with_dependencies = PlannedJob {
            dependencies: Some(vec!["lint".to_string()]),
            ..spec()
        };
        assert_eq!(
            artifact_sources(&with_dependencies, JobId(9), 2, &kept),
            vec![2]
        );
        let with_needs = PlannedJob {
            needs: Some(vec![
                Need {
                    job: "build".to_string(),
                    artifacts: false,
                    optional: false,
                },
                Need {
                    job: "test".to_string(),
                    artifacts: true,
                    optional: false,
                },
            ]),
            ..spec()
        };
        assert_eq!(artifact_sources(&with_needs, JobId(9), 2, &kept), vec![3]);
    }
}
