//! What a project must be to be stored: a name usable in URLs and paths, a repository,
//! and settings that can work. Checked before anything is written; each check answers why
//! the input is refused, if it is.

use crate::store::projects::ProjectSettings;

/// Why a new project (`name`, `repo_url` and its `settings`) cannot be added, if it cannot.
pub fn invalid_new(name: &str, repo_url: &str, settings: &ProjectSettings) -> Option<String> {
    if !valid_name(name) {
        return Some(format!(
            "invalid project name '{name}': use letters, digits, '-', '_' and '.'"
        ));
    }
    if repo_url.trim().is_empty() {
        return Some("a project needs a repository URL".into());
    }
    invalid_settings(settings)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

/// Why `settings` cannot work, if they cannot.
pub fn invalid_settings(settings: &ProjectSettings) -> Option<String> {
    let bad = |message: &str| Some(message.to_string());
    if settings
        .repo_url
        .as_deref()
        .is_some_and(|u| u.trim().is_empty())
    {
        return bad("a project needs a repository URL");
    }
    if settings
        .pipeline_file
        .as_deref()
        .is_some_and(|f| f.trim().is_empty())
    {
        return bad("the pipeline file cannot be empty");
    }
    if settings
        .default_branch
        .as_deref()
        .is_some_and(|b| b.trim().is_empty())
    {
        return bad("the default branch cannot be empty");
    }
    if settings.poll_interval_secs.is_some_and(|s| s < 0) {
        return bad("the poll interval is a number of seconds, 0 to turn polling off");
    }
    if let Some(url) = settings.forge_api_url.as_deref().filter(|u| !u.is_empty())
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return bad("the forge API URL must start with http:// or https://");
    }
    None
}
