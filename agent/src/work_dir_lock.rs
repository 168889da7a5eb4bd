//! One agent per work dir: an exclusive lock on `<work-dir>/agent.lock`, held for the
//! process's life.
//!
//! Two agents on one work dir would share its credential, so the second would take over
//! the first one's session and labels, and remove the first one's job containers as
//! leftovers of a crash. The second one refuses to start instead, naming the holder. The
//! lock is `flock(2)`: the kernel releases it when its holder exits, even by SIGKILL, so a
//! crashed agent never blocks its successor.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

/// Holds the work dir's lock until dropped.
#[derive(Debug)]
pub struct WorkDirLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "another esteira-agent{} already runs on the work dir {}: stop it, or give this one a work dir of its own (--work-dir)",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
        work_dir.display()
    )]
    Held {
        work_dir: PathBuf,
        holder: Option<u32>,
    },
    /// The lock file cannot be created, read or written.
    #[error("cannot lock the work dir {}: {source}", work_dir.display())]
    Io {
        work_dir: PathBuf,
        source: std::io::Error,
    },
}

/// The lock file's path in `work_dir`.
pub fn path(work_dir: &Path) -> PathBuf {
    work_dir.join("agent.lock")
}

impl WorkDirLock {
    /// Creates `work_dir` if needed and takes its lock, or says who holds it.
    pub fn acquire(work_dir: &Path) -> Result<WorkDirLock, LockError> {
        let io = |source| LockError::Io {
            work_dir: work_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(work_dir).map_err(io)?;
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path(work_dir))
            .map_err(io)?;
        if !file.try_lock_exclusive().map_err(io)? {
            return Err(LockError::Held {
                work_dir: work_dir.to_path_buf(),
                holder: holder(&mut file),
            });
        }
        // The pid is for the message of a second agent only: the lock is what counts.
        write_holder(&mut file, std::process::id()).map_err(io)?;
        Ok(WorkDirLock { _file: file })
    }
}

/// Writes the pid of a lock's holder into its file, for the messages of those who wait.
pub(crate) fn write_holder(file: &mut File, pid: u32) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{pid}")
}

/// The holder's pid as it wrote it (none while it has not yet, or when unreadable).
pub(crate) fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_work_dir_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let work_dir = dir.path().join("work");
        let first = WorkDirLock::acquire(&work_dir).expect("the first lock");
        let refused = WorkDirLock::acquire(&work_dir).expect_err("a second lock");
        let message = refused.to_string();
        assert!(
            message.contains(&format!("(pid {})", std::process::id())),
            "{message}"
        );
        assert!(
            message.contains(&work_dir.display().to_string()),
            "{message}"
        );
        drop(first);
        WorkDirLock::acquire(&work_dir).expect("the lock once released");
    }
}
