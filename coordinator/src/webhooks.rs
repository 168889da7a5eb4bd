//! Git events from forges: webhooks at `/hooks/{forge}/{project}`.

use axum::Router;

use crate::http::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
}
