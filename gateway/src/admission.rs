//! One tower layer for every check that admits or refuses a call before it is forwarded
//! (load shedding, open streams per user, rate limits). An admitted call may hold a ticket
//! (a concurrency slot) until its response body ends or is dropped, which is when a stream
//! stops taking its slot; a refused one is answered with the check's status at once.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tower::{Layer, Service};

/// A check a call must pass.
pub(crate) trait Admission: Send + Sync + 'static {
    /// What an admitted call holds for as long as its response is being sent.
    type Ticket: Send + Sync + Unpin + 'static;

    fn admit<B>(&self, request: &http::Request<B>) -> Result<Self::Ticket, tonic::Status>;
}

pub(crate) struct AdmissionLayer<A> {
    check: Arc<A>,
}

impl<A> AdmissionLayer<A> {
    pub(crate) fn new(check: A) -> Self {
        Self { check: Arc::new(check) }
    }
}

impl<A> Clone for AdmissionLayer<A> {
    fn clone(&self) -> Self {
        Self {
            check: Arc::clone(&self.check),
        }
    }
}

impl<S, A> Layer<S> for AdmissionLayer<A> {
    type Service = Admitted<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        Admitted {
            inner,
            check: Arc::clone(&self.check),
        }
    }
}

pub(crate) struct Admitted<S, A> {
    inner: S,
    check: Arc<A>,
}

impl<S: Clone, A> Clone for Admitted<S, A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            check: Arc::clone(&self.check),
        }
    }
}

impl<S, A, B> Service<http::Request<B>> for Admitted<S, A>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    A: Admission,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let ticket = match self.check.admit(&request) {
            Ok(ticket) => ticket,
            Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
        };
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            Ok(response.map(|inner| Body::new(HoldingBody { inner, _ticket: ticket })))
        })
    }
}

struct HoldingBody<T> {
    inner: Body,
    _ticket: T,
}

impl<T: Unpin> HttpBody for HoldingBody<T> {
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
