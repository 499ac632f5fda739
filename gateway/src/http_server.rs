//! The listening side: HTTP/1.1 and HTTP/2 (h2c) on one port, gRPC and gRPC-web to the gRPC
//! branch and everything else to the web UI, and graceful shutdown that lets open calls finish
//! up to a deadline.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tonic::body::Body;
use tower::{Service, ServiceExt};

use crate::client_addr::{ClientAddr, IpNetwork, address_key, canonical};
use crate::connection_watchdog::{ConnectionActivity, ConnectionTimeouts, TrackCalls};
use crate::load_shedding::OpenCounts;
use crate::metrics::EdgeMetrics;
use crate::routing::GrpcService;
use crate::upstream_proxy::BoxError;
use crate::web_ui::WebUi;

/// Sends gRPC (native or web) to the gRPC branch and the rest to the web UI, so tonic-web
/// never sees a plain browser request (it would answer 400).
#[derive(Clone)]
pub(crate) struct FrontDoor {
    grpc: GrpcService,
    web: WebUi,
}

impl FrontDoor {
    pub(crate) fn new(grpc: GrpcService, web: WebUi) -> Self {
        Self { grpc, web }
    }
}

fn is_grpc<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

impl<B> Service<http::Request<B>> for FrontDoor
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // Each branch is awaited ready before it is called (on a clone, so this service holds
        // no readiness of its own), so a layer that ever applies backpressure is honoured.
        if is_grpc(&request) {
            Box::pin(self.grpc.clone().oneshot(request.map(Body::new)))
        } else {
            Box::pin(self.web.clone().oneshot(request))
        }
    }
}

/// Puts the connection's peer address into every request.
#[derive(Clone)]
struct WithClientAddr<S> {
    inner: S,
    peer: SocketAddr,
}

impl<S, B> Service<http::Request<B>> for WithClientAddr<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(ClientAddr(self.peer));
        self.inner.call(request)
    }
}

/// What the listening side allows.
pub(crate) struct ConnectionLimits {
    /// Open connections; at the limit no more are accepted (they wait in the listen backlog)
    /// until one closes.
    pub(crate) max_connections: usize,
    /// Open connections from one peer address (IPv6 by /64); a peer at the limit has its
    /// new connections closed at once. Trusted proxies carry many clients and are exempt.
    pub(crate) max_connections_per_address: usize,
    pub(crate) trusted_proxies: Vec<IpNetwork>,
    /// HTTP/2 streams per connection, advertised in SETTINGS_MAX_CONCURRENT_STREAMS.
    pub(crate) max_streams_per_connection: u32,
    /// How long open calls may run on after shutdown was asked for.
    pub(crate) drain_deadline: Duration,
    /// How long a connection may go without a call before it is closed.
    pub(crate) timeouts: ConnectionTimeouts,
}

/// Accepts connections until `shutdown`, then waits for open calls up to the drain deadline
/// and closes whatever is still open.
pub(crate) async fn run<S>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
    limits: ConnectionLimits,
    metrics: Arc<EdgeMetrics>,
) -> std::io::Result<()>
where
    S: Service<http::Request<hyper::body::Incoming>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that never finishes its headers is dropped (the watchdog below does it for the
    // first request on either protocol; hyper for every later HTTP/1.1 one); idle HTTP/2 peers
    // are pinged so a vanished browser does not hold a stream (and its upstream call) open.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.timeouts.header);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(limits.max_streams_per_connection);
    let drain_deadline = limits.drain_deadline;
    // `Config::validate` keeps it between 1 and a million.
    let connection_slots = Arc::new(Semaphore::new(limits.max_connections.clamp(1, Semaphore::MAX_PERMITS)));
    let per_address = OpenCounts::new();
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free connection slot first, then a connection to fill it.
        let next = async {
            let slot = Arc::clone(&connection_slots).acquire_owned().await;
            (slot, listener.accept().await)
        };
        tokio::select! {
            (slot, accepted) = next => match accepted {
                Ok((stream, peer)) => {
                    let peer_ip = canonical(peer.ip());
                    let address_slot = if limits.trusted_proxies.iter().any(|net| net.contains(peer_ip)) {
                        None
                    } else if let Some(slot) =
                        per_address.take(address_key(peer_ip), limits.max_connections_per_address)
                    {
                        Some(slot)
                    } else {
                        tracing::info!(%peer, "too many connections from one address; closing the new one");
                        continue;
                    };
                    // Without it Nagle's algorithm holds back the small frames of a stream.
                    let _ = stream.set_nodelay(true);
                    let activity = ConnectionActivity::new();
                    let service = TrackCalls::new(WithClientAddr { inner: service.clone(), peer }, activity.clone());
                    let service = TowerToHyperService::new(service);
                    let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let connection = graceful.watch(connection);
                    let timeouts = limits.timeouts;
                    let open = metrics.connection_opened();
                    connections.spawn(async move {
                        tokio::select! {
                            ended = connection => if let Err(error) = ended {
                                tracing::debug!(%peer, %error, "connection ended with an error");
                            },
                            // Dropping the connection closes its socket.
                            expiry = activity.expired(timeouts) => {
                                tracing::debug!(%peer, reason = expiry.reason(), "closing a connection");
                            }
                        }
                        drop((slot, address_slot, open));
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(open = graceful.count(), "gateway draining");
    if tokio::time::timeout(drain_deadline, graceful.shutdown()).await.is_err() {
        tracing::warn!(?drain_deadline, "drain deadline passed; closing the calls still open");
    }
    connections.shutdown().await;
    Ok(())
}
