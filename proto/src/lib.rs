//! The `esteira.v1` protocol between the coordinator and its agents (see
//! `proto/esteira/v1/agent.proto` for what each call promises).

/// The protocol version this build speaks. Both sides refuse any other one with a
/// clear `FAILED_PRECONDITION`, at registration and at every session.
pub const PROTOCOL_VERSION: u32 = 1;

/// The metadata key holding the agent's credential (`Bearer <token>`).
pub const AUTHORIZATION: &str = "authorization";

/// The largest message either side of the protocol sends or accepts, in bytes (gRPC's
/// customary 4 MiB). The coordinator fails a job whose assignment would not fit, with the
/// reason, rather than sending what the agent cannot decode.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;

#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("esteira.v1");
}

pub use v1::*;
