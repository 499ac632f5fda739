//! The one way a Parley service serves gRPC: its services plus `grpc.health.v1` and server
//! reflection (listing only the services added here), behind a tracing layer and the auth
//! layer, with graceful shutdown that lets open streams finish up to a deadline.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use futures::FutureExt;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::auth_layer::AuthLayer;

/// How long open calls (streams, mostly) may run on after shutdown was asked for.
pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

pub struct GrpcServer {
    routes: tonic::service::RoutesBuilder,
    service_names: Vec<&'static str>,
    descriptor_sets: Vec<&'static [u8]>,
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
            descriptor_sets: vec![parley_proto::FILE_DESCRIPTOR_SET],
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
        let mut reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for set in &self.descriptor_sets {
            reflection = reflection.register_encoded_file_descriptor_set(set);
        }
        for name in &self.service_names {
            reflection = reflection.with_service_name(*name);
            self.health.set_service_status(*name, ServingStatus::Serving).await;
        }
        let reflection_v1 = reflection.build_v1()?;

        let mut routes = self.routes;
        routes.add_service(reflection_v1);

        let layers = tower::ServiceBuilder::new()
            .layer(
                tower_http::trace::TraceLayer::new_for_grpc().make_span_with(|request: &http::Request<_>| {
                    tracing::info_span!(
                        "grpc",
                        method = %request.uri().path(),
                        trace_id = crate::trace_context::trace_id_of(request.headers()),
                        user_id = tracing::field::Empty
                    )
                }),
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
