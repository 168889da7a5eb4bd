//! The pipeline plan: what the coordinator stores and the agent executes.
//!
//! A plan is the result of evaluating a pipeline file against one event. It is
//! deterministic and serialisable: the coordinator keeps each [`PlannedJob`] as JSON
//! in its database and sends it to the agent that runs the job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The jobs that run for one event, grouped into ordered stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Stage names in execution order, only those that hold at least one job.
    pub stages: Vec<String>,
    /// Jobs in file order within their stage, stages in `stages` order.
    pub jobs: Vec<PlannedJob>,
    /// Variables set by `workflow:rules` or the global `variables:` (already in each job).
    pub variables: Vec<Variable>,
}

/// A variable as the job sees it, in the order GitLab defines them (later wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub key: String,
    pub value: String,
}

/// One job of the plan, with every keyword resolved (`extends`, `default`, anchors).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PlannedJob {
    pub name: String,
    pub stage: String,
    pub image: Option<Image>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub before_script: Vec<String>,
    #[serde(default)]
    pub script: Vec<String>,
    #[serde(default)]
    pub after_script: Vec<String>,
    /// Global then job variables, not yet expanded against the predefined ones.
    #[serde(default)]
    pub variables: Vec<Variable>,
    /// Labels an agent must all carry to take this job.
    #[serde(default)]
    pub tags: Vec<String>,
    pub when: When,
    /// Seconds to wait when `when: delayed`.
    pub start_in_secs: Option<u64>,
    pub allow_failure: AllowFailure,
    /// `None`: stage ordering. `Some(vec![])`: `needs: []`, starts at once.
    pub needs: Option<Vec<Need>>,
    /// `None`: artifacts of every job of earlier stages.
    pub dependencies: Option<Vec<String>>,
    pub retry: Retry,
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub interruptible: bool,
    pub resource_group: Option<String>,
    pub environment: Option<Environment>,
    /// The `coverage` regex, without its slashes.
    pub coverage: Option<String>,
    pub artifacts: Option<Artifacts>,
    #[serde(default)]
    pub cache: Vec<Cache>,
    /// esteira extension: build (and push) an image through the agent's engine.
    pub build: Option<Build>,
    /// esteira extension: roll a service on the agent's engine.
    pub deploy: Option<Deploy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub name: String,
    pub entrypoint: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    /// Explicit `alias` values; GitLab's default aliases are derived by the executor.
    #[serde(default)]
    pub aliases: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub variables: Vec<Variable>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    #[default]
    OnSuccess,
    OnFailure,
    Always,
    Manual,
    Delayed,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowFailure {
    #[default]
    No,
    Yes,
    /// Failure is allowed only for these exit codes.
    ExitCodes(Vec<i32>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    pub job: String,
    pub artifacts: bool,
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Retry {
    /// 0, 1 or 2 as in GitLab.
    pub max: u32,
    /// Failure kinds that are retried (`always` when empty and max > 0).
    #[serde(default)]
    pub when: Vec<String>,
    #[serde(default)]
    pub exit_codes: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub name: String,
    pub url: Option<String>,
    /// start, prepare, stop, verify, access.
    pub action: String,
    /// production, staging, testing, development, other.
    pub deployment_tier: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Artifacts {
    pub name: Option<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub untracked: bool,
    /// on_success, on_failure, always.
    pub when: String,
    pub expire_in_secs: Option<u64>,
    #[serde(default)]
    pub junit: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cache {
    /// The key after expansion of `files:` is left to the executor; this is the literal key.
    pub key: String,
    #[serde(default)]
    pub key_files: Vec<String>,
    pub key_prefix: Option<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    /// pull, push, pull-push.
    pub policy: String,
    /// on_success, on_failure, always.
    pub when: String,
    #[serde(default)]
    pub fallback_keys: Vec<String>,
    #[serde(default)]
    pub untracked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Build {
    pub context: String,
    pub dockerfile: String,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub push: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Deploy {
    pub image: String,
    pub service: String,
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub restart: Option<String>,
    pub health: Option<HealthCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HealthCheck {
    pub http: Option<String>,
    pub command: Option<Vec<String>>,
    pub timeout_secs: u64,
    pub retries: u32,
}
