//! Closes connections that hold a slot without using it: one that sends no request within the
//! header timeout (a client that connects and says nothing, or trickles its first headers),
//! and one with no call open for the idle timeout. It sits between hyper and the gateway's
//! service, counting the calls each connection has open (a call is open from its headers
//! until its response body is finished or dropped), so a long stream keeps its connection
//! however quiet it is, and neither handlers nor layers have to know.
//!
//! Bytes alone do not count as activity: hyper pings every HTTP/2 peer on a schedule, and a
//! client could trickle bytes that never become a request; only calls keep a connection.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;
use tonic::body::Body;
use tower::Service;

/// How long a connection may hold its slot without a call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionTimeouts {
    /// From accepting the connection to its first request's headers.
    pub(crate) header: Duration,
    /// With no call open, since the last one started or ended.
    pub(crate) idle: Duration,
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    NoRequest,
    Idle,
}

impl Expiry {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::NoRequest => "no request within the header timeout",
            Self::Idle => "idle (no call open) for the idle connection timeout",
        }
    }
}

struct Activity {
    open_calls: usize,
    any_call: bool,
    /// When the last call started or ended (the connection's start before the first).
    last_change: Instant,
}

/// One connection's calls, shared by its service (which counts) and its watchdog (which
/// waits).
#[derive(Clone)]
pub(crate) struct ConnectionActivity {
    state: Arc<(Mutex<Activity>, Notify)>,
}

impl ConnectionActivity {
    pub(crate) fn new() -> Self {
        Self {
            state: Arc::new((
                Mutex::new(Activity {
                    open_calls: 0,
                    any_call: false,
                    last_change: Instant::now(),
                }),
                Notify::new(),
            )),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Activity)) {
        let (activity, changed) = &*self.state;
        if let Ok(mut activity) = activity.lock() {
            change(&mut activity);
            activity.last_change = Instant::now();
        }
        changed.notify_waiters();
    }

    /// Counts a call as open until the returned guard is dropped.
    fn call_started(&self) -> OpenCall {
        self.update(|a| {
            a.open_calls += 1;
            a.any_call = true;
        });
        OpenCall(self.clone())
    }

    /// Resolves when the connection has outstayed `timeouts`; never while a call is open.
    pub(crate) async fn expired(&self, timeouts: ConnectionTimeouts) -> Expiry {
        let (activity, changed) = &*self.state;
        loop {
            // Registered before reading the state, so a change in between still wakes us.
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deadline = match activity.lock() {
                Ok(a) if !a.any_call => Some((a.last_change + timeouts.header, Expiry::NoRequest)),
                Ok(a) if a.open_calls == 0 => Some((a.last_change + timeouts.idle, Expiry::Idle)),
                Ok(_) => None,
                // A poisoned lock means a panic elsewhere on this connection: let it go.
                Err(_) => return Expiry::Idle,
            };
            match deadline {
                Some((at, expiry)) => {
                    if Instant::now() >= at {
                        return expiry;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

/// An open call; dropping it ends the call.
struct OpenCall(ConnectionActivity);

impl Drop for OpenCall {
    fn drop(&mut self) {
        self.0.update(|a| a.open_calls = a.open_calls.saturating_sub(1));
    }
}

/// The connection's service: counts each call from its headers until its response body ends.
#[derive(Clone)]
pub(crate) struct TrackCalls<S> {
    inner: S,
    activity: ConnectionActivity,
}

impl<S> TrackCalls<S> {
    pub(crate) fn new(inner: S, activity: ConnectionActivity) -> Self {
        Self { inner, activity }
    }
}

impl<S, B> Service<http::Request<B>> for TrackCalls<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // Started before the inner call, so a call waiting for its response counts too.
        let call = self.activity.call_started();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| Body::new(TrackedBody { inner, _call: call })))
        })
    }
}

struct TrackedBody {
    inner: Body,
    _call: OpenCall,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: ConnectionTimeouts = ConnectionTimeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_expires_after_the_header_timeout() {
        let activity = ConnectionActivity::new();
        let started = Instant::now();
        assert_eq!(activity.expired(TIMEOUTS).await, Expiry::NoRequest);
        assert_eq!(started.elapsed(), TIMEOUTS.header);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_call_holds_the_connection_and_idleness_counts_from_its_end() {
        let activity = ConnectionActivity::new();
        let call = activity.call_started();
        let watchdog = tokio::spawn({
            let activity = activity.clone();
            async move { activity.expired(TIMEOUTS).await }
        });
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(!watchdog.is_finished(), "closed while a call was open");
        let ended = Instant::now();
        drop(call);
        let expiry = watchdog.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(expiry, Expiry::Idle);
        assert_eq!(ended.elapsed(), TIMEOUTS.idle);
    }
}
