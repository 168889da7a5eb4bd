//! The UI's files, compiled into the binary. One HTML page boots the application; the
//! server answers each client-side route with that page so links and reloads work.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::ApiState;

const INDEX: &str = include_str!("../../ui/index.html");

/// `(name under /ui/, content type, bytes)`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../ui/style.css"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/api.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/app.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/pages.js"),
    ),
    (
        "pipeline.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/pipeline.js"),
    ),
    (
        "job.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/job.js"),
    ),
    (
        "terminal.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/terminal.js"),
    ),
    (
        "logview.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/logview.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../ui/favicon.svg"),
    ),
];

/// Paths the page routes itself; each serves the page.
const PAGES: &[&str] = &[
    "/",
    "/pipelines",
    "/pipelines/{id}",
    "/jobs/{id}",
    "/agents",
    "/environments",
    "/projects",
    "/projects/{name}",
];

pub fn router() -> Router<ApiState> {
    let mut router = Router::new().route("/ui/{file}", get(file));
    for page in PAGES {
        router = router.route(page, get(index));
    }
    router
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // Small files, revalidated each load so an upgrade shows at once.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}
