//! The coordinator's Prometheus metrics, served at `/metrics` ([`crate::api`]).
//!
//! One [`Registry`] ([`Metrics`]) with two kinds of series:
//!
//! - **events**, counted where they happen: jobs leased and finished (by result), their
//!   queue wait and duration, lost leases ([`SchedulerMetrics`], the handle the scheduler
//!   is given in its config), HTTP requests by route and status ([`Metrics::http_layer`]),
//!   gRPC calls by method and code ([`grpc_layer`](crate::grpc::metrics_layer)), webhook
//!   deliveries by forge and outcome, database errors;
//! - **state**, read at each scrape ([`Metrics::render`]): jobs by status (the store's
//!   `job_counts`), pending jobs and the oldest one's wait per required tag set (the
//!   queue that autoscalers follow), connected agents, agents by state.
//!
//! The `prometheus-client` crate does the encoding (OpenMetrics text, which Prometheus
//! reads), so names, escaping and the histogram layout are not ours to get wrong.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::model::JobStatus;
use crate::store::jobs::Job;

/// Store errors anywhere in the coordinator. A process-wide counter because the errors
/// are met in conversions (`From<StoreError>`) that have no state to reach a registry by.
pub static DATABASE_ERRORS: LazyLock<Counter> = LazyLock::new(Counter::default);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TagsLabel {
    /// The required tags, sorted and comma-separated; empty: any agent.
    tags: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    /// The route as declared (`/api/v1/jobs/{id}`), so ids do not make new series.
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GrpcLabels {
    pub method: String,
    pub code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    forge: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Seconds, from 50 ms to about 7 hours: queue waits and job durations alike.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.5, 14))
}

/// What the scheduler counts as it decides: given to it in its config, cheap to clone
/// (every series is shared), recording into the registry it was registered with.
#[derive(Debug, Clone)]
pub struct SchedulerMetrics {
    /// Jobs handed to an agent.
    pub jobs_leased: Counter,
    jobs_finished: Family<ResultLabel, Counter>,
    queue_wait: Histogram,
    job_duration: Histogram,
    /// Running jobs whose agent stopped renewing its lease.
    pub leases_expired: Counter,
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        SchedulerMetrics {
            jobs_leased: Counter::default(),
            jobs_finished: Family::default(),
            queue_wait: seconds_histogram(),
            job_duration: seconds_histogram(),
            leases_expired: Counter::default(),
        }
    }
}

impl SchedulerMetrics {
    /// A job ended as `status`: counted by result, and its times observed from the stored
    /// row. The queue wait runs from queued to started (the agent's first report, right
    /// after the lease), so a job lost before it started adds no wait; the wait of jobs
    /// still pending is `esteira_queue_oldest_pending_seconds`.
    pub fn job_ended(&self, job: &Job, status: JobStatus) {
        self.jobs_finished
            .get_or_create(&ResultLabel {
                result: status.to_string(),
            })
            .inc();
        let seconds = |from: i64, to: i64| (to - from).max(0) as f64 / 1000.0;
        if let (Some(queued), Some(started)) = (job.queued_at, job.started_at) {
            self.queue_wait.observe(seconds(queued, started));
        }
        if let Some(started) = job.started_at {
            let finished = job.finished_at.unwrap_or_else(crate::model::now_ms);
            self.job_duration.observe(seconds(started, finished));
        }
    }
}

/// The registry and the series the coordinator fills.
pub struct Metrics {
    registry: Registry,
    /// The scheduler's share, the same series its config holds.
    scheduler: SchedulerMetrics,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histogram,
    pub(crate) grpc_calls: Family<GrpcLabels, Counter>,
    webhook_deliveries: Family<WebhookLabels, Counter>,
    jobs: Family<StatusLabel, Gauge>,
    pending: Family<TagsLabel, Gauge>,
    oldest_pending: Family<TagsLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    agents_connected: Gauge,
    agents: Family<StateLabel, Gauge>,
}

/// What a scrape reads from the store and the scheduler.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub job_counts: Vec<(String, i64)>,
    /// Per required tag set (sorted): pending jobs and the oldest one's wait.
    pub queue: Vec<(Vec<String>, u64, Duration)>,
    pub agents_connected: usize,
    /// The state of every known agent (`idle`, `busy`, `paused`, …).
    pub agent_states: Vec<&'static str>,
}

impl Metrics {
    /// A registry holding `scheduler`'s series (those the scheduler was given) and the
    /// coordinator's others.
    pub fn new(scheduler: SchedulerMetrics) -> Metrics {
        let metrics = Metrics {
            registry: Registry::with_prefix("esteira"),
            scheduler,
            http_requests: Family::default(),
            http_duration: Histogram::new(exponential_buckets(0.001, 2.5, 12)),
            grpc_calls: Family::default(),
            webhook_deliveries: Family::default(),
            jobs: Family::default(),
            pending: Family::default(),
            oldest_pending: Family::default(),
            agents_connected: Gauge::default(),
            agents: Family::default(),
        };
        metrics.registered()
    }

    fn registered(mut self) -> Metrics {
        let r = &mut self.registry;
        let s = &self.scheduler;
        r.register(
            "jobs_leased",
            "Jobs handed to an agent",
            s.jobs_leased.clone(),
        );
        r.register(
            "jobs_finished",
            "Jobs ended, by result",
            s.jobs_finished.clone(),
        );
        r.register(
            "job_queue_wait_seconds",
            "From queued to started, observed as each job ends",
            s.queue_wait.clone(),
        );
        r.register(
            "job_duration_seconds",
            "From started to ended",
            s.job_duration.clone(),
        );
        r.register(
            "leases_expired",
            "Running jobs whose agent stopped renewing the lease (lost agents)",
            s.leases_expired.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests by route and status",
            self.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            self.http_duration.clone(),
        );
        r.register(
            "grpc_calls",
            "Agents' gRPC calls by method and code",
            self.grpc_calls.clone(),
        );
        r.register(
            "webhook_deliveries",
            "Forge webhook deliveries by forge and outcome",
            self.webhook_deliveries.clone(),
        );
        r.register(
            "database_errors",
            "Failed database operations",
            DATABASE_ERRORS.clone(),
        );
        r.register(
            "jobs",
            "Jobs by status (latest attempts)",
            self.jobs.clone(),
        );
        r.register(
            "queue_pending_jobs",
            "Pending jobs by required tag set",
            self.pending.clone(),
        );
        r.register(
            "queue_oldest_pending_seconds",
            "How long the oldest pending job of a tag set has waited",
            self.oldest_pending.clone(),
        );
        r.register(
            "agents_connected",
            "Agents with an open session",
            self.agents_connected.clone(),
        );
        r.register("agents", "Known agents by state", self.agents.clone());
        r.register(
            "build",
            "The coordinator's version",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            }),
        );
        self
    }

    /// Counts a webhook delivery's outcome (`created`, `duplicate`, `ignored`, …).
    pub fn webhook_delivered(&self, forge: &str, outcome: &str) {
        self.webhook_deliveries
            .get_or_create(&WebhookLabels {
                forge: forge.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The exposition, with the state series set from `snapshot`.
    pub fn render(&self, snapshot: Snapshot) -> String {
        self.jobs.clear();
        for (status, count) in snapshot.job_counts {
            self.jobs.get_or_create(&StatusLabel { status }).set(count);
        }
        self.pending.clear();
        self.oldest_pending.clear();
        for (tags, pending, oldest) in snapshot.queue {
            let label = TagsLabel {
                tags: tags.join(","),
            };
            self.pending
                .get_or_create(&label)
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
            self.oldest_pending
                .get_or_create(&label)
                .set(oldest.as_secs_f64());
        }
        self.agents_connected
            .set(i64::try_from(snapshot.agents_connected).unwrap_or(i64::MAX));
        self.agents.clear();
        for state in snapshot.agent_states {
            self.agents
                .get_or_create(&StateLabel {
                    state: state.to_string(),
                })
                .inc();
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Middleware counting each HTTP request by its matched route and answer status.
    pub async fn http_layer(
        axum::extract::State(metrics): axum::extract::State<Arc<Metrics>>,
        request: Request,
        next: Next,
    ) -> Response {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
        let started = Instant::now();
        let response = next.run(request).await;
        metrics
            .http_duration
            .observe(started.elapsed().as_secs_f64());
        metrics
            .http_requests
            .get_or_create(&HttpLabels {
                route,
                status: response.status().as_u16(),
            })
            .inc();
        response
    }
}
