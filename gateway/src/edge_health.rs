//! `grpc.health.v1.Health` as the edge serves it: Check as usual, and Watch answered with the
//! current status once, then ended. A Watch that never ends is a stream anyone may hold open
//! without an account; clients that watch (load balancers, grpc-health-probe --watch) get a
//! correct first answer and reconnect when they want another.

use futures::stream::BoxStream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService};

pub(crate) struct EdgeHealth {
    statuses: HealthService,
}

/// The service reporting what `reporter` is told.
pub(crate) fn edge_health_server(reporter: &HealthReporter) -> HealthServer<EdgeHealth> {
    HealthServer::new(EdgeHealth {
        statuses: HealthService::from_health_reporter(reporter.clone()),
    })
}

#[tonic::async_trait]
impl Health for EdgeHealth {
    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        self.statuses.check(request).await
    }

    type WatchStream = BoxStream<'static, Result<HealthCheckResponse, Status>>;

    async fn watch(&self, request: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let current = self.statuses.check(request).await?.into_inner();
        let once: Self::WatchStream = Box::pin(futures::stream::iter([Ok(current)]));
        Ok(Response::new(once))
    }
}
