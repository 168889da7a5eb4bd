//! The agent's watchdog: a second process that stops the agent's jobs the moment the
//! agent dies, however it dies, so that no job of a dead agent runs on into the retry the
//! coordinator makes once the dead agent's lease expires.
//!
//! # Design
//! At start the agent runs its own binary again, as `esteira-agent watchdog --name NAME
//! --work-dir DIR`, with the read end of a pipe as the watchdog's stdin. Only the agent
//! holds the write end, and never writes to it: it is close-on-exec, so neither the
//! watchdog nor any process the agent starts inherits it, and the kernel closes it when
//! the agent exits, by `exit`, a panic, SIGKILL or the OOM killer alike. The watchdog then
//! reads end of file, removes (with force: SIGKILL, then removal) every container, network
//! and volume of the agent's jobs, those carrying `esteira.instance=NAME`
//! ([`crate::orphans::remove`]), and exits. After a clean shutdown the agent has removed
//! them already and the watchdog finds nothing.
//!
//! The watchdog runs in a session of its own (`setsid`) and ignores SIGHUP, SIGINT and
//! SIGTERM: a terminal hang-up, a Ctrl-C or a signal to the agent's process group does not
//! take it with the agent, and under systemd, which sends SIGTERM to every process of the
//! unit on stop and once its main process died, it stays for its sweep. Only SIGKILL stops
//! it (systemd's, after `TimeoutStopSec`; a host going down): what it then leaves behind,
//! the next agent's start-up sweep removes.
//!
//! The watchdog holds `<work-dir>/watchdog.lock` for its whole life: the agent takes the
//! lock before starting it and hands it over by inheritance (the same open file, so the
//! same `flock`), leaving no moment where nobody holds it. The next agent on the work dir,
//! or `prune`, takes that lock before its own sweep: it waits for the watchdog of a dead
//! agent to finish instead of racing it, and an old watchdog never removes the containers
//! of a new agent's jobs.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use esteira_logging::LogArgs;
use fs4::fs_std::FileExt;
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::orphans;
use crate::work_dir_lock;

/// How long an agent (or `prune`) waits for the watchdog of the previous agent on its
/// work dir to finish; longer than that watchdog tries.
const PREVIOUS_WATCHDOG_WAIT: Duration = Duration::from_secs(90);
/// How long the watchdog keeps trying when Docker does not answer.
const SWEEP_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    /// The lock file cannot be created or locked.
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The watchdog of an earlier agent still holds the lock.
    #[error(
        "the watchdog of an earlier agent on the work dir {}{} is still removing that agent's jobs after {}s: is Docker answering?",
        work_dir.display(),
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
        waited.as_secs()
    )]
    Busy {
        work_dir: PathBuf,
        holder: Option<u32>,
        waited: Duration,
    },
    /// The watchdog process cannot be started.
    #[error("cannot start the watchdog: {0}")]
    Spawn(#[source] std::io::Error),
}

/// `<work-dir>/watchdog.lock`, held.
pub struct Lock(File);

impl Lock {
    /// Takes the lock, waiting for the watchdog of an earlier agent to finish its sweep.
    pub async fn take(work_dir: &Path) -> Result<Lock, WatchdogError> {
        let path = work_dir.join("watchdog.lock");
        let io = |source| WatchdogError::Lock {
            path: path.clone(),
            source,
        };
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let started = Instant::now();
        let mut told = false;
        while !file.try_lock_exclusive().map_err(io)? {
            let holder = work_dir_lock::holder(&mut file);
            let waited = started.elapsed();
            if waited >= PREVIOUS_WATCHDOG_WAIT {
                return Err(WatchdogError::Busy {
                    work_dir: work_dir.to_path_buf(),
                    holder,
                    waited,
                });
            }
            if !told {
                info!(
                    pid = holder,
                    "waiting for the watchdog of the previous agent on this work dir to remove that agent's jobs"
                );
                told = true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Lock(file))
    }
}

/// The agent's end of the pipe: the watchdog sweeps once it is closed, that is once the
/// agent has exited. Hold it for the agent's whole life.
pub struct Watchdog {
    _pipe: ChildStdin,
}

/// Starts the watchdog of the agent named `name` on `work_dir` (after waiting for the
/// previous agent's one), logging as `log` says.
pub async fn start(name: &str, work_dir: &Path, log: &LogArgs) -> Result<Watchdog, WatchdogError> {
    let Lock(mut lock) = Lock::take(work_dir).await?;
    let work_dir = std::path::absolute(work_dir).map_err(WatchdogError::Spawn)?;
    let mut command = Command::new(std::env::current_exe().map_err(WatchdogError::Spawn)?);
    command
        .args(["watchdog", "--name", name, "--work-dir"])
        .arg(&work_dir);
    command.args(log.to_args());
    command.stdin(Stdio::piped()).stdout(Stdio::null());
    let lock_fd = lock.as_raw_fd();
    // SAFETY: `detach` makes only async-signal-safe system calls, as a child between
    // fork and exec must.
    unsafe {
        command.pre_exec(move || detach(lock_fd));
    }
    let mut child = command.spawn().map_err(WatchdogError::Spawn)?;
    let pid = child.id();
    let pipe = child.stdin.take().expect("the watchdog's stdin is a pipe");
    // The pid is for the message of an agent waiting for this watchdog only.
    if let Err(error) = work_dir_lock::write_holder(&mut lock, pid) {
        warn!(%error, "cannot write the watchdog's pid into its lock file");
    }
    std::thread::spawn(move || {
        let status = child.wait();
        warn!(
            pid,
            ?status,
            "the watchdog exited: should this agent die now, its jobs' containers run on until its next start"
        );
    });
    info!(pid, "watchdog started");
    Ok(Watchdog { _pipe: pipe })
}

/// In the watchdog between fork and exec: a session of its own, the signals that would
/// take it with the agent ignored, and the inherited lock kept open across exec.
fn detach(lock_fd: RawFd) -> std::io::Result<()> {
    let check = |result: libc::c_int| {
        if result < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: system calls on this process's own session, dispositions and descriptor.
    unsafe {
        check(libc::setsid())?;
        for signal in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM] {
            if libc::signal(signal, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
        }
        check(libc::fcntl(lock_fd, libc::F_SETFD, 0))
    }
}

/// The watchdog's life: waits for the agent to exit, removes its jobs' Docker objects,
/// returns.
pub async fn watch(name: &str, work_dir: &Path) -> Result<(), esteira_executor::ExecutorError> {
    // Nothing is ever written: end of file, or an error, means the agent is gone.
    let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut tokio::io::sink()).await;
    let gone = Instant::now();
    let mut backoff = Backoff::default();
    loop {
        match orphans::remove(name, work_dir).await {
            Ok(0) => return Ok(()),
            Ok(removed) => {
                let millis = gone.elapsed().as_millis();
                warn!(
                    agent = name,
                    removed, millis, "the agent died: its jobs are stopped and removed"
                );
                return Ok(());
            }
            Err(error) if gone.elapsed() < SWEEP_DEADLINE => {
                warn!(agent = name, %error, "cannot remove the jobs of the agent that died yet; retrying");
                backoff.wait().await;
            }
            Err(error) => return Err(error),
        }
    }
}
