//! The web UI: plain HTML, CSS and JavaScript embedded in the binary (no build step),
//! served at `/` over the same REST API the CLI uses ([`crate::api`], whose server-sent
//! events keep the pages live).
//!
//! - [`assets`]: the single page and its files under `/ui/…`; every path the page routes
//!   to client-side (`/pipelines/12`, `/jobs/34`, …) answers with the page itself.
//! - [`badges`]: `/badges/{project}/pipeline.svg` and `coverage.svg`, the latest
//!   pipeline's status and coverage as badges. They are drawn for people, as the page is
//!   (the page shows them on a project's pipelines, READMEs embed them), not data for
//!   programs as the API is, so they live here.

mod assets;
mod badges;

use axum::Router;

use crate::api::ApiState;

pub fn router() -> Router<ApiState> {
    Router::new()
        .merge(assets::router())
        .merge(badges::router())
}
