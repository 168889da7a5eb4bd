//! The job's network and its service containers.

use bollard::Docker;
use bollard::models::NetworkCreateRequest;

use crate::container::{ContainerError, job_labels};

/// Creates the job's own bridge network.
pub(crate) async fn create_network(
    docker: &Docker,
    name: &str,
    job_id: i64,
) -> Result<(), ContainerError> {
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".to_string()),
        labels: Some(job_labels(job_id)),
        ..Default::default()
    };
    docker
        .create_network(request)
        .await
        .map_err(|source| ContainerError::Docker {
            action: format!("cannot create network {name}"),
            source,
        })?;
    Ok(())
}
