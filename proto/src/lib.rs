//! The `esteira.v1` protocol between the coordinator and its agents (see
//! `proto/esteira/v1/agent.proto` for what each call promises).

/// The protocol version this build speaks. Both sides refuse any other one with a
/// clear `FAILED_PRECONDITION`, at registration and at every session.
pub const PROTOCOL_VERSION: u32 = 1;

/// The metadata key holding the agent's credential (`Bearer <token>`).
pub const AUTHORIZATION: &str = "authorization";

#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("esteira.v1");
}

pub use v1::*;
