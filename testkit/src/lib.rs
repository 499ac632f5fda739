//! Test support shared by every Parley crate. Not shipped.
//!
//! - [`test_database`]: a database URL per test: a SQLite file in a temp dir, or a fresh
//!   PostgreSQL database when `PARLEY_TEST_POSTGRES_URL` is set.
//! - [`fake_openai`]: a fake OpenAI-compatible provider on 127.0.0.1 (also the `fake-openai`
//!   binary).
//! - [`grpc_web`]: a gRPC-web client (binary and text mode, HTTP/1.1 and HTTP/2), as a browser calls the
//!   gateway.
//! - [`captured_logs`]: the tracing output of a test, to assert secrets never reach the logs.
//! - [`wait`]: bounded waiting: until a server listens, until a condition holds.
//! - [`deploy_env`]: the environment the deployment files set per service, to check each
//!   binary reads all of it.

// Test support, never shipped: failing a test loudly is what these functions are for.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod captured_logs;
pub mod deploy_env;
pub mod fake_openai;
pub mod grpc_web;
pub mod test_database;
pub mod wait;
