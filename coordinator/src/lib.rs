//! esteira's coordinator: it receives pipeline requests, keeps each pipeline's stage graph,
//! leases jobs to agents over gRPC and stores their logs and results.
//!
//! # Layout
//! - [`config`]: flags and environment, into a plain [`Config`].
//! - [`artifacts`]: jobs' artifact archives in the data dir; [`expiry`]: their deletion
//!   once `expire_in` has passed.
//! - [`model`]: ids and statuses; the job state machine is documented there.
//! - [`coverage`]: coverage figures read from job logs.
//! - [`store`]: the durable state, one trait per concern; SQLite through sqlx in
//!   [`store::sqlite`].
//! - [`scheduler`]: every decision about jobs, under one lock.
//! - [`trigger`]: from a ref to a planned, stored, started pipeline (with [`git`]).
//! - [`grpc`]: the agents' service. [`api`]: the HTTP side (REST API, webhooks, health,
//!   metrics, server-sent events), one file per resource, with the shared state, errors
//!   and tokens in its `mod.rs`.
//! - [`projects`]: what a project's name and settings must be. [`project_variables`]:
//!   what a project variable must be, sealed for the store. [`environments`]:
//!   environments, their deployments and rollback. [`resource_groups`]: whose turn it
//!   is in a resource group. [`agent_status`]: what an agent is doing. [`queue`]: the
//!   pending jobs per required tag set.
//! - [`metrics`]: the Prometheus registry behind `/metrics`, and the scheduler's handle
//!   to it.
//! - [`events`]: in-process change notifications for waiters and followers.
//! - [`variables`]: GitLab's predefined variables and their expansion.
//! - [`tokens`]: generated secrets, their hashes, the token files.
//! - [`locks`]: one turn at a time per key (a project's deliveries, a mirror's fetches).
//! - [`secrets`]: encryption at rest of stored secrets.
//! - [`ui`]: the web UI, embedded, and the badges.
//! - [`webhooks`]: Git events from forges, read and authenticated. [`poll`]: the same
//!   for projects without webhooks. [`deliveries`]: what an event starts, for both.
//!   [`statuses`]: commit statuses back to the forge.

pub mod agent_status;
pub mod api;
pub mod artifacts;
pub mod config;
pub mod coverage;
pub mod deliveries;
pub mod environments;
pub mod events;
pub mod expiry;
pub mod git;
pub mod grpc;
pub mod locks;
pub mod memo;
pub mod metrics;
pub mod model;
pub mod poll;
pub mod project_variables;
pub mod projects;
pub mod queue;
pub mod resource_groups;
pub mod scheduler;
pub mod secrets;
pub mod statuses;
pub mod store;
pub mod tokens;
pub mod trigger;
pub mod ui;
pub mod variables;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use esteira_proto::MAX_MESSAGE_BYTES;
use esteira_proto::v1::agent_service_server::AgentServiceServer;
use tokio::net::TcpListener;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tracing::{info, warn};

pub use config::Config;

use crate::api::ApiState;
use crate::artifacts::ArtifactStore;
use crate::events::Events;
use crate::git::Mirrors;
use crate::grpc::{AgentApi, CallCounter};
use crate::metrics::SchedulerMetrics;
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::secrets::SecretBox;
use crate::store::Store;

/// Runs the coordinator until `shutdown` resolves.
pub async fn run(
    mut config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
    config.data_dir = std::path::absolute(&config.data_dir)?;
    if config.tls.is_none() && !config.grpc.ip().is_loopback() && !config.insecure_plaintext {
        anyhow::bail!(
            "refusing plain-text gRPC on {}: give --tls-cert and --tls-key, or --insecure-plaintext",
            config.grpc
        );
    }
    let (registration_token, created) = tokens::load_or_create(
        config.registration_token.clone(),
        &config.data_dir.join("registration-token"),
    )?;
    if created {
        info!(file = %config.data_dir.join("registration-token").display(), "registration token created");
    }
    let (admin_token, created) = tokens::load_or_create(
        config.admin_token.clone(),
        &config.data_dir.join("admin-token"),
    )?;
    if created {
        info!(file = %config.data_dir.join("admin-token").display(), "admin token created");
    }
    let database_url = config.database_url.clone().unwrap_or_else(|| {
        config
            .data_dir
            .join("esteira.db")
            .to_string_lossy()
            .into_owned()
    });

    let secrets = SecretBox::load_or_create(&config.data_dir.join("secret-key"))?;
    let store = Store::open(&database_url, Some(secrets.clone()))
        .await
        .with_context(|| format!("cannot open the database {database_url}"))?;
    let sealed = store.seal_clear_project_secrets().await?;
    if sealed > 0 {
        info!(
            projects = sealed,
            "project secrets stored in clear are now sealed"
        );
    }
    let http_listener = TcpListener::bind(config.http)
        .await
        .with_context(|| format!("cannot listen on {}", config.http))?;
    let grpc_listener = TcpListener::bind(config.grpc)
        .await
        .with_context(|| format!("cannot listen on {}", config.grpc))?;
    let http_address = http_listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{http_address}"));
    let events = Events::new();
    let scheduler_config = SchedulerConfig {
        lease_timeout: config.lease_timeout,
        log_limit: config.log_limit,
        server_url: public_url.trim_end_matches('/').to_string(),
        artifacts: ArtifactStore::new(config.data_dir.join("artifacts"), config.artifacts_limit),
        max_assignment_bytes: MAX_MESSAGE_BYTES,
        metrics: SchedulerMetrics::default(),
    };
    let scheduler = Scheduler::new(
        store.clone(),
        secrets.clone(),
        events.clone(),
        scheduler_config.clone(),
    );
    scheduler.recover().await?;

    let expiry = scheduler.clone();
    let period = (config.lease_timeout / 4).min(std::time::Duration::from_secs(1));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            ticks.tick().await;
            if let Err(error) = expiry.expire_leases().await {
                warn!(%error, "checking leases failed");
            }
        }
    });

    let mirrors = Arc::new(Mirrors::new(config.data_dir.join("repos")));
    let state = ApiState::new(
        store.clone(),
        scheduler.clone(),
        events,
        secrets,
        &scheduler_config,
        mirrors.clone(),
        admin_token,
    );
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut grpc_builder = Server::builder();
    if let Some((cert, key)) = &config.tls {
        let identity = Identity::from_pem(std::fs::read(cert)?, std::fs::read(key)?);
        grpc_builder = grpc_builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    let mut grpc_stop = stop.subscribe();
    let grpc = grpc_builder
        .layer(CallCounter(state.metrics.clone()))
        .add_service(
            AgentServiceServer::new(AgentApi::new(
                scheduler.clone(),
                store.clone(),
                registration_token,
            ))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
            async move {
                let _ = grpc_stop.recv().await;
            },
        );
    statuses::spawn(
        store.clone(),
        scheduler.events(),
        &scheduler.config().server_url,
        statuses::Retry::default(),
    );
    expiry::spawn(
        store.clone(),
        scheduler.config().artifacts.clone(),
        config.artifacts_sweep_interval,
    );
    poll::spawn(poll::Poller {
        store,
        mirrors,
        deliveries: state.deliveries.clone(),
    });
    let app = api::router(state, config.read_token_required);
    let http_stop = stop.subscribe();
    let http = serve_http(http_listener, app, config.tls.clone(), http_stop);
    info!(http = %http_address, grpc = %config.grpc, data_dir = %config.data_dir.display(), "coordinator ready");
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(());
    });
    let (grpc_result, http_result) = tokio::join!(grpc, http);
    grpc_result.context("gRPC server failed")?;
    http_result.context("HTTP server failed")?;
    Ok(())
}

/// Serves the HTTP side, over TLS when a certificate and key are given.
async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    mut stop: tokio::sync::broadcast::Receiver<()>,
) -> std::io::Result<()> {
    let Some((cert, key)) = tls else {
        return axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.recv().await;
            })
            .await;
    };
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = stop.recv().await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .serve(app.into_make_service())
        .await
}
