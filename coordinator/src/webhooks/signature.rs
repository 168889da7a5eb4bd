//! Authenticity of a delivery, checked on the raw body bytes before anything reads them:
//! GitLab's `X-Gitlab-Token` (the secret itself, compared in constant time), GitHub's
//! `X-Hub-Signature-256: sha256=<hex>`, and the bare-hex HMAC-SHA256 of Gitea
//! (`X-Gitea-Signature`, `X-Gogs-Signature`) and Forgejo (`X-Forgejo-Signature`).
//! Gitea and Forgejo also send GitHub's header; theirs are looked at first.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::projects::Forge;
use crate::tokens;

/// Why a delivery is not authentic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the project has no webhook secret: set one with `esteira project edit NAME --webhook-secret S`"
    )]
    NoSecret,
    #[error("the delivery carries no {0} header")]
    Missing(&'static str),
    #[error("the {0} header does not match the webhook secret")]
    Mismatch(&'static str),
}

/// Checks `body` against `secret` the way `forge` signs.
pub fn verify(
    forge: Forge,
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&str>,
) -> Result<(), SignatureError> {
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::NoSecret)?;
    match forge {
        Forge::Gitlab => {
            let given = header(headers, "x-gitlab-token")
                .ok_or(SignatureError::Missing("X-Gitlab-Token"))?;
            if tokens::equal(given, secret) {
                Ok(())
            } else {
                Err(SignatureError::Mismatch("X-Gitlab-Token"))
            }
        }
        Forge::Github | Forge::Generic => {
            let name = "X-Hub-Signature-256";
            let given = header(headers, name).ok_or(SignatureError::Missing(name))?;
            let hex_digest = given
                .strip_prefix("sha256=")
                .ok_or(SignatureError::Mismatch(name))?;
            check_hmac(secret, body, hex_digest, name)
        }
        Forge::Gitea | Forge::Forgejo => {
            for name in [
                "X-Forgejo-Signature",
                "X-Gitea-Signature",
                "X-Gogs-Signature",
            ] {
                if let Some(given) = header(headers, name) {
                    return check_hmac(secret, body, given, name);
                }
            }
            if let Some(given) = header(headers, "x-hub-signature-256") {
                let name = "X-Hub-Signature-256";
                let hex_digest = given
                    .strip_prefix("sha256=")
                    .ok_or(SignatureError::Mismatch(name))?;
                return check_hmac(secret, body, hex_digest, name);
            }
            Err(SignatureError::Missing("X-Gitea-Signature"))
        }
    }
}

/// A header's value; an empty one counts as absent (Gitea sends empty signatures when
/// the hook has no secret).
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

fn check_hmac(
    secret: &str,
    body: &[u8],
    hex_digest: &str,
    name: &'static str,
) -> Result<(), SignatureError> {
    let given = hex::decode(hex_digest).map_err(|_| SignatureError::Mismatch(name))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| SignatureError::Mismatch(name))?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch(name))
}

/// The hex HMAC-SHA256 of `body` under `secret`, as Gitea sends it (and GitHub after
/// `sha256=`).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORPUS: &str = "../../shared/corpus/webhooks";

    fn corpus(name: &str) -> Option<Vec<u8>> {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::read(here.join("../tests/fixtures/webhooks").join(name))
            .or_else(|_| std::fs::read(here.join(CORPUS).join(name)))
            .ok()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    #[test]
    fn corpus_vectors_verify() {
        // The vectors HEADERS.md computed with Python's hmac over the stored files.
        let cases = [
            (
                "github-push-2.json",
                Forge::Github,
                "x-hub-signature-256",
                "sha256=b0873af901ba4174e4a60f4816e4e0de42fd0053de988b140f08dbbc233cdc70",
            ),
            (
                "gitea-push-1.json",
                Forge::Gitea,
                "x-gitea-signature",
                "cd0f87eef122d6e82f8372b957af2130fe0c693295db19149d74e4d38b3f8942",
            ),
            (
                "forgejo-push-1.json",
                Forge::Forgejo,
                "x-forgejo-signature",
                "2941fa4aab0feba778ca8f2d9f7f310f71ff44456b1f5665fc539636c291448d",
            ),
        ];
        for (file, forge, name, value) in cases {
            let Some(body) = corpus(file) else {
                eprintln!("{file} not found; skipped");
                continue;
            };
            let good = headers(&[(name, value)]);
            assert_eq!(
                verify(forge, &good, &body, Some("test-secret")),
                Ok(()),
                "{file}"
            );
            assert!(
                verify(forge, &good, &body, Some("other")).is_err(),
                "{file}"
            );
            let mut changed = body.clone();
            changed.push(b' ');
            assert!(verify(forge, &good, &changed, Some("test-secret")).is_err());
        }
    }

    #[test]
    fn gitea_headers_win_over_github_copies() {
        let body = b"{}";
        let good = sign("s", body);
        // A wrong GitHub copy is not looked at when the Gitea header is right...
        let both = headers(&[
            ("x-gitea-signature", &good),
            ("x-hub-signature-256", "sha256=00"),
        ]);
        assert_eq!(verify(Forge::Gitea, &both, body, Some("s")), Ok(()));
        // ...and a right copy does not save a wrong Gitea header.
        let wrong = headers(&[
            ("x-gitea-signature", "00"),
            ("x-hub-signature-256", &format!("sha256={good}")),
        ]);
        assert!(verify(Forge::Gitea, &wrong, body, Some("s")).is_err());
    }

    #[test]
    fn gitlab_token_and_missing_headers() {
        let token = headers(&[("x-gitlab-token", "s3cret")]);
        assert_eq!(verify(Forge::Gitlab, &token, b"", Some("s3cret")), Ok(()));
        assert!(verify(Forge::Gitlab, &token, b"", Some("s3cret!")).is_err());
        assert_eq!(
            verify(Forge::Gitlab, &HeaderMap::new(), b"", Some("s")),
            Err(SignatureError::Missing("X-Gitlab-Token"))
        );
        assert_eq!(
            verify(Forge::Github, &token, b"", None),
            Err(SignatureError::NoSecret)
        );
        let empty = headers(&[("x-gitea-signature", "")]);
        assert!(verify(Forge::Gitea, &empty, b"{}", Some("s")).is_err());
    }
}
