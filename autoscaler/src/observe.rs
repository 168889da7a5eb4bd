//! What the autoscaler reads from and asks of the coordinator, over its HTTP API with the
//! admin token: the agents (`GET /api/v1/agents`), the queue per tag set (`GET
//! /api/v1/queue`), draining (`POST /api/v1/agents/{id}/pause`), removal (`DELETE
//! /api/v1/agents/{id}`), the pools' state (`PUT /api/v1/pools/{autoscaler}`), and the
//! change events (`GET /api/v1/events`) that wake the loop between its ticks.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tracing::debug;

use crate::report::PoolReport;

/// An agent as the coordinator lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgentView {
    pub id: i64,
    pub name: String,
    /// `busy`, `idle`, `paused`, `draining` or `offline`.
    pub status: String,
    pub paused: bool,
    pub running_jobs: Vec<i64>,
}

/// The jobs waiting for one tag set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueueGroup {
    pub tags: Vec<String>,
    pub pending: u64,
    pub longest_wait_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// The coordinator did not answer.
    #[error("cannot reach the coordinator at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    /// It answered with an error.
    #[error("{url}: HTTP {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    /// Its answer is not what this autoscaler understands.
    #[error("{url}: unexpected answer: {source}")]
    Answer { url: String, source: reqwest::Error },
}

/// The coordinator's HTTP API, with the admin token.
#[derive(Clone)]
pub struct Coordinator {
    http: reqwest::Client,
    server: String,
    token: String,
}

impl Coordinator {
    pub fn new(server: &str, token: &str) -> Coordinator {
        Coordinator {
            http: reqwest::Client::new(),
            server: server.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    pub async fn agents(&self) -> Result<Vec<AgentView>, CoordinatorError> {
        self.read("/agents").await
    }

    pub async fn queue(&self) -> Result<Vec<QueueGroup>, CoordinatorError> {
        self.read("/queue").await
    }

    /// Pauses the agent: it takes no new job and finishes those it runs.
    pub async fn drain(&self, agent: i64) -> Result<(), CoordinatorError> {
        let path = format!("/agents/{agent}/pause");
        self.send(self.http.post(self.url(&path)), &path).await
    }

    /// Removes the agent from the agent list; its credential stops working.
    pub async fn remove(&self, agent: i64) -> Result<(), CoordinatorError> {
        let path = format!("/agents/{agent}");
        self.send(self.http.delete(self.url(&path)), &path).await
    }

    /// Publishes the pools' state for `esteira pool list`.
    pub async fn publish(
        &self,
        autoscaler: &str,
        pools: &[PoolReport],
    ) -> Result<(), CoordinatorError> {
        let path = format!("/pools/{autoscaler}");
        let body = serde_json::json!({ "pools": pools });
        self.send(self.http.put(self.url(&path)).json(&body), &path)
            .await
    }

    /// Wakes `wake` whenever a pipeline or one of its jobs changes (a job queued or
    /// ended), reconnecting a second after the stream fails; never returns.
    pub async fn follow_changes(self, wake: Arc<Notify>) {
        loop {
            let url = self.url("/events");
            match self.answer(self.http.get(&url), &url).await {
                Ok(response) => {
                    let mut body = response.bytes_stream();
                    while let Some(Ok(chunk)) = body.next().await {
                        // Keep-alives are comments (":"); every event names itself.
                        if chunk.windows(6).any(|window| window == b"event:") {
                            wake.notify_one();
                        }
                    }
                }
                Err(error) => debug!(%error, "no change events: the ticks go on alone"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server)
    }

    async fn read<T: DeserializeOwned>(&self, path: &str) -> Result<T, CoordinatorError> {
        let url = self.url(path);
        let response = self.answer(self.http.get(&url), &url).await?;
        response
            .json()
            .await
            .map_err(|source| CoordinatorError::Answer { url, source })
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<(), CoordinatorError> {
        self.answer(request, &self.url(path)).await.map(drop)
    }

    async fn answer(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, CoordinatorError> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|source| CoordinatorError::Unreachable {
                url: url.to_string(),
                source,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(CoordinatorError::Refused {
            url: url.to_string(),
            status: status.as_u16(),
            body: response.text().await.unwrap_or_default(),
        })
    }
}
