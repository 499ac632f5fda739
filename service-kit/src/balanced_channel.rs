//! Calls to another service balanced per call over every address its name resolves to.
//!
//! In Kubernetes a ClusterIP Service balances connections, not calls: one HTTP/2 connection
//! to it sends every call to one replica, and a new replica gets nothing until that connection
//! drops. With a headless Service the name resolves to every ready pod instead, and
//! [`BalancedChannel`] keeps one lazily connected channel per address and sends each call to
//! the next one in turn.
//!
//! - The name is resolved again every [`ChannelOptions::resolve_interval`] and at once after a
//!   connection failure, so new replicas get calls within seconds and removed ones none.
//! - Passive health check: a replica that cannot be connected to is left out of the rotation
//!   and probed (a TCP connect, backing off to [`MAX_PROBE_INTERVAL`]) until it accepts
//!   connections again. A call that failed before any of it was sent (the connection could
//!   not be made, or was found closed) is sent to another replica, so a replica that dies
//!   fails only the calls it was holding.
//! - Resolution goes through [`Resolve`]: [`SystemResolver`] (`tokio::net::lookup_host`) in
//!   the services, a list the test controls in tests.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tower::{Service, ServiceExt};

/// The error of a balanced call: the member channel's own, or an UNAVAILABLE `Status` when no
/// replica could be reached (tonic's clients pass a `Status` on as it is).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a left-out replica waits at most between two probes.
pub const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(5);
const FIRST_PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// Turns a service's host name into the addresses to balance over.
pub trait Resolve: Send + Sync + 'static {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>>;
}

/// The system's resolver (`/etc/hosts`, DNS): a headless Service's name resolves to every
/// ready pod.
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        let target = format!("{host}:{port}");
        Box::pin(async move { Ok(tokio::net::lookup_host(target).await?.collect()) })
    }
}

/// Answers names from addresses set in code (the port from the URL), for several servers
/// "behind one name" where the system's resolver cannot put them (tests on loopback).
#[derive(Clone, Default)]
pub struct ListResolver {
    hosts: Arc<Mutex<HashMap<String, Vec<IpAddr>>>>,
}

impl ListResolver {
    /// `host` resolves to `addresses` from now on.
    pub fn set(&self, host: &str, addresses: Vec<IpAddr>) {
        if let Ok(mut hosts) = self.hosts.lock() {
            hosts.insert(host.to_string(), addresses);
        }
    }
}

impl Resolve for ListResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        let found = self.hosts.lock().ok().and_then(|hosts| hosts.get(host).cloned());
        let answer = found
            .map(|ips| ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} is not listed")));
        Box::pin(async move { answer })
    }
}

/// A [`Resolve`] to keep in settings: the system's by default.
#[derive(Clone)]
pub struct Resolver(pub Arc<dyn Resolve>);

impl Default for Resolver {
    fn default() -> Self {
        Self(Arc::new(SystemResolver))
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

/// Connection settings every replica's channel gets, and how the name is resolved.
#[derive(Clone, Debug)]
pub struct ChannelOptions {
    pub connect_timeout: Duration,
    /// HTTP/2 pings while idle, so a connection a middlebox dropped is noticed between calls.
    pub keep_alive_interval: Option<Duration>,
    /// How often the name is resolved again (after a failure it is resolved at once).
    pub resolve_interval: Duration,
    pub resolver: Resolver,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            keep_alive_interval: None,
            // CoreDNS answers cluster names with a 5 s TTL by default.
            resolve_interval: Duration::from_secs(5),
            resolver: Resolver::default(),
        }
    }
}

/// A `tower::Service` for gRPC calls (what tonic's generated clients take) that balances
/// over the addresses of one `http://host:port`. Cloning shares the replicas and connections.
#[derive(Clone)]
pub struct BalancedChannel {
    shared: Arc<Shared>,
}

struct Shared {
    /// The URL as given, for logs and errors.
    target: String,
    host: String,
    port: u16,
    options: ChannelOptions,
    replicas: RwLock<Vec<Arc<Replica>>>,
    next: AtomicUsize,
    resolve_now: tokio::sync::Notify,
    /// Serialises resolutions, so a burst of failures resolves once.
    resolving: tokio::sync::Mutex<()>,
}

struct Replica {
    address: SocketAddr,
    channel: Channel,
    left_out: AtomicBool,
    probing: AtomicBool,
}

impl BalancedChannel {
    /// A channel over `url` (`http://host:port`), its name resolved by `options.resolver`.
    /// Nothing is connected until the first call; needs a Tokio runtime.
    pub fn new(url: &str, options: ChannelOptions) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{url:?}: expected http://host:port"));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("{url:?}: expected http://host:port"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(80);
        let literal = host.parse::<IpAddr>().ok();
        let shared = Arc::new(Shared {
            target: url.to_string(),
            host,
            port,
            options,
            replicas: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
            resolve_now: tokio::sync::Notify::new(),
            resolving: tokio::sync::Mutex::new(()),
        });
        match literal {
            // An address needs no resolving: one replica, still health-checked.
            Some(ip) => shared.replace_replicas(&[SocketAddr::new(ip, port)]),
            None => {
                tokio::spawn(keep_resolving(Arc::downgrade(&shared)));
            }
        }
        Ok(Self { shared })
    }

    /// The addresses calls currently go to (left-out replicas excluded), sorted.
    pub fn serving_addresses(&self) -> Vec<SocketAddr> {
        let mut addresses: Vec<SocketAddr> = self
            .shared
            .replicas()
            .iter()
            .filter(|r| !r.left_out.load(Ordering::Relaxed))
            .map(|r| r.address)
            .collect();
        addresses.sort();
        addresses
    }
}

impl Shared {
    fn replicas(&self) -> Vec<Arc<Replica>> {
        self.replicas.read().map(|r| r.clone()).unwrap_or_default()
    }

    fn endpoint(&self, address: SocketAddr) -> Endpoint {
        let endpoint = Endpoint::from(
            http::Uri::builder()
                .scheme("http")
                .authority(address.to_string())
                .path_and_query("/")
                .build()
                .unwrap_or_default(),
        )
        .connect_timeout(self.options.connect_timeout)
        .tcp_nodelay(true);
        match self.options.keep_alive_interval {
            Some(interval) => endpoint.http2_keep_alive_interval(interval).keep_alive_while_idle(true),
            None => endpoint,
        }
    }

    /// Keeps the replicas whose address is still listed (with their connections), adds the
    /// new ones and drops the others. Calls running on a dropped one finish on its connection.
    fn replace_replicas(&self, addresses: &[SocketAddr]) {
        let Ok(mut replicas) = self.replicas.write() else {
            return;
        };
        let wanted: HashSet<SocketAddr> = addresses.iter().copied().collect();
        let before: HashSet<SocketAddr> = replicas.iter().map(|r| r.address).collect();
        if wanted == before {
            return;
        }
        replicas.retain(|r| wanted.contains(&r.address));
        for &address in addresses {
            if !before.contains(&address) && !replicas.iter().any(|r| r.address == address) {
                replicas.push(Arc::new(Replica {
                    address,
                    channel: self.endpoint(address).connect_lazy(),
                    left_out: AtomicBool::new(false),
                    probing: AtomicBool::new(false),
                }));
            }
        }
        let mut now: Vec<String> = wanted.iter().map(ToString::to_string).collect();
        now.sort();
        tracing::info!(target = %self.target, addresses = %now.join(","), "balancing over");
    }

    async fn resolve(&self) {
        let _one_at_a_time = self.resolving.lock().await;
        match self.options.resolver.0.resolve(&self.host, self.port).await {
            Ok(addresses) if !addresses.is_empty() => self.replace_replicas(&addresses),
            // A name that briefly resolves to nothing (every pod restarting, a DNS hiccup)
            // keeps the last replicas: they may answer again, and nothing else can.
            Ok(_) => tracing::warn!(target = %self.target, "name resolved to no address; keeping the last ones"),
            Err(error) => {
                tracing::warn!(target = %self.target, %error, "name did not resolve; keeping the last addresses")
            }
        }
    }

    /// The replica for the next call: the next serving one in turn, skipping those already
    /// tried for it; when none is serving, a left-out one (it may be back before its probe).
    fn pick(&self, tried: &[SocketAddr]) -> Option<Arc<Replica>> {
        let replicas = self.replicas();
        if replicas.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let untried = (0..replicas.len())
            .map(|i| &replicas[(start + i) % replicas.len()])
            .filter(|r| !tried.contains(&r.address));
        let mut fallback = None;
        for replica in untried {
            if !replica.left_out.load(Ordering::Relaxed) {
                return Some(Arc::clone(replica));
            }
            fallback.get_or_insert_with(|| Arc::clone(replica));
        }
        fallback
    }

    /// Leaves `replica` out until a probe connects to it, and resolves the name again (the
    /// replica may be gone for good).
    fn leave_out(self: &Arc<Self>, replica: &Arc<Replica>, error: &BoxError) {
        if !replica.left_out.swap(true, Ordering::Relaxed) {
            tracing::warn!(target = %self.target, address = %replica.address, error = %describe(error.as_ref()), "replica unreachable; left out until it accepts connections");
        }
        self.resolve_now.notify_one();
        if !replica.probing.swap(true, Ordering::Relaxed) {
            tokio::spawn(probe(Arc::downgrade(self), Arc::downgrade(replica)));
        }
    }
}

/// Resolves the name at once, then every interval or when a failure asks, until the channel
/// is dropped.
async fn keep_resolving(shared: Weak<Shared>) {
    // Dropping the channel ends this task at its next wake-up, at most one interval later.
    while let Some(strong) = shared.upgrade() {
        strong.resolve().await;
        let asked = strong.resolve_now.notified();
        let _ = tokio::time::timeout(strong.options.resolve_interval, asked).await;
    }
}

/// Tries to connect to a left-out replica, backing off, until it accepts (it is used again)
/// or it is no longer listed.
async fn probe(shared: Weak<Shared>, replica: Weak<Replica>) {
    let mut wait = FIRST_PROBE_INTERVAL;
    loop {
        tokio::time::sleep(wait).await;
        let (Some(shared), Some(replica)) = (shared.upgrade(), replica.upgrade()) else {
            return;
        };
        if !replica.left_out.load(Ordering::Relaxed) {
            replica.probing.store(false, Ordering::Relaxed);
            return;
        }
        let connect = tokio::net::TcpStream::connect(replica.address);
        if let Ok(Ok(_)) = tokio::time::timeout(shared.options.connect_timeout, connect).await {
            replica.left_out.store(false, Ordering::Relaxed);
            replica.probing.store(false, Ordering::Relaxed);
            tracing::info!(target = %shared.target, address = %replica.address, "replica accepts connections again");
            return;
        }
        wait = (wait * 2).min(MAX_PROBE_INTERVAL);
    }
}

impl Service<http::Request<Body>> for BalancedChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Each call picks its replica and awaits that channel's readiness.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = Arc::new(BodySlot {
                body: Mutex::new(body),
                touched: AtomicBool::new(false),
            });
            let mut tried = Vec::new();
            let mut last_error: Option<BoxError> = None;
            loop {
                if shared.replicas().is_empty() {
                    shared.resolve().await;
                }
                let Some(replica) = shared.pick(&tried) else {
                    let status = match &last_error {
                        None => tonic::Status::unavailable(format!("{} resolves to no address", shared.target)),
                        Some(error) => tonic::Status::unavailable(format!(
                            "no replica of {} accepts connections (last: {})",
                            shared.target,
                            describe(error.as_ref())
                        )),
                    };
                    return Err(status.into());
                };
                let request = http::Request::from_parts(parts.clone(), Body::new(SharedBody(Arc::clone(&body))));
                let mut channel = replica.channel.clone();
                let outcome = match channel.ready().await {
                    Ok(channel) => channel.call(request).await,
                    Err(error) => Err(error),
                };
                match outcome {
                    Ok(response) => {
                        // Answered: serving, even if it was left out (picked as the fallback).
                        replica.left_out.store(false, Ordering::Relaxed);
                        return Ok(response.map(Body::new));
                    }
                    Err(error) => {
                        let error: BoxError = error.into();
                        if body.touched.load(Ordering::Acquire) {
                            // Part of the call may have reached the replica: not ours to repeat.
                            return Err(error);
                        }
                        shared.leave_out(&replica, &error);
                        tried.push(replica.address);
                        last_error = Some(error);
                    }
                }
            }
        })
    }
}

/// An error with its causes ("transport error: tcp connect error: Connection refused").
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// The request body, kept outside the request while the call looks for a replica, so a call
/// whose connection failed before its body was touched can be sent again elsewhere.
struct BodySlot {
    body: Mutex<Body>,
    /// Set once the transport looked at the body: from then on the call may have been sent.
    touched: AtomicBool,
}

struct SharedBody(Arc<BodySlot>);

impl HttpBody for SharedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.0.touched.store(true, Ordering::Release);
        match self.0.body.lock() {
            Ok(mut body) => Pin::new(&mut *body).poll_frame(cx),
            Err(_) => Poll::Ready(Some(Err(tonic::Status::internal("request body lost")))),
        }
    }

    // Looking is not sending (tonic's `Body::new` asks at once): only a polled frame may have
    // reached the replica. Headers sent without the body cannot start any handler, since
    // every method's request message is in the body.
    fn is_end_stream(&self) -> bool {
        self.0.body.lock().map(|b| b.is_end_stream()).unwrap_or(true)
    }

    fn size_hint(&self) -> SizeHint {
        self.0.body.lock().map(|b| b.size_hint()).unwrap_or_default()
    }
}

impl std::fmt::Debug for BalancedChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalancedChannel")
            .field("target", &self.shared.target)
            .finish()
    }
}
