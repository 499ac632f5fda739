//! Forwards a gRPC call to its upstream without decoding it: headers (authorization,
//! `x-request-id`, `traceparent` …), the body and the trailers pass through as they are.

use std::collections::HashSet;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use parley_service_kit::balanced_channel::{BalancedChannel, ChannelOptions};
use tonic::Status;
use tonic::body::Body;
use tower::{Service, ServiceExt};

use crate::config::Config;
use crate::error::Error;

/// The error of a request body on its way through.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service the gateway forwards to, by name (for logs and errors) and channel. The channel
/// balances each call over every address the upstream's name resolves to (a headless Service
/// in Kubernetes), connects lazily and reconnects by itself, so an upstream that starts later,
/// restarts or scales is picked up without restarting the gateway.
#[derive(Clone)]
pub(crate) struct Upstream {
    name: &'static str,
    channel: BalancedChannel,
}

impl Upstream {
    pub(crate) fn connect(name: &'static str, url: &str, config: &Config) -> Result<Self, Error> {
        check_url(name, url)?;
        let options = ChannelOptions {
            connect_timeout: config.upstream_connect_timeout,
            keep_alive_interval: Some(Duration::from_secs(30)),
            resolver: config.upstream_resolver.clone(),
            ..ChannelOptions::default()
        };
        let channel = BalancedChannel::new(url, options).map_err(|reason| Error::UpstreamUrl {
            name,
            url: url.to_string(),
            reason,
        })?;
        Ok(Self { name, channel })
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn channel(&self) -> BalancedChannel {
        self.channel.clone()
    }
}

/// An upstream URL the gateway can use: `http://host:port` (upstreams speak h2c inside the
/// deployment).
pub(crate) fn check_url(name: &'static str, url: &str) -> Result<http::Uri, Error> {
    let invalid = |reason: &str| Error::UpstreamUrl {
        name,
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(invalid("expected http://host:port"));
    }
    Ok(uri)
}

/// What the proxy enforces on every forwarded call.
pub(crate) struct ForwardPolicy {
    /// Paths of unary methods, which get the unary timeout. Methods the gateway does not know
    /// the shape of are left to the client's own deadline.
    pub(crate) unary_methods: HashSet<String>,
    pub(crate) unary_timeout: Duration,
    pub(crate) max_message_bytes: usize,
}

#[derive(Clone)]
pub(crate) struct UpstreamProxy {
    upstream: Upstream,
    policy: Arc<ForwardPolicy>,
}

impl UpstreamProxy {
    pub(crate) fn new(upstream: Upstream, policy: Arc<ForwardPolicy>) -> Self {
        Self { upstream, policy }
    }
}

/// Connection-level headers that must not be forwarded to an HTTP/2 upstream, and
/// `content-length`, which no longer matches once gRPC-web text was decoded.
const NOT_FORWARDED: [http::HeaderName; 6] = [
    http::header::CONNECTION,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
    http::header::CONTENT_LENGTH,
    http::HeaderName::from_static("keep-alive"),
    http::HeaderName::from_static("proxy-connection"),
];

const GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");

impl<B> Service<http::Request<B>> for UpstreamProxy
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness of the channel is awaited per call, so an upstream that is down fails the
        // call UNAVAILABLE instead of stalling the router.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let upstream = self.upstream.clone();
        let policy = self.policy.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            for name in NOT_FORWARDED {
                parts.headers.remove(&name);
            }
            let deadline = if policy.unary_methods.contains(parts.uri.path()) {
                let client = parts.headers.get(&GRPC_TIMEOUT).and_then(parse_grpc_timeout);
                let deadline = client.map_or(policy.unary_timeout, |c| c.min(policy.unary_timeout));
                parts.headers.insert(GRPC_TIMEOUT, encode_grpc_timeout(deadline));
                Some(deadline)
            } else {
                None
            };
            let oversize = Arc::new(Mutex::new(None));
            let body = Body::new(SizeCheckedBody {
                inner: Box::pin(body),
                max: policy.max_message_bytes,
                frames: FrameScanner::default(),
                oversize: oversize.clone(),
            });
            let request = http::Request::from_parts(parts, body);

            let started = tokio::time::Instant::now();
            let call = async {
                let mut channel = upstream.channel.clone();
                channel.ready().await?;
                channel.call(request).await
            };
            let outcome = match deadline {
                Some(deadline) => match tokio::time::timeout(deadline, call).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        return Ok(Status::deadline_exceeded(format!(
                            "no answer from {} within {deadline:?}",
                            upstream.name
                        ))
                        .into_http());
                    }
                },
                None => call.await,
            };
            if let Some(size) = oversize.lock().ok().and_then(|s| *s) {
                return Ok(Status::resource_exhausted(format!(
                    "request message of {size} bytes is larger than the limit of {} bytes",
                    policy.max_message_bytes
                ))
                .into_http());
            }
            Ok(match outcome {
                Ok(response) => response.map(Body::new),
                // The upstream enforces the same deadline and may give up a moment first.
                Err(_) if deadline.is_some_and(|d| started.elapsed() >= d) => {
                    Status::deadline_exceeded(format!("no answer from {} within the deadline", upstream.name))
                        .into_http()
                }
                Err(error) => {
                    tracing::warn!(upstream = upstream.name, %error, "upstream unreachable");
                    Status::unavailable(format!("{} is unavailable", upstream.name)).into_http()
                }
            })
        })
    }
}

/// A request body that hides its size hint (tonic-web passes the *encoded* size of a
/// gRPC-web-text body on, which would make the HTTP/2 client send a wrong content-length) and
/// fails the call when a message is larger than the limit.
struct SizeCheckedBody<B> {
    inner: Pin<Box<B>>,
    max: usize,
    frames: FrameScanner,
    oversize: Arc<Mutex<Option<u64>>>,
}

impl<B> HttpBody for SizeCheckedBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Err(size) = this.frames.scan(data, this.max)
                {
                    if let Ok(mut slot) = this.oversize.lock() {
                        *slot = Some(size);
                    }
                    return Poll::Ready(Some(Err("request message too large".into())));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Follows the gRPC length-prefixed framing (1 flag byte, 4 length bytes, message) across
/// arbitrary data chunks.
#[derive(Default)]
struct FrameScanner {
    header: [u8; 5],
    header_len: usize,
    remaining: u64,
}

impl FrameScanner {
    /// Err carries the announced size of a message larger than `max`.
    fn scan(&mut self, mut data: &[u8], max: usize) -> Result<(), u64> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(data.len());
                self.remaining -= n as u64;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len == 5 {
                let len = u64::from(u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]));
                if len > max as u64 {
                    return Err(len);
                }
                self.remaining = len;
                self.header_len = 0;
            }
        }
        Ok(())
    }
}

/// `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &http::HeaderValue) -> Option<Duration> {
    let value = value.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

fn encode_grpc_timeout(deadline: Duration) -> http::HeaderValue {
    let millis = deadline.as_millis().clamp(1, 99_999_999);
    http::HeaderValue::from_str(&format!("{millis}m")).unwrap_or(http::HeaderValue::from_static("99999999m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_follows_frames_split_anywhere() {
        let mut stream = Vec::new();
        for len in [3u32, 0, 10] {
            stream.push(0);
            stream.extend_from_slice(&len.to_be_bytes());
            stream.extend(std::iter::repeat_n(7u8, len as usize));
        }
        for split in 1..stream.len() {
            let mut scanner = FrameScanner::default();
            assert_eq!(scanner.scan(&stream[..split], 10), Ok(()));
            assert_eq!(scanner.scan(&stream[split..], 10), Ok(()));
            assert_eq!((scanner.header_len, scanner.remaining), (0, 0));
        }
        let mut scanner = FrameScanner::default();
        assert_eq!(scanner.scan(&stream, 9), Err(10));
    }

    #[test]
    fn grpc_timeouts_parse_and_encode() {
        let parse = |s: &'static str| parse_grpc_timeout(&http::HeaderValue::from_static(s));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("150m"), Some(Duration::from_millis(150)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("123456789m"), None);
        assert_eq!(parse("S"), None);
        assert_eq!(parse("5x"), None);
        assert_eq!(encode_grpc_timeout(Duration::from_secs(60)), "60000m");
        assert_eq!(encode_grpc_timeout(Duration::from_micros(10)), "1m");
    }
}
