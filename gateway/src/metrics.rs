//! Prometheus metrics of the edge: calls by method and code, their latency, calls in flight and
//! open connections; served as text at `/metrics` on a port of its own (`--metrics-listen`),
//! away from the public one.
//!
//! Method labels are only the methods the gateway serves; any other path counts as `other`, so
//! a client making up paths cannot grow the label set without bound.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http::{HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

type Labels = Vec<(&'static str, String)>;

const OTHER_METHOD: &str = "other";

pub(crate) struct EdgeMetrics {
    registry: Registry,
    known_methods: HashSet<String>,
    calls: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    connections: Gauge,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl EdgeMetrics {
    pub(crate) fn new(known_methods: HashSet<String>) -> Arc<Self> {
        let mut registry = Registry::with_prefix("parley_gateway");
        let calls = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let in_flight = Gauge::default();
        let connections = Gauge::default();
        registry.register("calls", "Calls that ended, by method and gRPC code", calls.clone());
        registry.register(
            "call_duration_seconds",
            "Call duration from request headers to the end of the response, by method",
            latency.clone(),
        );
        registry.register(
            "calls_in_flight",
            "Calls open now (streams included)",
            in_flight.clone(),
        );
        registry.register("connections", "Client connections open now", connections.clone());
        Arc::new(Self {
            registry,
            known_methods,
            calls,
            latency,
            in_flight,
            connections,
        })
    }

    fn method_label(&self, path: &str) -> String {
        if self.known_methods.contains(path) {
            path.to_string()
        } else {
            OTHER_METHOD.to_string()
        }
    }

    /// Counts a call as in flight until the guard is dropped, when it is counted as ended
    /// with the code [`CallGuard::end`] gave (CANCELLED if none: the client went away).
    pub(crate) fn call_started(self: &Arc<Self>, path: &str) -> CallGuard {
        self.in_flight.inc();
        CallGuard {
            metrics: Arc::clone(self),
            method: self.method_label(path),
            started: std::time::Instant::now(),
            code: None,
        }
    }

    /// Counts an open connection until the guard is dropped.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.inc();
        ConnectionGuard(Arc::clone(self))
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

pub(crate) struct CallGuard {
    metrics: Arc<EdgeMetrics>,
    method: String,
    started: std::time::Instant,
    code: Option<tonic::Code>,
}

impl CallGuard {
    pub(crate) fn end(&mut self, code: tonic::Code) {
        self.code = Some(code);
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(tonic::Code::Cancelled);
        self.metrics.in_flight.dec();
        self.metrics
            .calls
            .get_or_create(&vec![("method", self.method.clone()), ("code", format!("{code:?}"))])
            .inc();
        self.metrics
            .latency
            .get_or_create(&vec![("method", self.method.clone())])
            .observe(self.started.elapsed().as_secs_f64());
    }
}

pub(crate) struct ConnectionGuard(Arc<EdgeMetrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub(crate) async fn serve(listener: TcpListener, metrics: Arc<EdgeMetrics>, shutdown: impl Future<Output = ()>) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a metrics connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let metrics = Arc::clone(&metrics);
        let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let metrics = Arc::clone(&metrics);
            async move { Ok::<_, Infallible>(scrape(&metrics, &request)) }
        });
        tokio::spawn(async move {
            // Prometheus scrapes over HTTP/1.1.
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "metrics connection ended with an error");
            }
        });
    }
}

fn scrape<B>(metrics: &EdgeMetrics, request: &http::Request<B>) -> http::Response<String> {
    let mut response = http::Response::new(String::new());
    if request.uri().path() != "/metrics" {
        *response.status_mut() = StatusCode::NOT_FOUND;
        *response.body_mut() = "not found; metrics are at /metrics\n".to_string();
        return response;
    }
    match metrics.encode() {
        Ok(text) => {
            *response.body_mut() = text;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
        }
        Err(_) => *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
    }
    response
}
