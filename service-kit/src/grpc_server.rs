//! The one way a Parley service serves gRPC: its services plus `grpc.health.v1` and server
//! reflection (only the services added here, and only the schemas they use), behind a tracing
//! layer and the auth layer, with graceful shutdown that reports NOT_SERVING and lets open
//! streams finish up to a deadline.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use futures::FutureExt;
use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use tokio::net::TcpListener;
use tonic::Code;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower_http::classify::GrpcFailureClass;

use crate::auth_layer::AuthLayer;

/// How long open calls (streams, mostly) may run on after shutdown was asked for.
pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("reflection: the descriptor set does not decode: {0}")]
    Descriptors(#[from] prost::DecodeError),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

pub struct GrpcServer {
    routes: tonic::service::RoutesBuilder,
    service_names: Vec<&'static str>,
    auth: AuthLayer,
    drain_deadline: Duration,
    health: HealthReporter,
}

impl GrpcServer {
    pub fn new(auth: AuthLayer) -> Self {
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = tonic::service::RoutesBuilder::default();
        routes.add_service(health_service);
        Self {
            routes,
            service_names: Vec::new(),
            auth,
            drain_deadline: DEFAULT_DRAIN_DEADLINE,
            health,
        }
    }

    /// Adds a service; it is reported SERVING by health and listed by reflection.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.service_names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    pub fn drain_deadline(mut self, deadline: Duration) -> Self {
        self.drain_deadline = deadline;
        self
    }

    /// The health reporter, for services whose health depends on something else.
    pub fn health_reporter(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves on an already-bound listener until `shutdown` resolves, then drains open calls
    /// for up to the drain deadline.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let files = FileDescriptorSet::decode(parley_proto::FILE_DESCRIPTOR_SET)?.file;
        // Only what the services served here use: user-service must not describe the internal
        // parley.llm.v1 schemas to anyone who asks.
        let described = FileDescriptorSet {
            file: files_for_services(&files, &self.service_names),
        };
        let reflection = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_file_descriptor_set(described.clone())
                .with_service_name("grpc.health.v1.Health");
            for name in &self.service_names {
                builder = builder.with_service_name(*name);
            }
            builder
        };
        // v1 and the older v1alpha, which grpcurl before 1.9 and many other tools still speak.
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;
        for name in &self.service_names {
            self.health.set_service_status(*name, ServingStatus::Serving).await;
        }

        let mut routes = self.routes;
        routes.add_service(reflection_v1);
        routes.add_service(reflection_v1alpha);

        let layers = tower::ServiceBuilder::new()
            .layer(
                tower_http::trace::TraceLayer::new_for_grpc()
                    .make_span_with(|request: &http::Request<_>| {
                        tracing::info_span!(
                            "grpc",
                            method = %request.uri().path(),
                            trace_id = crate::trace_context::trace_id_of(request.headers()),
                            user_id = tracing::field::Empty
                        )
                    })
                    .on_failure(log_failure),
            )
            .layer(self.auth)
            .into_inner();

        let shutdown = shutdown.boxed().shared();
        let health = self.health.clone();
        let names = self.service_names.clone();
        let stop_accepting = {
            let shutdown = shutdown.clone();
            async move {
                shutdown.await;
                // "" is the whole server, what Kubernetes' gRPC probes ask about.
                health.set_service_status("", ServingStatus::NotServing).await;
                for name in names {
                    health.set_service_status(name, ServingStatus::NotServing).await;
                }
            }
        };
        let server = tonic::transport::Server::builder()
            .layer(layers)
            .add_routes(routes.routes())
            // TCP_NODELAY: tonic sets it only on listeners it binds itself; without it Nagle and
            // delayed ACKs hold each streamed message back ~40 ms.
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                stop_accepting,
            );
        let deadline = self.drain_deadline;
        tokio::select! {
            result = server => result?,
            () = async move { shutdown.await; tokio::time::sleep(deadline).await } => {
                tracing::warn!(?deadline, "drain deadline passed; closing the calls still open");
            }
        }
        Ok(())
    }
}

/// The files that define `services`, with every file they import (directly or not), in
/// dependency order.
fn files_for_services(files: &[FileDescriptorProto], services: &[&str]) -> Vec<FileDescriptorProto> {
    let by_name: std::collections::HashMap<&str, &FileDescriptorProto> = files.iter().map(|f| (f.name(), f)).collect();
    let defines = |file: &FileDescriptorProto, service: &str| {
        file.service
            .iter()
            .any(|s| format!("{}.{}", file.package(), s.name()) == service)
    };
    let mut chosen: Vec<FileDescriptorProto> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    fn visit<'a>(
        file: &'a FileDescriptorProto,
        by_name: &std::collections::HashMap<&str, &'a FileDescriptorProto>,
        seen: &mut std::collections::HashSet<&'a str>,
        chosen: &mut Vec<FileDescriptorProto>,
    ) {
        if !seen.insert(file.name()) {
            return;
        }
        for dependency in &file.dependency {
            if let Some(dependency) = by_name.get(dependency.as_str()) {
                visit(dependency, by_name, seen, chosen);
            }
        }
        chosen.push(file.clone());
    }
    for file in files.iter().filter(|f| services.iter().any(|s| defines(f, s))) {
        visit(file, &by_name, &mut seen, &mut chosen);
    }
    chosen
}

/// Whether a status means the caller asked for something wrong or not allowed (logged quietly)
/// rather than that the server failed (logged as an error).
fn is_client_error(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::ResourceExhausted
            | Code::Cancelled
            | Code::OutOfRange
            | Code::Aborted
    )
}

/// A wrong password is an answer, not a failure: only server failures are logged as errors.
fn log_failure(failure: GrpcFailureClass, latency: Duration, _span: &tracing::Span) {
    let latency_ms = latency.as_millis() as u64;
    match failure {
        GrpcFailureClass::Code(code) => {
            let code = Code::from(code.get());
            if is_client_error(code) {
                tracing::debug!(?code, latency_ms, "call refused");
            } else {
                tracing::error!(?code, latency_ms, "call failed");
            }
        }
        GrpcFailureClass::Error(error) => tracing::error!(%error, latency_ms, "call failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parley_files() -> Vec<FileDescriptorProto> {
        FileDescriptorSet::decode(parley_proto::FILE_DESCRIPTOR_SET)
            .unwrap_or_else(|e| panic!("{e}"))
            .file
    }

    fn names(files: &[FileDescriptorProto]) -> Vec<&str> {
        files.iter().map(|f| f.name()).collect()
    }

    #[test]
    fn reflection_describes_only_the_files_the_services_need() {
        let files = parley_files();
        let user = files_for_services(&files, &["parley.user.v1.UserService"]);
        let user_names = names(&user);
        assert!(user_names.contains(&"parley/user/v1/user.proto"), "{user_names:?}");
        assert!(
            user_names.contains(&"google/protobuf/timestamp.proto"),
            "{user_names:?}"
        );
        assert!(
            user_names
                .iter()
                .all(|n| !n.starts_with("parley/llm/") && !n.starts_with("parley/chat/")),
            "{user_names:?}"
        );
        // Imports come before the files that use them.
        let position = |name: &str| user_names.iter().position(|n| *n == name);
        assert!(position("google/protobuf/timestamp.proto") < position("parley/user/v1/user.proto"));

        let nothing = files_for_services(&files, &["no.such.Service"]);
        assert!(nothing.is_empty());
    }

    #[test]
    fn only_caller_mistakes_count_as_client_errors() {
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::Unauthenticated,
            Code::ResourceExhausted,
        ] {
            assert!(is_client_error(code), "{code:?}");
        }
        for code in [
            Code::Internal,
            Code::Unknown,
            Code::Unavailable,
            Code::DataLoss,
            Code::DeadlineExceeded,
        ] {
            assert!(!is_client_error(code), "{code:?}");
        }
    }
}
