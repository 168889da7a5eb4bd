//! GitLab's predefined variables that follow from the event alone (ref, commit, source,
//! project). The coordinator passes its own in [`EventContext::variables`]; these fill the
//! ones it left out, so that a plan made offline (`esteira lint --plan`) sees the same.

use std::collections::BTreeMap;

use crate::context::{EventContext, PipelineSource, RefKind};

/// The predefined variables of `ctx`, overridden by `ctx.variables`.
pub fn predefined_variables(ctx: &EventContext) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let mut set = |key: &str, value: &str| {
        vars.insert(key.to_owned(), value.to_owned());
    };
    set("CI", "true");
    set("GITLAB_CI", "true");
    set("CI_SERVER", "yes");
    match &ctx.git_ref {
        RefKind::Branch(name) => {
            if ctx.source != PipelineSource::MergeRequestEvent {
                set("CI_COMMIT_BRANCH", name);
            }
            set("CI_COMMIT_REF_NAME", name);
        }
        RefKind::Tag(name) => {
            set("CI_COMMIT_TAG", name);
            set("CI_COMMIT_REF_NAME", name);
        }
    }
    let ref_name = match &ctx.git_ref {
        RefKind::Branch(name) | RefKind::Tag(name) => name.as_str(),
    };
    set("CI_COMMIT_REF_SLUG", &ref_slug(ref_name));
    set("CI_COMMIT_SHA", &ctx.sha);
    set("CI_COMMIT_SHORT_SHA", ctx.sha.get(..8).unwrap_or(&ctx.sha));
    set("CI_PIPELINE_SOURCE", pipeline_source(ctx.source));
    set("CI_PROJECT_PATH", &ctx.project_path);
    let (namespace, name) = ctx
        .project_path
        .rsplit_once('/')
        .unwrap_or(("", &ctx.project_path));
    set("CI_PROJECT_NAMESPACE", namespace);
    set("CI_PROJECT_NAME", name);
    set("CI_PROJECT_PATH_SLUG", &ref_slug(&ctx.project_path));
    for (key, value) in &ctx.variables {
        vars.insert(key.clone(), value.clone());
    }
    vars
}

/// `CI_PIPELINE_SOURCE`'s value for `source`.
pub fn pipeline_source(source: PipelineSource) -> &'static str {
    match source {
        PipelineSource::Push => "push",
        PipelineSource::Web => "web",
        PipelineSource::Api => "api",
        PipelineSource::MergeRequestEvent => "merge_request_event",
        PipelineSource::Schedule => "schedule",
        PipelineSource::Trigger => "trigger",
    }
}

/// GitLab's `CI_COMMIT_REF_SLUG`: lowercased, 63 bytes at most, anything but `0-9a-z`
/// replaced by `-`, no leading or trailing `-`.
pub fn ref_slug(name: &str) -> String {
    let replaced: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    replaced.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Predefined variables reference, CI_COMMIT_REF_SLUG.
    #[test]
    fn slug() {
        assert_eq!(ref_slug("feature/New_Thing"), "feature-new-thing");
        assert_eq!(ref_slug("/v1.0/"), "v1-0");
    }
}
