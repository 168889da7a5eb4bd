//! The connection to the coordinator: one lazily (re)connecting channel, TLS when the URL
//! is `https`, and the agent's credential on every call.

use std::path::PathBuf;
use std::time::Duration;

use esteira_proto::v1::agent_service_client::AgentServiceClient;
use esteira_proto::{AUTHORIZATION, MAX_MESSAGE_BYTES};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid coordinator URL '{url}': {source}")]
    Url {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("cannot read the CA certificate {path}: {source}")]
    Ca {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS setup failed: {0}")]
    Tls(tonic::transport::Error),
    #[error("the agent credential is not valid metadata")]
    Credential,
}

/// Adds `authorization: Bearer <credential>` to each request.
#[derive(Clone)]
pub struct Credential(MetadataValue<Ascii>);

impl Interceptor for Credential {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert(AUTHORIZATION, self.0.clone());
        Ok(request)
    }
}

pub type Client = AgentServiceClient<InterceptedService<Channel, Credential>>;

/// A channel to the coordinator; it connects on first use and again after failures.
pub fn channel(url: &str, ca_cert: Option<&PathBuf>) -> Result<Channel, ClientError> {
    let url_error = |source| ClientError::Url {
        url: url.to_string(),
        source,
    };
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(url_error)?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path).map_err(|source| ClientError::Ca {
                path: path.clone(),
                source,
            })?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls).map_err(ClientError::Tls)?;
    }
    Ok(endpoint.connect_lazy())
}

/// A client that presents `token`, within the protocol's message size both ways.
pub fn authenticated(channel: Channel, token: &str) -> Result<Client, ClientError> {
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| ClientError::Credential)?;
    Ok(
        AgentServiceClient::with_interceptor(channel, Credential(value))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
}
