//! The web UI: plain HTML, CSS and JavaScript embedded in the binary, served at `/` over
//! the same REST API the CLI uses.

use axum::Router;

use crate::http::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
}
