//! File variables (GitLab's `file` type): the value is written to a file of its own and
//! the job sees the file's path as the variable's value.
//!
//! The files live in `builds/<job_id>/<project>.tmp/` — beside the checkout, not in it, so
//! `git status`, `artifacts: untracked` and caches never pick them up — and that directory
//! is mounted with the rest of the build directory, so script and `after_script` containers
//! read them at `/builds/<project>.tmp/<KEY>`. The directory is 0700 and each file 0600; both
//! go with the build directory when the job's cleanup removes it. Services do not mount the
//! build directory, so they get the path of a file they cannot see, as with GitLab's Docker
//! executor. Values the executor reads itself (image names, registry credentials, `build:`
//! arguments) keep the content.

use std::collections::HashMap;
use std::path::Path;

use tokio::io::AsyncWriteExt;

use crate::workspace::WorkspaceError;

/// The directory holding the files, named after the checkout it sits beside.
pub(crate) fn dir_name(project: &str) -> String {
    format!("{project}.tmp")
}

/// The content of each file variable: the last value of its key in `env` (later wins).
fn contents<'a>(env: &'a [(String, String)], file_keys: &[String]) -> HashMap<&'a str, &'a str> {
    env.iter()
        .filter(|(key, _)| file_keys.contains(key))
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect()
}

/// Writes one 0600 file per file variable into `dir` (created 0700, emptied first).
pub(crate) async fn write(
    dir: &Path,
    env: &[(String, String)],
    file_keys: &[String],
) -> Result<(), WorkspaceError> {
    let files = contents(env, file_keys);
    if files.is_empty() {
        return Ok(());
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WorkspaceError::Io { path, source }
    };
    match tokio::fs::remove_dir_all(dir).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(io(dir)(error)),
        _ => {}
    }
    tokio::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .await
        .map_err(io(dir))?;
    for (key, content) in files {
        let path = dir.join(key);
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .await
            .map_err(io(&path))?;
        file.write_all(content.as_bytes())
            .await
            .map_err(io(&path))?;
        file.flush().await.map_err(io(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_string(), value.to_string())
    }

    #[tokio::test]
    async fn each_file_variable_gets_a_private_file_with_its_last_value() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(dir_name("demo"));
        let env = vec![
            pair("KUBECONFIG", "old"),
            pair("PLAIN", "not a file"),
            pair("KUBECONFIG", "apiVersion: v1\n"),
        ];
        let keys = vec!["KUBECONFIG".to_string(), "ABSENT".to_string()];
        write(&dir, &env, &keys).await.unwrap();

        let file = dir.join("KUBECONFIG");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "apiVersion: v1\n");
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "one file, no other"
        );
    }

    #[tokio::test]
    async fn no_file_variables_write_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(dir_name("demo"));
        write(&dir, &[pair("PLAIN", "x")], &[]).await.unwrap();
        assert!(!dir.exists());
    }
}
