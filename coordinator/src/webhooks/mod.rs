//! Git events from forges: what a webhook delivery says, once it is found authentic.
//!
//! A delivery (received by [`crate::api`] at `/hooks/{gitlab|github|gitea|forgejo}/{project}`,
//! its body size limited to [`BODY_LIMIT`], its project found) is [`read`]: its
//! authenticity checked on the raw bytes ([`signature`]), its JSON read, and the forge's
//! parser ([`gitlab`], [`github`], [`gitea`] for Gitea and Forgejo) turning it into a
//! [`GitEvent`] or a reason to ignore it. Nothing here writes anything: what the event
//! starts is [`crate::deliveries`]'s, which polling ([`crate::poll`]) calls too.

pub mod event;
pub mod gitea;
pub mod github;
pub mod gitlab;
pub mod signature;

use axum::http::{HeaderMap, header};
use serde_json::Value;
use tracing::warn;

use crate::store::projects::{Forge, Project};

pub use event::{EventKind, GitEvent, Parsed, PayloadError};
pub use signature::SignatureError;

/// The largest body a delivery may have (GitHub caps its payloads at 25 MB; GitLab's
/// push payloads list at most 20 commits).
pub const BODY_LIMIT: usize = 5 * 1024 * 1024;

/// A header's trimmed value; empty counts as absent.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// Which forge sent the delivery, by its headers: Forgejo, then Gitea and Gogs (which
/// also send GitHub's headers), then GitLab, then GitHub.
pub fn detect(headers: &HeaderMap) -> Option<Forge> {
    if header(headers, "x-forgejo-event").is_some() {
        Some(Forge::Forgejo)
    } else if header(headers, "x-gitea-event").is_some()
        || header(headers, "x-gogs-event").is_some()
    {
        Some(Forge::Gitea)
    } else if header(headers, "x-gitlab-event").is_some() {
        Some(Forge::Gitlab)
    } else if header(headers, "x-github-event").is_some() {
        Some(Forge::Github)
    } else {
        None
    }
}

/// A delivery found authentic and read: which forge sent it, its id, what it says.
#[derive(Debug)]
pub struct Delivery {
    pub forge: Forge,
    pub id: Option<String>,
    pub parsed: Parsed,
}

/// Why a delivery is refused before anything is stored.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The body is not the JSON object a delivery is.
    #[error("{0}")]
    Body(String),
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

/// Reads a delivery for `project` sent to the webhook path of `path_forge`: which forge
/// speaks (the path names it; the headers may say it is a Gitea or Forgejo speaking
/// GitHub's dialect too), whether the body is authentic, and what it says.
pub fn read(
    path_forge: Forge,
    project: &Project,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Delivery, Refusal> {
    let forge = match (path_forge, detect(headers)) {
        (Forge::Gitlab, _) => Forge::Gitlab,
        (_, Some(Forge::Gitlab)) | (_, None) => path_forge,
        (_, Some(detected)) => detected,
    };
    let secret = project.webhook_secret.as_deref();
    if let Err(error) = signature::verify(forge, headers, body, secret) {
        warn!(project = %project.name, forge = forge.as_str(), %error, "webhook refused");
        return Err(error.into());
    }
    let payload = payload_json(headers, body).map_err(Refusal::Body)?;
    let parsed = match forge {
        Forge::Gitlab => gitlab::parse(headers, &payload),
        Forge::Gitea | Forge::Forgejo => gitea::parse(headers, &payload),
        Forge::Github | Forge::Generic => github::parse(headers, &payload),
    }?;
    let id = match forge {
        Forge::Gitlab => gitlab::delivery_id(headers),
        Forge::Gitea | Forge::Forgejo => gitea::delivery_id(headers),
        Forge::Github | Forge::Generic => github::delivery_id(headers),
    };
    Ok(Delivery { forge, id, parsed })
}

/// The JSON of a delivery: the body, or its `payload` form field (GitHub and Gitea can
/// send `application/x-www-form-urlencoded`).
fn payload_json(headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let json = if form {
        form_field(body, "payload").ok_or("the form has no 'payload' field")?
    } else {
        body.to_vec()
    };
    let value: Value =
        serde_json::from_slice(&json).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    if !value.is_object() {
        return Err("the body is not a JSON object".to_string());
    }
    Ok(value)
}

/// A field of an `application/x-www-form-urlencoded` body, decoded.
fn form_field(body: &[u8], name: &str) -> Option<Vec<u8>> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        (percent_decode(key) == name.as_bytes()).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut index = 0;
    while index < text.len() {
        match text[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < text.len() => {
                let hex = std::str::from_utf8(&text[index + 1..index + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    out
}

#[cfg(test)]
mod tests;
