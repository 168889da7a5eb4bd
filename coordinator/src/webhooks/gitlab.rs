//! GitLab's deliveries: routed on the body's `object_kind` (system hooks send
//! `System Hook` for every kind), de-duplicated on `Idempotency-Key` (the same on GitLab's
//! retries), else `X-Gitlab-Event-UUID`.

use axum::http::HeaderMap;
use serde_json::Value;

use super::event::{self, Fork, MergeRequestFacts, Parsed, PayloadError, required, text};

pub fn delivery_id(headers: &HeaderMap) -> Option<String> {
    super::header(headers, "idempotency-key")
        .or_else(|| super::header(headers, "x-gitlab-event-uuid"))
        .map(str::to_string)
}

pub fn parse(headers: &HeaderMap, payload: &Value) -> Result<Parsed, PayloadError> {
    let kind = text(payload, "/object_kind")
        .or_else(|| super::header(headers, "x-gitlab-event"))
        .unwrap_or("unknown")
        .to_string();
    match kind.as_str() {
        "push" | "tag_push" => {
            let git_ref = required(payload, "/ref", &kind)?;
            let after = required(payload, "/after", &kind)?;
            // checkout_sha is the commit a tag points at (after may be the tag object).
            let sha = text(payload, "/checkout_sha")
                .filter(|sha| !sha.is_empty())
                .unwrap_or(after);
            let sha = if event::is_zero(after) { after } else { sha };
            let shown = payload
                .get("commits")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let total = payload
                .get("total_commits_count")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let truncated = u64::try_from(shown).unwrap_or(0) < total;
            Ok(event::push(
                &kind,
                git_ref,
                sha,
                text(payload, "/before"),
                event::commit_files(payload, truncated),
            ))
        }
        "merge_request" => {
            let action = text(payload, "/object_attributes/action").unwrap_or("");
            if !matches!(action, "open" | "reopen" | "update") {
                return Ok(Parsed::ignored(
                    kind,
                    format!("merge request action '{action}' starts no pipeline"),
                ));
            }
            let iid = payload
                .pointer("/object_attributes/iid")
                .and_then(Value::as_u64)
                .ok_or(PayloadError {
                    event: kind.clone(),
                    field: "object_attributes/iid",
                })?;
            let labels = payload
                .get("labels")
                .and_then(Value::as_array)
                .map(|labels| {
                    labels
                        .iter()
                        .filter_map(|l| l.get("title").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Ok(event::merge_request(MergeRequestFacts {
                iid,
                id: payload
                    .pointer("/object_attributes/id")
                    .and_then(Value::as_u64),
                title: text(payload, "/object_attributes/title").unwrap_or(""),
                description: text(payload, "/object_attributes/description").unwrap_or(""),
                source_branch: required(payload, "/object_attributes/source_branch", &kind)?,
                source_sha: required(payload, "/object_attributes/last_commit/id", &kind)?,
                target_branch: required(payload, "/object_attributes/target_branch", &kind)?,
                target_sha: None,
                project_path: text(payload, "/project/path_with_namespace").unwrap_or(""),
                project_url: text(payload, "/project/web_url").unwrap_or(""),
                url: text(payload, "/object_attributes/url").unwrap_or(""),
                labels,
                author: text(payload, "/user/username").unwrap_or(""),
                fork: fork(payload, iid),
            }))
        }
        other => Ok(Parsed::ignored(
            other,
            format!("GitLab event '{other}' starts no pipeline"),
        )),
    }
}

/// The fork a merge request comes from, when its source project is not its target one.
fn fork(payload: &Value, iid: u64) -> Option<Fork<'_>> {
    let source = payload.pointer("/object_attributes/source_project_id");
    let target = payload.pointer("/object_attributes/target_project_id");
    (source.is_some() && target.is_some() && source != target).then(|| Fork {
        path: text(payload, "/object_attributes/source/path_with_namespace").unwrap_or(""),
        url: text(payload, "/object_attributes/source/web_url").unwrap_or(""),
        head_ref: format!("refs/merge-requests/{iid}/head"),
    })
}
