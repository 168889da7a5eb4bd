//! [`FileSource`]s: [`DirSource`] over a checked-out directory, [`MemorySource`] over
//! files held in memory (tests, and callers that fetched the files themselves).

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::context::FileSource;

/// Files under a directory; paths are relative to it, with `/` separators.
#[derive(Debug, Clone)]
pub struct DirSource(pub PathBuf);

impl DirSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirSource(root.into())
    }
}

/// Directories never listed (version control, build output).
const SKIPPED_DIRS: &[&str] = &[".git", "target", "node_modules"];
/// Bound on the listing of huge trees.
const MAX_FILES: usize = 200_000;

impl FileSource for DirSource {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        let relative = Path::new(path.trim_start_matches('/'));
        // Stay inside the repository: no `..`, no absolute paths.
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Ok(None);
        }
        match std::fs::read(self.0.join(relative)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.kind() == io::ErrorKind::IsADirectory =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut files = Vec::new();
        let mut pending = vec![self.0.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                let path = entry.path();
                if kind.is_dir() {
                    if !SKIPPED_DIRS.iter().any(|s| entry.file_name() == *s) {
                        pending.push(path);
                    }
                } else if let Ok(relative) = path.strip_prefix(&self.0) {
                    let parts: Vec<String> = relative
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    files.push(parts.join("/"));
                    if files.len() >= MAX_FILES {
                        return Ok(files);
                    }
                }
            }
        }
        files.sort();
        Ok(files)
    }
}

/// Files held in memory, by repository path.
#[derive(Debug, Clone, Default)]
pub struct MemorySource(pub BTreeMap<String, Vec<u8>>);

impl MemorySource {
    /// A source from `(path, content)` pairs.
    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        MemorySource(
            files
                .into_iter()
                .map(|(path, text)| (path.to_owned(), text.as_bytes().to_vec()))
                .collect(),
        )
    }
}

impl FileSource for MemorySource {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.0.get(path.trim_start_matches('/')).cloned())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.0.keys().cloned().collect())
    }
}
