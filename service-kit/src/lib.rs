//! The narrow set of things every Parley service needs.
//!
//! - [`access_token`]: the access-token format and its local verification.
//! - [`balanced_channel`]: calls to another service balanced over every address its name
//!   resolves to, with a passive health check.
//! - [`auth_layer`]: the tower layer that authenticates every non-public gRPC method.
//! - [`grpc_server`]: one way to serve gRPC: health, reflection, tracing and auth included.
//! - [`grpc_status`]: statuses with structured details (field violations, retry delays).
//! - [`database`]: connect to SQLite or PostgreSQL by URL and run that backend's migrations.
//! - [`secret_file`]: secrets generated once into the data directory, mode 0600.
//! - [`trace_context`]: W3C trace context passed from service to service (`TraceHeaders`).
//! - [`telemetry`], [`shutdown`], [`entrypoint`]: process plumbing.

pub mod access_token;
pub mod auth_layer;
pub mod balanced_channel;
pub mod database;
pub mod entrypoint;
pub mod grpc_server;
pub mod grpc_status;
pub mod secret_file;
pub mod shutdown;
pub mod telemetry;
pub mod trace_context;

pub use parley_proto::timestamp;
