//! Status badges as GitLab draws them (flat, two-part SVG), for READMEs and dashboards:
//!
//! - `/badges/{project}/pipeline.svg?ref=REF`: the status of the project's latest pipeline
//!   for the ref (or for any ref when none is given).
//! - `/badges/{project}/coverage.svg?ref=REF`: the coverage of the project's latest
//!   finished pipeline on the ref (the project's default branch when none is given), with
//!   two decimals and GitLab's colours by value.
//!
//! An unknown project, a ref without pipelines or a pipeline without a coverage figure
//! shows `unknown` rather than an error, as a README image must render.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::api::{ApiError, ApiState};
use crate::model::PipelineStatus;
use crate::store::pipelines::PipelineFilter;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/badges/{project}/pipeline.svg", get(pipeline_badge))
        .route("/badges/{project}/coverage.svg", get(coverage_badge))
}

#[derive(Deserialize)]
struct BadgeQuery {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
}

async fn pipeline_badge(
    State(state): State<ApiState>,
    Path(project): Path<String>,
    Query(query): Query<BadgeQuery>,
) -> Result<Response, ApiError> {
    let filter = PipelineFilter {
        project: Some(project),
        git_ref: query.git_ref,
        limit: 1,
        ..PipelineFilter::default()
    };
    let latest = state.store.pipelines(&filter).await?;
    let (text, colour) = match latest.first().map(|pipeline| pipeline.status) {
        Some(PipelineStatus::Success) => ("passed", "#4c1"),
        Some(PipelineStatus::Failed) => ("failed", "#e05d44"),
        Some(PipelineStatus::Running) => ("running", "#dfb317"),
        Some(PipelineStatus::Pending | PipelineStatus::Created) => ("pending", "#dfb317"),
        Some(PipelineStatus::Manual) => ("manual", "#9f9f9f"),
        Some(PipelineStatus::Canceled) => ("canceled", "#9f9f9f"),
        Some(PipelineStatus::Skipped) => ("skipped", "#9f9f9f"),
        None => ("unknown", "#9f9f9f"),
    };
    Ok(svg_response(badge("pipeline", text, colour)))
}

async fn coverage_badge(
    State(state): State<ApiState>,
    Path(project): Path<String>,
    Query(query): Query<BadgeQuery>,
) -> Result<Response, ApiError> {
    let store = &state.store;
    let coverage = match store.project_by_name(&project).await? {
        None => None,
        Some(found) => {
            let git_ref = query.git_ref.unwrap_or(found.default_branch);
            let latest = store.latest_finished_pipeline(&project, &git_ref).await?;
            latest.and_then(|pipeline| pipeline.coverage)
        }
    };
    Ok(svg_response(coverage_svg(coverage)))
}

/// The coverage badge for a figure in percent: GitLab's thresholds and colours.
fn coverage_svg(coverage: Option<f64>) -> String {
    let Some(figure) = coverage else {
        return badge("coverage", "unknown", "#9f9f9f");
    };
    let colour = match figure {
        f if f >= 95.0 => "#4c1",
        f if f >= 75.0 => "#a3c51c",
        f if f >= 50.0 => "#dfb317",
        _ => "#e05d44",
    };
    badge("coverage", &format!("{figure:.2}%"), colour)
}

fn svg_response(svg: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            // Badges are embedded by other sites; they must never show a stale status.
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
        ],
        svg,
    )
        .into_response()
}

/// Width in pixels of `text` in 11px Verdana, near enough for a badge: narrow and wide
/// letters measured, everything else average.
fn text_width(text: &str) -> u32 {
    text.chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | '\'' | '|' | '!' => 3,
            'f' | 't' | 'r' | ' ' | '(' | ')' | '-' => 4,
            'm' | 'w' | 'M' | 'W' => 10,
            _ => 7,
        })
        .sum()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A flat two-part badge: `label` on grey, `value` on `colour`.
pub fn badge(label: &str, value: &str, colour: &str) -> String {
    let left = text_width(label) + 12;
    let right = text_width(value) + 12;
    let width = left + right;
    let (label, value) = (escape(label), escape(value));
    let label_x = left * 10 / 2;
    let value_x = (left + right / 2) * 10;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{label}: {value}"><title>{label}: {value}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{colour}"/><rect width="{width}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="110"><text x="{label_x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)">{label}</text><text x="{label_x}" y="140" transform="scale(.1)">{label}</text><text x="{value_x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)">{value}</text><text x="{value_x}" y="140" transform="scale(.1)">{value}</text></g></svg>"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_badge_is_svg_with_both_texts_and_escapes_them() {
        let svg = badge("pipeline", "a<b", "#4c1");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains(">pipeline</text>"));
        assert!(svg.contains(">a&lt;b</text>"));
        assert!(svg.contains("fill=\"#4c1\""));
    }

    #[test]
    fn the_coverage_badge_shows_two_decimals_coloured_by_value() {
        let cases = [
            (Some(100.0), "100.00%", "#4c1"),
            (Some(95.0), "95.00%", "#4c1"),
            (Some(87.349), "87.35%", "#a3c51c"),
            (Some(75.0), "75.00%", "#a3c51c"),
            (Some(50.0), "50.00%", "#dfb317"),
            (Some(12.5), "12.50%", "#e05d44"),
            (None, "unknown", "#9f9f9f"),
        ];
        for (figure, text, colour) in cases {
            let svg = coverage_svg(figure);
            assert!(svg.contains(">coverage</text>"), "{svg}");
            assert!(
                svg.contains(&format!(">{text}</text>")),
                "{figure:?}: {svg}"
            );
            assert!(
                svg.contains(&format!("fill=\"{colour}\"")),
                "{figure:?}: {svg}"
            );
            assert!(svg.contains(&format!("aria-label=\"coverage: {text}\"")));
        }
    }

    #[test]
    fn wider_text_makes_a_wider_badge() {
        let narrow = badge("pipeline", "passed", "#4c1");
        let wide = badge("pipeline", "canceled and more", "#4c1");
        let width = |svg: &str| -> u32 {
            let start = svg.find("width=\"").unwrap() + 7;
            svg[start..].split('"').next().unwrap().parse().unwrap()
        };
        assert!(width(&wide) > width(&narrow));
    }
}
