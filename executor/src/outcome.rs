//! How a job ended: the result, the exit code, the reason of a failure and what it left.

use std::path::PathBuf;

/// The end of one job, as the agent reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: JobResult,
    /// The script's exit code, when the script ran to an exit.
    pub exit_code: Option<i64>,
    /// Why the job failed or was canceled; `None` on success.
    pub failure: Option<Failure>,
    /// The artifacts archive (tar.gz) collected per `spec.artifacts`; the caller uploads
    /// then deletes it.
    pub artifacts: Option<PathBuf>,
    /// What else the job produced: `image_digest`, `junit` counts, `cache` keys.
    pub details: serde_json::Value,
}

impl Outcome {
    pub(crate) fn success() -> Outcome {
        Outcome {
            result: JobResult::Success,
            exit_code: Some(0),
            failure: None,
            artifacts: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub(crate) fn failed(failure: Failure) -> Outcome {
        let result = if failure.kind == FailureKind::Canceled {
            JobResult::Canceled
        } else {
            JobResult::Failed
        };
        Outcome {
            result,
            exit_code: None,
            failure: Some(failure),
            artifacts: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// Adds one field to `details`.
    pub(crate) fn detail(&mut self, key: &str, value: serde_json::Value) {
        if let serde_json::Value::Object(map) = &mut self.details {
            map.insert(key.to_string(), value);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobResult {
    Success,
    Failed,
    Canceled,
}

/// Why a job did not succeed, in words a person understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// For example `image not found: foo:1` or `exit code 3`.
    pub message: String,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The script (or after the script, the build) exited non-zero.
    ScriptFailure,
    /// Something on the agent's side failed: Docker, git, the disk.
    RunnerSystemFailure,
    /// The job ran over its timeout.
    StuckOrTimeoutFailure,
    /// The job's or a service's image is neither local nor pullable.
    ImageNotFound,
    /// The kernel killed the job for going over its memory limit.
    OutOfMemory,
    /// The artifacts archive went over the size limit.
    ArtifactTooLarge,
    /// An artifacts archive of an earlier job could not be extracted.
    MissingDependency,
    /// The job asks for something this agent does not allow (the Docker socket).
    RunnerUnsupported,
    /// The job was canceled.
    Canceled,
}

impl FailureKind {
    /// GitLab's `retry:when` name where one exists, a name in the same style otherwise.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::ScriptFailure => "script_failure",
            FailureKind::RunnerSystemFailure => "runner_system_failure",
            FailureKind::StuckOrTimeoutFailure => "stuck_or_timeout_failure",
            FailureKind::ImageNotFound => "image_not_found",
            FailureKind::OutOfMemory => "out_of_memory",
            FailureKind::ArtifactTooLarge => "artifact_too_large",
            FailureKind::MissingDependency => "missing_dependency_failure",
            FailureKind::RunnerUnsupported => "runner_unsupported",
            FailureKind::Canceled => "canceled",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
