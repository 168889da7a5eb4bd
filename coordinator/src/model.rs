//! The coordinator's domain types: identifiers and the statuses of jobs and pipelines.
//!
//! # The job state machine
//!
//! ```text
//!  created ──► pending ──► running ──► success | failed | canceled
//!     │         ▲ │ │  ▲      │ └────► lost      (lease expired, agent gone or removed)
//!     │         │ │ │  └──────┘ requeue: leased but never started (session gone,
//!     │         │ │ │                    agent came back without it)
//!     │         │ │ └────────────────► skipped   (outdated deploy, when it would be leased)
//!     │         │ └──────────────────► canceled
//!     ├──► manual ──(play)──┘ ; manual ──► canceled
//!     ├──► skipped   (an earlier stage or a need failed; or `when` excludes it)
//!     └──► canceled
//! ```
//!
//! - `created`: planned, waiting for its stage (or its `needs`) to be reached.
//! - `pending`: runnable, queued until an idle agent with the job's tags takes it (or,
//!   with a `resource_group`, until its group's turn).
//! - `running`: leased to an agent under an epoch; heartbeats renew the lease. A cancel
//!   of a running job goes through its agent, which ends it `canceled`.
//! - `lost`: the lease expired. Like `failed`, it fails the pipeline unless retried.
//! - A retry (by `retry:` or by hand) inserts a new attempt of the job and marks the old one
//!   `retried`; a pipeline's status only looks at the latest attempts.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($name:ident) => {
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            Serialize,
            Deserialize,
            sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(ProjectId);
id_type!(PipelineId);
id_type!(JobId);
id_type!(AgentId);

macro_rules! status_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
        #[serde(rename_all = "snake_case")]
        #[sqlx(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum!(JobStatus {
    Created => "created",
    Pending => "pending",
    Running => "running",
    Manual => "manual",
    Success => "success",
    Failed => "failed",
    Canceled => "canceled",
    Skipped => "skipped",
    Lost => "lost",
});

impl JobStatus {
    /// The job will not change any more (short of a retry).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failed | Self::Canceled | Self::Skipped | Self::Lost
        )
    }

    /// Counted as a failure of the job (allow_failure decides what it does to the pipeline).
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::Lost)
    }
}

status_enum!(PipelineStatus {
    Created => "created",
    Pending => "pending",
    Running => "running",
    Manual => "manual",
    Success => "success",
    Failed => "failed",
    Canceled => "canceled",
    Skipped => "skipped",
});

impl PipelineStatus {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failed | Self::Canceled | Self::Skipped
        )
    }
}

status_enum!(ProcessMode {
    Unordered => "unordered",
    OldestFirst => "oldest_first",
    NewestFirst => "newest_first",
});

impl std::str::FromStr for ProcessMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [Self::Unordered, Self::OldestFirst, Self::NewestFirst]
            .into_iter()
            .find(|mode| mode.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown process mode {text:?}: use unordered, oldest_first or newest_first"
                )
            })
    }
}

/// Milliseconds since the Unix epoch, the unit of every time the store keeps.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
