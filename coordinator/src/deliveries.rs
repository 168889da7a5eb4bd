//! What a Git event starts, whether a webhook delivered it or polling saw it: the
//! delivery is claimed in the store (a redelivery, or another delivery of the same event,
//! stops there), the pipeline planned and started, and the outcome recorded on the claim.
//! Nothing before the claim writes anything; a failure that may pass releases the claim so
//! that the forge's retry is processed again. A project's deliveries are processed one at
//! a time, different projects' side by side.

use esteira_pipeline::PipelineSource;
use serde::Serialize;
use tracing::{info, warn};

use std::sync::Arc;

use crate::git::Mirrors;
use crate::locks::KeyedLocks;
use crate::model::{PipelineId, ProjectId};
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::store::deliveries::{Claim, NewDelivery};
use crate::store::projects::Project;
use crate::trigger::{Trigger, TriggerError, start_pipeline};
use crate::webhooks::{EventKind, GitEvent, Parsed};

/// What processing a delivery needs: the store for the claim, the scheduler and the
/// mirrors to start the pipeline. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Deliveries {
    store: Store,
    scheduler: Arc<Scheduler>,
    mirrors: Arc<Mirrors>,
    turns: Arc<KeyedLocks<ProjectId>>,
}

/// How a delivery ended, as the forge is told: `status` is the HTTP status of the answer
/// (5xx when the forge should deliver it again).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// created | duplicate | ignored | no_pipeline | invalid | error
    pub outcome: &'static str,
    pub pipeline: Option<PipelineId>,
    pub delivery: Option<String>,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip)]
    pub status: u16,
}

impl Deliveries {
    pub fn new(store: Store, scheduler: Arc<Scheduler>, mirrors: Arc<Mirrors>) -> Deliveries {
        Deliveries {
            store,
            scheduler,
            mirrors,
            turns: Arc::default(),
        }
    }

    /// Claims the delivery and starts its pipeline. A redelivery (same delivery id) or
    /// another delivery of the same event (same project, kind, ref and commit) starts
    /// nothing. A failure that may pass (the repository cannot be fetched, the database)
    /// releases the claim and answers 5xx so the forge retries.
    pub async fn process(
        &self,
        project: &Project,
        forge: &str,
        delivery_id: Option<&str>,
        parsed: Parsed,
    ) -> Outcome {
        // One delivery of a project at a time, so that its pipelines are created in the
        // order the events came (auto-cancel stops the older ones); other projects' go on.
        let _turn = self.turns.lock(project.id).await;
        let store = &self.store;
        let (event_name, event_key, reason) = match &parsed {
            Parsed::Event(event) => (event.name().to_string(), Some(event.key()), None),
            Parsed::Ignored { event, reason } => (event.clone(), None, Some(reason.clone())),
        };
        let mut outcome = Outcome {
            outcome: "ignored",
            pipeline: None,
            delivery: delivery_id.map(str::to_string),
            event: event_name.clone(),
            reason: reason.clone(),
            status: 200,
        };
        let claim = store
            .claim_delivery(&NewDelivery {
                project_id: project.id,
                forge,
                delivery_id,
                event_key: event_key.as_deref(),
                event: &event_name,
                outcome: if event_key.is_some() {
                    "processing"
                } else {
                    "ignored"
                },
                message: reason.as_deref(),
            })
            .await;
        let claimed = match claim {
            Ok(Claim::New(row)) => row,
            Ok(Claim::Seen(earlier)) => {
                info!(project = %project.name, delivery = delivery_id.unwrap_or("-"), earlier = earlier.id, "duplicate delivery");
                outcome.outcome = "duplicate";
                outcome.pipeline = earlier.pipeline_id;
                outcome.reason = Some(format!(
                    "already received as delivery {} ({})",
                    earlier.delivery_id.as_deref().unwrap_or("-"),
                    earlier.outcome
                ));
                return outcome;
            }
            Err(error) => {
                outcome.outcome = "error";
                outcome.reason = Some(error.to_string());
                outcome.status = 500;
                return outcome;
            }
        };
        let Parsed::Event(event) = parsed else {
            info!(project = %project.name, event = %event_name, reason = reason.as_deref().unwrap_or(""), "delivery ignored");
            return outcome;
        };
        let trigger = trigger_for(project, &event, delivery_id);
        let result = start_pipeline(&self.store, &self.scheduler, &self.mirrors, trigger).await;
        let (kind, pipeline, message, status) = match result {
            Ok(id) => ("created", Some(id), None, 201),
            Err(error @ (TriggerError::NoJobs(_) | TriggerError::Invalid(_))) => {
                let kind = if matches!(error, TriggerError::NoJobs(_)) {
                    "no_pipeline"
                } else {
                    "invalid"
                };
                (kind, None, Some(error.to_string()), 200)
            }
            Err(error) => {
                warn!(project = %project.name, %error, "delivery failed; the forge may retry it");
                if let Err(release) = store.release_delivery(claimed.id).await {
                    warn!(error = %release, "releasing the delivery failed");
                }
                outcome.outcome = "error";
                outcome.reason = Some(error.to_string());
                outcome.status = if matches!(error, TriggerError::Git(_)) {
                    502
                } else {
                    500
                };
                return outcome;
            }
        };
        if let Err(error) = store
            .finish_delivery(claimed.id, kind, pipeline, message.as_deref())
            .await
        {
            warn!(%error, "recording the delivery's outcome failed");
        }
        outcome.outcome = kind;
        outcome.pipeline = pipeline;
        outcome.reason = message;
        outcome.status = status;
        outcome
    }
}

/// The pipeline request an event makes.
fn trigger_for(project: &Project, event: &GitEvent, delivery_id: Option<&str>) -> Trigger {
    let (source, diff_base) = match (&event.kind, &event.merge_request) {
        (EventKind::MergeRequest, Some((_, target))) => (
            PipelineSource::MergeRequestEvent,
            Some(format!("refs/heads/{target}")),
        ),
        _ => (PipelineSource::Push, event.before.clone()),
    };
    Trigger {
        project: project.name.clone(),
        git_ref: event.git_ref.clone(),
        sha: Some(event.sha.clone()),
        variables: Vec::new(),
        source,
        before_sha: event.before.clone(),
        diff_base,
        changed_files: event.changed_files.clone(),
        event_variables: event.variables.clone(),
        delivery: delivery_id.map(str::to_string),
    }
}
