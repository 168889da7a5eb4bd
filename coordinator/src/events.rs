//! Change notifications inside the coordinator: whoever waits on a pipeline, follows a log
//! or streams the UI subscribes here instead of polling the database.

use tokio::sync::broadcast;

use crate::model::{JobId, PipelineId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A job's status changed.
    Job { pipeline: PipelineId, job: JobId },
    /// A pipeline's status changed.
    Pipeline { pipeline: PipelineId },
    /// A job's log grew.
    Log { job: JobId },
}

/// The bus. A subscriber that lags behind gets `Lagged` and must re-read what it watches.
#[derive(Clone)]
pub struct Events {
    sender: broadcast::Sender<Event>,
}

impl Events {
    pub fn new() -> Events {
        let (sender, _) = broadcast::channel(4096);
        Events { sender }
    }

    pub fn publish(&self, event: Event) {
        // No subscriber is fine: nobody is watching.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}
