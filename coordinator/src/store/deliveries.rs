//! Deliveries: each Git event esteira acted on (a webhook delivery that passed its
//! signature check, or a ref update seen by polling), claimed before anything else so that
//! a redelivery, or a second delivery of the same event, starts no second pipeline.
//! Also the refs a polled project had at its last poll.

use serde::Serialize;

use async_trait::async_trait;

use super::StoreError;
use crate::model::{PipelineId, ProjectId};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub project_id: ProjectId,
    pub forge: String,
    pub delivery_id: Option<String>,
    pub event_key: Option<String>,
    pub event: String,
    pub outcome: String,
    pub pipeline_id: Option<PipelineId>,
    pub message: Option<String>,
    pub received_at: i64,
}

/// A delivery about to be claimed.
pub struct NewDelivery<'a> {
    pub project_id: ProjectId,
    pub forge: &'a str,
    pub delivery_id: Option<&'a str>,
    pub event_key: Option<&'a str>,
    pub event: &'a str,
    pub outcome: &'a str,
    pub message: Option<&'a str>,
}

/// What claiming a delivery found.
pub enum Claim {
    /// The delivery is new: its row.
    New(Delivery),
    /// The same delivery, or the same event, was seen before: the earlier row.
    Seen(Delivery),
}

/// Webhook deliveries claimed once, and the refs polling has seen.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Records a delivery unless its delivery id or event key is already known.
    async fn claim_delivery(&self, new: &NewDelivery<'_>) -> Result<Claim, StoreError>;

    /// Records how a claimed delivery ended.
    async fn finish_delivery(
        &self,
        id: i64,
        outcome: &str,
        pipeline: Option<PipelineId>,
        message: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Forgets a claim whose processing failed for a passing reason, so that the forge's
    /// retry of the delivery is processed again.
    async fn release_delivery(&self, id: i64) -> Result<(), StoreError>;

    async fn delivery(&self, id: i64) -> Result<Option<Delivery>, StoreError>;

    /// The project's latest deliveries, newest first.
    async fn deliveries(&self, project: ProjectId, limit: i64)
    -> Result<Vec<Delivery>, StoreError>;

    /// The refs (`refs/heads/x`, `refs/tags/y`) and commits seen at the last poll.
    async fn polled_refs(&self, project: ProjectId) -> Result<Vec<(String, String)>, StoreError>;

    /// Replaces the refs seen at the last poll.
    async fn set_polled_refs(
        &self,
        project: ProjectId,
        refs: &[(String, String)],
    ) -> Result<(), StoreError>;
}
