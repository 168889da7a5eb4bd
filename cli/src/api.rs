//! The coordinator's REST API as the CLI calls it. A refused answer becomes an error
//! carrying the server's own message; a refused token is an [`AuthError`], which tells a
//! missing token from a wrong one.

use std::path::Path;

use anyhow::Context;
use futures::StreamExt;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

/// The coordinator refused the request's token, or the request had none.
#[derive(Debug)]
pub struct AuthError {
    /// Whether the request carried a token.
    pub had_token: bool,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.had_token {
            f.write_str(
                "the coordinator refused the token given by --token or ESTEIRA_TOKEN: it is neither its admin token nor one of its API tokens",
            )
        } else {
            f.write_str(
                "this needs a token: pass --token or set ESTEIRA_TOKEN (the admin token is the file admin-token in the coordinator's data dir)",
            )
        }
    }
}

impl std::error::Error for AuthError {}

pub struct Api {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl Api {
    /// A client of `server`, trusting `ca_cert` (PEM) besides the system's roots.
    pub fn new(server: &str, token: Option<String>, ca_cert: Option<&Path>) -> anyhow::Result<Api> {
        let mut http = reqwest::Client::builder();
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        Ok(Api {
            http: http.build()?,
            server: server.trim_end_matches('/').to_string(),
            token,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.server));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the coordinator at {}", self.server))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(AuthError {
                had_token: self.token.is_some(),
            }
            .into());
        }
        let message = error_message(&response.text().await.unwrap_or_default(), status);
        anyhow::bail!("{message} (HTTP {})", status.as_u16())
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .send(self.request(Method::GET, path))
            .await?
            .json()
            .await?)
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send_json(Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send_json(Method::PUT, path, body).await
    }

    async fn send_json(&self, method: Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        Ok(self
            .send(self.request(method, path).json(body))
            .await?
            .json()
            .await?)
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .send(self.request(Method::DELETE, path))
            .await?
            .json()
            .await?)
    }

    /// Copies a raw response body to `out` as it arrives.
    pub async fn stream_to(
        &self,
        path: &str,
        out: &mut (impl std::io::Write + ?Sized),
    ) -> anyhow::Result<()> {
        let mut body = self
            .send(self.request(Method::GET, path))
            .await?
            .bytes_stream();
        while let Some(piece) = body.next().await {
            out.write_all(&piece?)?;
            out.flush()?;
        }
        Ok(())
    }

    /// Follows a server-sent event stream, giving each event's data to `on_data` until it
    /// answers false or the stream ends.
    pub async fn follow_events(
        &self,
        path: &str,
        mut on_data: impl FnMut(&str) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let mut body = self
            .send(self.request(Method::GET, path))
            .await?
            .bytes_stream();
        let mut pending: Vec<u8> = Vec::new();
        let mut data = String::new();
        while let Some(piece) = body.next().await {
            pending.extend_from_slice(&piece?);
            while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\n', '\r']);
                if line.is_empty() {
                    if !data.is_empty() && !on_data(&data)? {
                        return Ok(());
                    }
                    data.clear();
                } else if let Some(value) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value.strip_prefix(' ').unwrap_or(value));
                }
            }
        }
        Ok(())
    }
}

/// What a refused answer says: the `error` of a JSON body, else the body's text (a
/// framework's rejection, a proxy's page), else the status's reason.
fn error_message(body: &str, status: reqwest::StatusCode) -> String {
    let json = serde_json::from_str::<Value>(body).ok();
    let from_json = json.as_ref().and_then(|value| value["error"].as_str());
    let text = body.trim();
    match from_json {
        Some(message) => message.to_string(),
        None if !text.is_empty() && text.len() <= 2000 => text.to_string(),
        None => status
            .canonical_reason()
            .unwrap_or("no details")
            .to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn the_server_message_is_kept() {
        let json = r#"{"error": "project 'x' does not exist"}"#;
        assert_eq!(
            error_message(json, StatusCode::NOT_FOUND),
            "project 'x' does not exist"
        );
        let plain = "Failed to deserialize query string: unknown variant `bogus`\n";
        assert_eq!(
            error_message(plain, StatusCode::BAD_REQUEST),
            "Failed to deserialize query string: unknown variant `bogus`"
        );
        assert_eq!(error_message("", StatusCode::BAD_GATEWAY), "bad gateway");
    }
}
