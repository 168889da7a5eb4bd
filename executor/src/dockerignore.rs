//! The build context as `docker build` sends it: every file under the context directory
//! except what `.dockerignore` excludes (Docker's rules: patterns relative to the
//! context, `*` within a path component, `**` across them, a matched directory takes its
//! contents, `!` re-includes, the last matching line wins), packed into a tar.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A `.dockerignore` line is not a valid pattern.
    #[error(".dockerignore: invalid pattern {pattern:?}: {source}")]
    Pattern {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The rules of one `.dockerignore` file.
pub(crate) struct DockerIgnore {
    rules: Vec<(GlobMatcher, bool)>,
}

impl DockerIgnore {
    pub(crate) fn parse(text: &str) -> Result<DockerIgnore, ContextError> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (pattern, include) = match line.strip_prefix('!') {
                Some(rest) => (rest.trim(), true),
                None => (line, false),
            };
            let pattern = pattern
                .trim_start_matches('/')
                .trim_start_matches("./")
                .trim_end_matches('/');
            if pattern.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|source| ContextError::Pattern {
                    pattern: line.to_string(),
                    source,
                })?;
            rules.push((glob.compile_matcher(), include));
        }
        Ok(DockerIgnore { rules })
    }

    /// Whether a path (relative to the context) stays out of the build context.
    pub(crate) fn excludes(&self, relative: &Path) -> bool {
        let mut excluded = false;
        for (matcher, include) in &self.rules {
            let hit = relative
                .ancestors()
                .any(|path| !path.as_os_str().is_empty() && matcher.is_match(path));
            if hit {
                excluded = !include;
            }
        }
        excluded
    }
}

/// Writes the context of `dir` as a tar into `out`; `dockerfile` (relative to `dir`) is
/// always in it, as Docker needs it.
pub(crate) fn pack_context(
    dir: &Path,
    dockerfile: &Path,
    out: &Path,
) -> Result<usize, ContextError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContextError::Io { path, source }
    };
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text)?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => DockerIgnore::parse("")?,
        Err(error) => return Err(io(&dir.join(".dockerignore"))(error)),
    };
    let file = std::fs::File::create(out).map_err(io(out))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    builder.follow_symlinks(false);
    let mut count = 0;
    for entry in walkdir::WalkDir::new(dir).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|error| ContextError::Io {
            path: error.path().unwrap_or(dir).to_path_buf(),
            source: error.into(),
        })?;
        let Ok(relative) = entry.path().strip_prefix(dir) else {
            continue;
        };
        if entry.file_type().is_dir() || (ignore.excludes(relative) && relative != dockerfile) {
            continue;
        }
        builder
            .append_path_with_name(entry.path(), relative)
            .map_err(io(entry.path()))?;
        count += 1;
    }
    builder
        .into_inner()
        .and_then(|mut writer| std::io::Write::flush(&mut writer))
        .map_err(io(out))?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_dockers_rules() {
        let ignore = DockerIgnore::parse(
            "# comment\n.git\n*.log\n/build/\n**/secret*\n!build/keep.txt\ndocs\n!docs/README.md\n",
        )
        .expect("parsed");
        let excluded = |path: &str| ignore.excludes(Path::new(path));
        assert!(excluded(".git/config"));
        assert!(excluded("app.log"));
        assert!(!excluded("src/app.log"), "* stays within one component");
        assert!(excluded("build/out.bin"));
        assert!(!excluded("build/keep.txt"));
        assert!(excluded("a/b/secret.key"));
        assert!(excluded("docs/guide.md"));
        assert!(!excluded("docs/README.md"));
        assert!(!excluded("src/main.py"));
    }

    #[test]
    fn packs_what_is_not_ignored_and_always_the_dockerfile() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, content) in [
            ("Dockerfile", "FROM x"),
            (".dockerignore", "*\n!app/\n"),
            ("app/main.py", "print()"),
            ("notes.txt", "no"),
        ] {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, content).expect("write");
        }
        let out = tempfile::NamedTempFile::new().expect("temp file");
        pack_context(dir.path(), Path::new("Dockerfile"), out.path()).expect("packed");
        let mut archive = tar::Archive::new(std::fs::File::open(out.path()).expect("open"));
        let mut names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|entry| {
                entry
                    .expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        names.sort();
        assert_eq!(names, vec!["Dockerfile", "app/main.py"]);
    }
}
