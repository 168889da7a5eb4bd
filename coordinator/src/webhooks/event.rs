//! A Git event as esteira understands it, whatever forge sent it, and the helpers the
//! forge parsers share.

use serde_json::Value;

/// What kind of change starts a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Push,
    TagPush,
    MergeRequest,
}

/// A change that starts a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitEvent {
    pub kind: EventKind,
    /// The branch or tag name: the source branch of a merge request, or for one from a
    /// fork, the target repository's ref of its head (`refs/pull/N/head`,
    /// `refs/merge-requests/N/head`), as no branch of the project holds that commit.
    pub git_ref: String,
    pub sha: String,
    /// The ref's previous commit (push), when the forge says.
    pub before: Option<String>,
    /// The merge request's number and target branch.
    pub merge_request: Option<(u64, String)>,
    /// Files the payload lists as changed (a fallback for the diff in the mirror).
    pub changed_files: Option<Vec<String>>,
    /// `CI_MERGE_REQUEST_*` and the like.
    pub variables: Vec<(String, String)>,
}

impl GitEvent {
    /// The same for every delivery of this event: two different deliveries of one push
    /// start one pipeline.
    pub fn key(&self) -> String {
        match (&self.kind, &self.merge_request) {
            (EventKind::MergeRequest, Some((iid, _))) => {
                format!("merge_request:{iid}:{}", self.sha)
            }
            (EventKind::TagPush, _) => format!("tag:{}:{}", self.git_ref, self.sha),
            _ => format!("push:{}:{}", self.git_ref, self.sha),
        }
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            EventKind::Push => "push",
            EventKind::TagPush => "tag_push",
            EventKind::MergeRequest => "merge_request",
        }
    }
}

/// What a delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Event(GitEvent),
    /// Understood and deliberately not acted on (a deletion, a closed merge request, an
    /// event kind esteira does not handle).
    Ignored {
        event: String,
        reason: String,
    },
}

impl Parsed {
    pub fn ignored(event: impl Into<String>, reason: impl Into<String>) -> Parsed {
        Parsed::Ignored {
            event: event.into(),
            reason: reason.into(),
        }
    }
}

/// A payload that is JSON but not the shape its event promises.
#[derive(Debug, thiserror::Error)]
#[error("the {event} payload has no usable '{field}'")]
pub struct PayloadError {
    pub event: String,
    pub field: &'static str,
}

pub fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

pub fn required<'a>(
    value: &'a Value,
    pointer: &'static str,
    event: &str,
) -> Result<&'a str, PayloadError> {
    text(value, pointer)
        .filter(|text| !text.is_empty())
        .ok_or_else(|| PayloadError {
            event: event.to_string(),
            field: pointer.trim_start_matches('/'),
        })
}

pub fn is_zero(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|byte| byte == b'0')
}

/// The `before` of a push, `None` when the ref was just created.
pub fn before(sha: Option<&str>) -> Option<String> {
    sha.filter(|sha| !is_zero(sha)).map(str::to_string)
}

/// The files the commits of a push touched (`added`, `modified`, `removed`), in order,
/// once each. `None` when the payload lists no commit or says it truncated the list.
pub fn commit_files(payload: &Value, truncated: bool) -> Option<Vec<String>> {
    let commits = payload.get("commits")?.as_array()?;
    if commits.is_empty() || truncated {
        return None;
    }
    let mut files: Vec<String> = Vec::new();
    for commit in commits {
        for list in ["added", "modified", "removed"] {
            for file in commit
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(file) = file.as_str()
                    && !files.iter().any(|known| known == file)
                {
                    files.push(file.to_string());
                }
            }
        }
    }
    Some(files)
}

/// A push to `refs/heads/x` or `refs/tags/y`: the event, or why it is ignored.
pub fn push(
    event: &str,
    git_ref: &str,
    after: &str,
    before_sha: Option<&str>,
    changed_files: Option<Vec<String>>,
) -> Parsed {
    let (kind, name) = if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        (EventKind::Push, branch)
    } else if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        (EventKind::TagPush, tag)
    } else {
        return Parsed::ignored(
            event,
            format!("ref '{git_ref}' is neither a branch nor a tag"),
        );
    };
    if is_zero(after) {
        let what = if kind == EventKind::Push {
            "branch"
        } else {
            "tag"
        };
        return Parsed::ignored(event, format!("{what} '{name}' was deleted"));
    }
    Parsed::Event(GitEvent {
        kind,
        git_ref: name.to_string(),
        sha: after.to_string(),
        before: before(before_sha),
        merge_request: None,
        changed_files,
        variables: Vec::new(),
    })
}

/// The variables GitLab defines for a merge request pipeline.
pub struct MergeRequestFacts<'a> {
    pub iid: u64,
    pub id: Option<u64>,
    pub title: &'a str,
    pub description: &'a str,
    pub source_branch: &'a str,
    pub source_sha: &'a str,
    pub target_branch: &'a str,
    pub target_sha: Option<&'a str>,
    pub project_path: &'a str,
    pub project_url: &'a str,
    pub url: &'a str,
    pub labels: Vec<String>,
    pub author: &'a str,
    /// Set when the merge request comes from a fork: the fork's path and URL, and the
    /// project's ref of the head commit.
    pub fork: Option<Fork<'a>>,
}

/// Where a merge request from a fork comes from.
pub struct Fork<'a> {
    pub path: &'a str,
    pub url: &'a str,
    pub head_ref: String,
}

/// Whether `git_ref` is a forge's ref of a merge request's head (`refs/pull/N/head` on
/// GitHub, Gitea and Forgejo, `refs/merge-requests/N/head` on GitLab).
pub fn is_merge_request_ref(git_ref: &str) -> bool {
    ["refs/pull/", "refs/merge-requests/"].iter().any(|prefix| {
        git_ref
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("/head"))
            .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
    })
}

pub fn merge_request(facts: MergeRequestFacts<'_>) -> Parsed {
    let mut variables = vec![
        ("CI_MERGE_REQUEST_IID", facts.iid.to_string()),
        (
            "CI_MERGE_REQUEST_ID",
            facts.id.unwrap_or(facts.iid).to_string(),
        ),
        ("CI_MERGE_REQUEST_TITLE", facts.title.to_string()),
        (
            "CI_MERGE_REQUEST_DESCRIPTION",
            facts.description.to_string(),
        ),
        (
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
            facts.source_branch.to_string(),
        ),
        (
            "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA",
            facts.source_sha.to_string(),
        ),
        (
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
            facts.target_branch.to_string(),
        ),
        (
            "CI_MERGE_REQUEST_PROJECT_PATH",
            facts.project_path.to_string(),
        ),
        (
            "CI_MERGE_REQUEST_PROJECT_URL",
            facts.project_url.to_string(),
        ),
        (
            "CI_MERGE_REQUEST_SOURCE_PROJECT_PATH",
            facts
                .fork
                .as_ref()
                .map_or(facts.project_path, |fork| fork.path)
                .to_string(),
        ),
        (
            "CI_MERGE_REQUEST_SOURCE_PROJECT_URL",
            facts
                .fork
                .as_ref()
                .map_or(facts.project_url, |fork| fork.url)
                .to_string(),
        ),
        (
            "CI_MERGE_REQUEST_REF_PATH",
            format!("refs/merge-requests/{}/head", facts.iid),
        ),
        ("CI_MERGE_REQUEST_EVENT_TYPE", "detached".to_string()),
        ("CI_MERGE_REQUEST_LABELS", facts.labels.join(",")),
        ("CI_MERGE_REQUEST_AUTHOR", facts.author.to_string()),
        ("CI_MERGE_REQUEST_URL", facts.url.to_string()),
        (
            "CI_OPEN_MERGE_REQUESTS",
            format!("{}!{}", facts.project_path, facts.iid),
        ),
    ];
    if let Some(sha) = facts.target_sha.filter(|sha| !sha.is_empty()) {
        variables.push(("CI_MERGE_REQUEST_TARGET_BRANCH_SHA", sha.to_string()));
        variables.push(("CI_MERGE_REQUEST_DIFF_BASE_SHA", sha.to_string()));
    }
    let git_ref = match facts.fork {
        Some(fork) => fork.head_ref,
        None => facts.source_branch.to_string(),
    };
    Parsed::Event(GitEvent {
        kind: EventKind::MergeRequest,
        git_ref,
        sha: facts.source_sha.to_string(),
        before: None,
        merge_request: Some((facts.iid, facts.target_branch.to_string())),
        changed_files: None,
        variables: variables
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    })
}
