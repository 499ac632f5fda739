//! One access log line per call (method, status, duration, user id, request id; never a
//! token), written when the call ends: after the trailers for a stream, or when the client went
//! away. Also makes sure every call carries an `x-request-id` (passed on to the upstream and
//! returned to the client), and runs it in a span of its own in the caller's W3C trace (or a
//! new trace started here): the upstream gets a `traceparent` naming that span as its parent,
//! so the services behind log under one trace.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use parley_service_kit::access_token::AuthenticatedUser;
use parley_service_kit::trace_context;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::metrics::{CallGuard, EdgeMetrics};

pub(crate) const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// Where the auth layer's verdict (the caller's user id) is left for the log line.
#[derive(Clone, Default)]
pub(crate) struct CallerSlot(Arc<OnceLock<i64>>);

/// Copies the authenticated caller into the call's [`CallerSlot`]; runs right after auth.
pub(crate) fn record_caller<B>(request: http::Request<B>) -> http::Request<B> {
    if let (Some(user), Some(slot)) = (
        request.extensions().get::<AuthenticatedUser>(),
        request.extensions().get::<CallerSlot>(),
    ) {
        let _ = slot.0.set(user.user_id);
    }
    request
}

/// The access log, which also counts each call in the edge's metrics.
#[derive(Clone)]
pub(crate) struct CallLogLayer {
    pub(crate) metrics: Arc<EdgeMetrics>,
}

impl<S> Layer<S> for CallLogLayer {
    type Service = CallLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallLog {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

#[derive(Clone)]
pub(crate) struct CallLog<S> {
    inner: S,
    metrics: Arc<EdgeMetrics>,
}

/// A request id from the client is kept if it is short and printable; otherwise one is made.
fn request_id(headers: &http::HeaderMap) -> http::HeaderValue {
    headers
        .get(&REQUEST_ID)
        .filter(|v| {
            let bytes = v.as_bytes();
            !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            http::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .unwrap_or(http::HeaderValue::from_static("unknown"))
        })
}

/// Where this call sits in a W3C trace: the caller's trace (id and flags) or a new one (not
/// sampled: only correlation), and the gateway's own span in it.
struct TraceHop {
    trace_id: String,
    span_id: String,
    flags: String,
}

impl TraceHop {
    fn of(headers: &http::HeaderMap) -> Self {
        let incoming = headers
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|value| {
                let trace_id = trace_context::trace_id(value)?;
                let flags = value.rsplit('-').next()?;
                Some((trace_id.to_string(), flags.to_string()))
            });
        let (trace_id, flags) =
            incoming.unwrap_or_else(|| (uuid::Uuid::new_v4().simple().to_string(), "00".to_string()));
        // The high half of a v4 UUID: random, and never all zeros (it holds the version).
        let span_id = format!("{:016x}", uuid::Uuid::new_v4().as_u64_pair().0);
        Self {
            trace_id,
            span_id,
            flags,
        }
    }

    /// The `traceparent` for the upstream: same trace, this span as the parent.
    fn traceparent(&self) -> Option<http::HeaderValue> {
        http::HeaderValue::from_str(&format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)).ok()
    }
}

impl<S, B> Service<http::Request<B>> for CallLog<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let id = request_id(request.headers());
        request.headers_mut().insert(REQUEST_ID, id.clone());
        let hop = TraceHop::of(request.headers());
        match hop.traceparent() {
            Some(traceparent) => request.headers_mut().insert(TRACEPARENT, traceparent),
            None => request.headers_mut().remove(TRACEPARENT),
        };
        let request_id = id.to_str().unwrap_or("-").to_string();
        let method = request.uri().path().to_string();
        // The auth layer fills in `user_id`; everything logged on the way is in this span.
        let span = tracing::info_span!(
            "gateway",
            method = %method,
            trace_id = %hop.trace_id,
            span_id = %hop.span_id,
            request_id = %request_id,
            user_id = tracing::field::Empty,
        );
        let caller = CallerSlot::default();
        request.extensions_mut().insert(caller.clone());
        let metered = self.metrics.call_started(&method);
        let record = CallRecord {
            metered,
            method,
            request_id,
            trace_id: hop.trace_id,
            started,
            caller,
            status: None,
        };
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let mut response = future.await?;
                response.headers_mut().insert(REQUEST_ID, id);
                let mut record = record;
                // A trailers-only response (most errors) carries its status in the headers.
                record.status = grpc_status(response.headers());
                Ok(response.map(|body| {
                    Body::new(LoggedBody {
                        inner: body,
                        record: Some(record),
                    })
                }))
            }
            .instrument(span),
        )
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .map(|v| tonic::Code::from_bytes(v.as_bytes()))
}

struct CallRecord {
    /// Ends the call in the metrics when dropped (as CANCELLED unless `write` said otherwise).
    metered: CallGuard,
    method: String,
    request_id: String,
    trace_id: String,
    started: Instant,
    caller: CallerSlot,
    status: Option<tonic::Code>,
}

/// Health checks: a Kubernetes probe or load balancer asks every few seconds, so their lines
/// are DEBUG, not INFO, lest they drown the calls people make.
const PROBE_PREFIX: &str = "/grpc.health.v1.Health/";

impl CallRecord {
    fn write(mut self, ended: &'static str) {
        let user_id = self.caller.0.get().map_or_else(|| "-".to_string(), i64::to_string);
        // No status by the end means the client went away before the upstream finished.
        let code = self.status.unwrap_or(tonic::Code::Cancelled);
        self.metered.end(code);
        let duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        macro_rules! access_line {
            ($level:expr) => {
                tracing::event!(
                    target: "gateway::access",
                    $level,
                    method = %self.method,
                    code = ?code,
                    duration_ms = %format_args!("{duration_ms:.3}"),
                    user_id = %user_id,
                    request_id = %self.request_id,
                    trace_id = %self.trace_id,
                    ended,
                    "call"
                )
            };
        }
        if self.method.starts_with(PROBE_PREFIX) {
            access_line!(tracing::Level::DEBUG);
        } else {
            access_line!(tracing::Level::INFO);
        }
    }
}

struct LoggedBody {
    inner: Body,
    record: Option<CallRecord>,
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(record)) = (frame.trailers_ref(), self.record.as_mut()) {
                    record.status = grpc_status(trailers).or(record.status);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(record) = self.record.as_mut() {
                    record.status = record.status.or(Some(tonic::Code::Unavailable));
                }
            }
            Poll::Ready(None) => {
                if let Some(record) = self.record.take() {
                    record.write("complete");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            let ended = if record.status.is_some() {
                "complete"
            } else {
                "client gone"
            };
            record.write(ended);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_trace_is_continued_or_one_is_started() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            http::HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        );
        let hop = TraceHop::of(&headers);
        assert_eq!(hop.trace_id, "0af7651916cd43dd8448eb211c80319c");
        let forwarded = hop.traceparent().unwrap_or_else(|| panic!("no traceparent"));
        let forwarded = forwarded.to_str().unwrap_or_default();
        // Same trace and flags; the gateway's own span is the parent now.
        assert_eq!(
            trace_context::trace_id(forwarded),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert!(
            forwarded.ends_with("-01") && !forwarded.contains("b7ad6b7169203331"),
            "{forwarded}"
        );

        headers.insert(TRACEPARENT, http::HeaderValue::from_static("garbage"));
        let hop = TraceHop::of(&headers);
        let started = hop.traceparent().unwrap_or_else(|| panic!("no traceparent"));
        let started = started.to_str().unwrap_or_default();
        assert_eq!(trace_context::trace_id(started), Some(hop.trace_id.as_str()));
        assert!(started.ends_with("-00"), "{started}");
        assert_ne!(hop.trace_id, "0af7651916cd43dd8448eb211c80319c");
    }
}
