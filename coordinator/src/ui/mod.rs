//! The web UI: plain HTML, CSS and JavaScript embedded in the binary (no build step),
//! served at `/` over the same REST API the CLI uses.
//!
//! - [`assets`]: the single page and its files under `/ui/…`; every path the page routes
//!   to client-side (`/pipelines/12`, `/jobs/34`, …) answers with the page itself.
//! - [`sse`]: server-sent events for live pages: a pipeline's state, a job's log bytes
//!   (resumable by offset), and a coarse feed of changes for the lists.
//! - [`badges`]: `/badges/{project}/pipeline.svg` and `coverage.svg`, the latest
//!   pipeline's status and coverage as badges.
//! - [`queue`]: `/api/v1/queue`, the pending jobs per required tag set, for the agents page.

mod assets;
mod badges;
mod queue;
mod sse;

use axum::Router;

use crate::http::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .merge(assets::router())
        .merge(sse::router())
        .merge(badges::router())
        .merge(queue::router())
}
