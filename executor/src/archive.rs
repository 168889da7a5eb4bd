//! Files of a workspace chosen by GitLab path patterns, packed into tar.gz archives with
//! a size limit, and archives unpacked into a workspace (never outside it). Shared by
//! artifacts and cache. Blocking I/O: callers run it on the blocking pool.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A path pattern is not a valid glob.
    #[error("invalid path pattern {pattern:?}: {source}")]
    Pattern {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The archive grew over its limit.
    #[error("archive larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Path patterns as GitLab reads them: relative to the project directory, `*` within one
/// path component, `**` across them; a pattern naming a directory takes all inside it.
pub(crate) struct Patterns(GlobSet);

impl Patterns {
    pub(crate) fn new(patterns: &[String]) -> Result<Patterns, ArchiveError> {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            let cleaned = pattern.trim_start_matches("./").trim_end_matches('/');
            if cleaned.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(cleaned)
                .literal_separator(true)
                .build()
                .map_err(|source| ArchiveError::Pattern {
                    pattern: pattern.clone(),
                    source,
                })?;
            set.add(glob);
        }
        let set = set.build().map_err(|source| ArchiveError::Pattern {
            pattern: patterns.join(", "),
            source,
        })?;
        Ok(Patterns(set))
    }

    /// The path or one of its parent directories matches.
    pub(crate) fn covers(&self, relative: &Path) -> bool {
        relative
            .ancestors()
            .any(|path| !path.as_os_str().is_empty() && self.0.is_match(path))
    }
}

/// The files (and symlinks) under `root` covered by `include` or listed in `extra`, and
/// not covered by `exclude`, as sorted relative paths. `.git` is never taken.
pub(crate) fn select(
    root: &Path,
    include: &Patterns,
    exclude: &Patterns,
    extra: &HashSet<PathBuf>,
) -> Result<Vec<PathBuf>, ArchiveError> {
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|entry| entry.depth() != 1 || entry.file_name() != ".git");
    for entry in walker {
        let entry = entry.map_err(|error| ArchiveError::Io {
            path: error.path().unwrap_or(root).to_path_buf(),
            source: error.into(),
        })?;
        if entry.file_type().is_dir() {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(root) else {
            continue;
        };
        if (include.covers(relative) || extra.contains(relative)) && !exclude.covers(relative) {
            files.push(relative.to_path_buf());
        }
    }
    files.sort();
    Ok(files)
}

/// Writes `files` (relative to `root`) into a new tar.gz at `out`; fails once the
/// compressed archive grows over `limit`. Returns the archive's size.
pub(crate) fn pack(
    root: &Path,
    files: &[PathBuf],
    out: &Path,
    limit: Option<u64>,
) -> Result<u64, ArchiveError> {
    let file = File::create(out).map_err(io_error(out))?;
    let over_limit = Rc::new(Cell::new(false));
    let counter = LimitedWriter {
        inner: file,
        written: 0,
        limit: limit.unwrap_or(u64::MAX),
        over_limit: over_limit.clone(),
    };
    let mut builder = tar::Builder::new(GzEncoder::new(counter, Compression::fast()));
    builder.follow_symlinks(false);
    let result = (|| {
        for relative in files {
            let path = root.join(relative);
            builder
                .append_path_with_name(&path, relative)
                .map_err(io_error(&path))?;
        }
        let encoder = builder.into_inner().map_err(io_error(out))?;
        let mut counter = encoder.finish().map_err(io_error(out))?;
        counter.flush().map_err(io_error(out))?;
        Ok(counter.written)
    })();
    match result {
        Ok(size) => Ok(size),
        Err(error) => {
            let _ = std::fs::remove_file(out);
            if over_limit.get() {
                Err(ArchiveError::TooLarge {
                    limit: limit.unwrap_or(u64::MAX),
                })
            } else {
                Err(error)
            }
        }
    }
}

/// Unpacks a tar.gz into `dest`, overwriting files; entries that would land outside
/// `dest` are skipped.
pub(crate) fn unpack(archive: &Path, dest: &Path) -> Result<(), ArchiveError> {
    let file = File::open(archive).map_err(io_error(archive))?;
    let mut tar = tar::Archive::new(GzDecoder::new(file));
    tar.set_overwrite(true);
    tar.set_preserve_permissions(true);
    for entry in tar.entries().map_err(io_error(archive))? {
        let mut entry = entry.map_err(io_error(archive))?;
        entry.unpack_in(dest).map_err(io_error(archive))?;
    }
    Ok(())
}

/// Counts what goes through and refuses to go over a limit (and says so in `over_limit`,
/// as the error itself may come back wrapped).
struct LimitedWriter<W> {
    inner: W,
    written: u64,
    limit: u64,
    over_limit: Rc<Cell<bool>>,
}

impl<W: Write> Write for LimitedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            self.over_limit.set(true);
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "archive size limit reached",
            ));
        }
        let written = self.inner.write(buf)?;
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for path in [
            "dist/app.bin",
            "dist/sub/lib.so",
            "dist/tmp.log",
            "report.xml",
            "src/main.rs",
            "src/deep/x.txt",
            "top.txt",
            ".git/config",
        ] {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, path.to_string_lossy().as_bytes()).expect("write");
        }
        dir
    }

    fn strings(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn selects_directories_globs_and_exclusions() {
        let dir = tree();
        let include = Patterns::new(&strings(&["dist/", "*.txt", "src/**/*.txt"])).expect("ok");
        let exclude = Patterns::new(&strings(&["**/*.log"])).expect("ok");
        let files = select(dir.path(), &include, &exclude, &HashSet::new()).expect("ok");
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            names,
            vec![
                "dist/app.bin",
                "dist/sub/lib.so",
                "src/deep/x.txt",
                "top.txt"
            ]
        );
    }

    #[test]
    fn packs_and_unpacks_the_same_bytes_and_honours_the_limit() {
        let dir = tree();
        let include = Patterns::new(&strings(&["dist"])).expect("ok");
        let none = Patterns::new(&[]).expect("ok");
        let extra = HashSet::from([PathBuf::from("report.xml")]);
        let files = select(dir.path(), &include, &none, &extra).expect("ok");
        let out = dir.path().join("out.tar.gz");
        pack(dir.path(), &files, &out, None).expect("packed");

        let dest = tempfile::tempdir().expect("temp dir");
        unpack(&out, dest.path()).expect("unpacked");
        let read = |path: &str| std::fs::read(dest.path().join(path)).expect("read");
        assert_eq!(
            read("dist/sub/lib.so"),
            std::fs::read(dir.path().join("dist/sub/lib.so")).expect("read")
        );
        assert_eq!(
            read("report.xml"),
            std::fs::read(dir.path().join("report.xml")).expect("read")
        );
        assert!(!dest.path().join("top.txt").exists());

        let big = dir.path().join("big.tar.gz");
        assert!(matches!(
            pack(dir.path(), &files, &big, Some(10)),
            Err(ArchiveError::TooLarge { limit: 10 })
        ));
        assert!(!big.exists());
    }
}
