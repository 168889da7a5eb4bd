//! GitHub's deliveries: `X-GitHub-Event` (`push`, `pull_request`, `ping`...), the body's
//! `action`, de-duplicated on `X-GitHub-Delivery` (kept by a manual redelivery).

use axum::http::HeaderMap;
use serde_json::Value;

use super::event::{self, Fork, MergeRequestFacts, Parsed, PayloadError, required, text};

pub fn delivery_id(headers: &HeaderMap) -> Option<String> {
    super::header(headers, "x-github-delivery").map(str::to_string)
}

pub fn parse(headers: &HeaderMap, payload: &Value) -> Result<Parsed, PayloadError> {
    let kind = super::header(headers, "x-github-event")
        .unwrap_or("unknown")
        .to_string();
    match kind.as_str() {
        "push" => push(&kind, payload),
        "pull_request" => pull_request(&kind, payload, &["opened", "synchronize", "reopened"]),
        "ping" => Ok(Parsed::ignored(kind, "ping: the hook works")),
        other => Ok(Parsed::ignored(
            other,
            format!("event '{other}' starts no pipeline"),
        )),
    }
}

/// A push as GitHub, Gitea and Forgejo describe it.
pub fn push(kind: &str, payload: &Value) -> Result<Parsed, PayloadError> {
    let git_ref = required(payload, "/ref", kind)?;
    let after = required(payload, "/after", kind)?;
    if payload.get("deleted").and_then(Value::as_bool) == Some(true) {
        return Ok(event::push(kind, git_ref, "0", None, None));
    }
    Ok(event::push(
        kind,
        git_ref,
        after,
        text(payload, "/before"),
        event::commit_files(payload, false),
    ))
}

/// A pull request as GitHub, Gitea and Forgejo describe it; `actions` start a pipeline.
pub fn pull_request(kind: &str, payload: &Value, actions: &[&str]) -> Result<Parsed, PayloadError> {
    let action = text(payload, "/action").unwrap_or("");
    if !actions.contains(&action) {
        return Ok(Parsed::ignored(
            kind,
            format!("pull request action '{action}' starts no pipeline"),
        ));
    }
    let iid = payload
        .get("number")
        .or_else(|| payload.pointer("/pull_request/number"))
        .and_then(Value::as_u64)
        .ok_or(PayloadError {
            event: kind.to_string(),
            field: "number",
        })?;
    let labels = payload
        .pointer("/pull_request/labels")
        .and_then(Value::as_array)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|l| l.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(event::merge_request(MergeRequestFacts {
        iid,
        id: payload.pointer("/pull_request/id").and_then(Value::as_u64),
        title: text(payload, "/pull_request/title").unwrap_or(""),
        description: text(payload, "/pull_request/body").unwrap_or(""),
        source_branch: required(payload, "/pull_request/head/ref", kind)?,
        source_sha: required(payload, "/pull_request/head/sha", kind)?,
        target_branch: required(payload, "/pull_request/base/ref", kind)?,
        target_sha: text(payload, "/pull_request/base/sha"),
        project_path: text(payload, "/repository/full_name").unwrap_or(""),
        project_url: text(payload, "/repository/html_url").unwrap_or(""),
        url: text(payload, "/pull_request/html_url").unwrap_or(""),
        labels,
        author: text(payload, "/pull_request/user/login").unwrap_or(""),
        fork: fork(payload, iid),
    }))
}

/// The fork a pull request comes from: its head repository is not its base one, or is
/// gone (a deleted fork leaves `head.repo` null). A payload that names no head
/// repository is taken as a pull request within the project.
fn fork(payload: &Value, number: u64) -> Option<Fork<'_>> {
    let head = payload.pointer("/pull_request/head/repo")?;
    let base = payload.pointer("/pull_request/base/repo");
    let differs = |key: &str| {
        let head = head.get(key).filter(|v| !v.is_null());
        let base = base.and_then(|repo| repo.get(key)).filter(|v| !v.is_null());
        head.zip(base).map(|(head, base)| head != base)
    };
    let is_fork = head.is_null() || differs("id").or_else(|| differs("full_name")) == Some(true);
    is_fork.then(|| Fork {
        path: text(payload, "/pull_request/head/repo/full_name").unwrap_or(""),
        url: text(payload, "/pull_request/head/repo/html_url").unwrap_or(""),
        head_ref: format!("refs/pull/{number}/head"),
    })
}
