//! The variables a job sees: GitLab's predefined `CI_*` ones, the pipeline file's, and the
//! ones given with the pipeline, in GitLab's precedence (later wins) and expanded as the
//! runner expands them (`$VAR`, `${VAR}`, `$$` for a dollar sign).

use std::collections::HashMap;

use esteira_pipeline::{PipelineSource, RefKind};

/// What the predefined pipeline-level variables are made of.
pub struct PipelineFacts<'a> {
    pub pipeline_id: i64,
    pub project: &'a str,
    pub git_ref: &'a RefKind,
    pub sha: &'a str,
    pub source: PipelineSource,
    /// The coordinator's public HTTP address, for `CI_PIPELINE_URL`.
    pub server_url: &'a str,
}

/// GitLab's predefined variables of a pipeline.
pub fn predefined(facts: &PipelineFacts<'_>) -> Vec<(String, String)> {
    let (ref_name, ref_variable) = match facts.git_ref {
        RefKind::Branch(name) => (name.as_str(), "CI_COMMIT_BRANCH"),
        RefKind::Tag(name) => (name.as_str(), "CI_COMMIT_TAG"),
    };
    let short_sha: String = facts.sha.chars().take(8).collect();
    let pairs = [
        ("CI", "true".to_string()),
        ("ESTEIRA", "true".to_string()),
        ("CI_SERVER_URL", facts.server_url.to_string()),
        ("CI_PIPELINE_ID", facts.pipeline_id.to_string()),
        ("CI_PIPELINE_IID", facts.pipeline_id.to_string()),
        ("CI_PIPELINE_SOURCE", source_name(facts.source)),
        (
            "CI_PIPELINE_URL",
            format!("{}/pipelines/{}", facts.server_url, facts.pipeline_id),
        ),
        ("CI_PROJECT_NAME", facts.project.to_string()),
        ("CI_PROJECT_PATH", facts.project.to_string()),
        ("CI_PROJECT_DIR", format!("/builds/{}", facts.project)),
        ("CI_COMMIT_SHA", facts.sha.to_string()),
        ("CI_COMMIT_SHORT_SHA", short_sha),
        ("CI_COMMIT_REF_NAME", ref_name.to_string()),
        ("CI_COMMIT_REF_SLUG", slug(ref_name)),
        (ref_variable, ref_name.to_string()),
    ];
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
}

/// GitLab's `CI_PIPELINE_SOURCE` text of a source.
pub fn source_name(source: PipelineSource) -> String {
    serde_json::to_value(source)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// GitLab's `CI_COMMIT_REF_SLUG`: lowercased, every other character than `a-z0-9` replaced
/// by `-`, at most 63 bytes, no leading or trailing `-`.
pub fn slug(text: &str) -> String {
    let replaced: String = text
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    replaced.trim_matches('-').to_string()
}

/// Expands each value against the variables before it (and itself excluded), in order;
/// a later definition of a key replaces an earlier one in place of precedence.
pub fn expand_all(variables: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut known: HashMap<String, String> = HashMap::new();
    let mut out: Vec<(String, String)> = Vec::new();
    for (key, raw) in variables {
        let value = expand(&raw, &known);
        known.insert(key.clone(), value.clone());
        match out.iter_mut().find(|(existing, _)| *existing == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key, value)),
        }
    }
    out
}

/// Replaces `$NAME` and `${NAME}` by their values (unknown ones by nothing) and `$$` by `$`.
pub fn expand(text: &str, known: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => {
                    out.push_str(known.get(&braced[..end]).map_or("", String::as_str));
                    rest = &braced[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end == 0 {
                out.push('$');
            } else {
                out.push_str(known.get(&after[..end]).map_or("", String::as_str));
            }
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_follows_gitlab() {
        assert_eq!(slug("feature/New_Thing"), "feature-new-thing");
        assert_eq!(slug("-v1.0-"), "v1-0");
        assert_eq!(slug(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn expansion_uses_earlier_values_and_keeps_escaped_dollars() {
        let vars = vec![
            ("REGISTRY".to_string(), "127.0.0.1:5000".to_string()),
            ("IMAGE".to_string(), "$REGISTRY/app:${TAG}".to_string()),
            (
                "PRICE".to_string(),
                "$$5 and $ alone and $UNSET.".to_string(),
            ),
        ];
        let expanded = expand_all(vars);
        assert_eq!(expanded[1].1, "127.0.0.1:5000/app:");
        assert_eq!(expanded[2].1, "$5 and $ alone and .");
    }

    #[test]
    fn later_definition_wins_in_place() {
        let vars = vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "$A".to_string()),
            ("A".to_string(), "2".to_string()),
        ];
        assert_eq!(
            expand_all(vars),
            vec![
                ("A".to_string(), "2".to_string()),
                ("B".to_string(), "1".to_string())
            ]
        );
    }
}
