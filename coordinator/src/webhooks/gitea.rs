//! Gitea's and Forgejo's deliveries: GitHub-shaped bodies under their own headers
//! (`X-Forgejo-Event` before `X-Gitea-Event` before `X-Gogs-Event`; the GitHub copies
//! they also send are not looked at). A tag arrives twice, as a `push` of `refs/tags/x`
//! and as a `create`; both are the same event, so they start one pipeline.

use axum::http::HeaderMap;
use serde_json::Value;

use super::event::{self, Parsed, PayloadError, required};
use super::github;

pub fn delivery_id(headers: &HeaderMap) -> Option<String> {
    ["x-forgejo-delivery", "x-gitea-delivery", "x-gogs-delivery"]
        .iter()
        .find_map(|name| super::header(headers, name))
        .map(str::to_string)
}

pub fn parse(headers: &HeaderMap, payload: &Value) -> Result<Parsed, PayloadError> {
    let kind = ["x-forgejo-event", "x-gitea-event", "x-gogs-event"]
        .iter()
        .find_map(|name| super::header(headers, name))
        .unwrap_or("unknown")
        .to_string();
    match kind.as_str() {
        "push" => github::push(&kind, payload),
        "pull_request" => github::pull_request(
            &kind,
            payload,
            &["opened", "reopened", "synchronize", "synchronized"],
        ),
        "create" => {
            let ref_type = required(payload, "/ref_type", &kind)?;
            let name = required(payload, "/ref", &kind)?;
            if ref_type != "tag" {
                return Ok(Parsed::ignored(
                    kind,
                    "branch creation: its push starts the pipeline",
                ));
            }
            let sha = required(payload, "/sha", &kind)?;
            Ok(event::push(
                &kind,
                &format!("refs/tags/{name}"),
                sha,
                None,
                None,
            ))
        }
        "delete" => Ok(Parsed::ignored(kind, "ref deleted")),
        other => Ok(Parsed::ignored(
            other,
            format!("event '{other}' starts no pipeline"),
        )),
    }
}
