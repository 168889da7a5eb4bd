//! The job log as the executor writes it: the job's own bytes untouched, esteira's lines
//! around them, everything masked on its way to the agent's channel.

use bytes::Bytes;
use tokio::sync::mpsc::Sender;

use crate::mask::Masker;

/// Where a job's log goes. A receiver that went away is not an error: the job still runs
/// to its end and cleans up.
pub(crate) struct LogSink {
    tx: Sender<Bytes>,
    masker: Masker,
}

impl LogSink {
    pub(crate) fn new(tx: Sender<Bytes>, masked: &[String]) -> LogSink {
        LogSink {
            tx,
            masker: Masker::new(masked),
        }
    }

    /// The job's own output, byte for byte.
    pub(crate) async fn write(&mut self, data: &[u8]) {
        let visible = self.masker.push(data);
        if !visible.is_empty() {
            // A closed channel only means nobody listens any more.
            let _ = self.tx.send(Bytes::from(visible)).await;
        }
    }

    /// A section heading of esteira's (cyan, like the runner's).
    pub(crate) async fn section(&mut self, text: &str) {
        self.write(format!("\x1b[0K\x1b[36;1m{text}\x1b[0;m\n").as_bytes())
            .await;
    }

    /// A plain note of esteira's.
    pub(crate) async fn note(&mut self, text: &str) {
        self.write(format!("\x1b[0K{text}\x1b[0;m\n").as_bytes())
            .await;
    }

    /// A warning of esteira's (yellow).
    pub(crate) async fn warning(&mut self, text: &str) {
        self.write(format!("\x1b[0K\x1b[0;33mWARNING: {text}\x1b[0;m\n").as_bytes())
            .await;
    }

    /// An error line of esteira's (red), e.g. `ERROR: Job failed: exit code 3`.
    pub(crate) async fn error(&mut self, text: &str) {
        self.write(format!("\x1b[0K\x1b[31;1mERROR: {text}\x1b[0;m\n").as_bytes())
            .await;
    }

    /// A success line of esteira's (green).
    pub(crate) async fn success(&mut self, text: &str) {
        self.write(format!("\x1b[0K\x1b[32;1m{text}\x1b[0;m\n").as_bytes())
            .await;
    }

    /// Sends what the masker still holds back; the log is complete after this.
    pub(crate) async fn finish(mut self) {
        let rest = self.masker.finish();
        if !rest.is_empty() {
            let _ = self.tx.send(Bytes::from(rest)).await;
        }
    }
}
