//! The gateway's own `grpc.health.v1`: each routed service is SERVING while its upstream says
//! it is, and the gateway as a whole (`""`) while every upstream is.

use std::future::Future;
use std::time::Duration;

use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::server::HealthReporter;

use crate::upstream_proxy::Upstream;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// While an upstream is not serving it is checked again soon, then less and less often up to
/// the interval, so the gateway reports SERVING moments after a stack has started.
const FIRST_RETRY: Duration = Duration::from_millis(50);

pub(crate) struct UpstreamHealth {
    reporter: HealthReporter,
    upstreams: Vec<(Upstream, Vec<String>)>,
}

impl UpstreamHealth {
    pub(crate) fn new(reporter: HealthReporter, upstreams: Vec<(Upstream, Vec<String>)>) -> Self {
        Self { reporter, upstreams }
    }

    pub(crate) async fn mark_all_not_serving(&self) {
        self.reporter.set_service_status("", ServingStatus::NotServing).await;
        for (_, services) in &self.upstreams {
            for service in services {
                self.reporter
                    .set_service_status(service, ServingStatus::NotServing)
                    .await;
            }
        }
    }

    /// Checks every `interval` (sooner while an upstream is not serving) until `shutdown`, then
    /// reports NOT_SERVING.
    pub(crate) async fn run(self, interval: Duration, shutdown: impl Future<Output = ()>) {
        let checks = async {
            let mut retry = FIRST_RETRY;
            loop {
                let wait = if self.check_once().await {
                    retry = FIRST_RETRY;
                    interval
                } else {
                    let wait = retry.min(interval);
                    retry = retry.saturating_mul(2);
                    wait
                };
                tokio::time::sleep(wait).await;
            }
        };
        tokio::select! {
            () = checks => {}
            () = shutdown => {}
        }
        self.mark_all_not_serving().await;
    }

    /// Whether every upstream is serving.
    async fn check_once(&self) -> bool {
        let mut all_serving = true;
        for (upstream, services) in &self.upstreams {
            let mut client = HealthClient::new(upstream.channel());
            for service in services {
                let request = HealthCheckRequest {
                    service: service.clone(),
                };
                let serving = matches!(
                    tokio::time::timeout(CHECK_TIMEOUT, client.check(request)).await,
                    Ok(Ok(response)) if response.get_ref().status == WireStatus::Serving as i32
                );
                all_serving &= serving;
                let status = if serving {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                self.reporter.set_service_status(service, status).await;
            }
        }
        let overall = if all_serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", overall).await;
        all_serving
    }
}
