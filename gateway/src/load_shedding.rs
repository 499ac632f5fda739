//! A cap on calls in flight (open streams included). Past it, new calls are refused at once
//! with RESOURCE_EXHAUSTED and a retry delay, instead of piling up behind the ones running.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use parley_service_kit::grpc_status::resource_exhausted;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tower::{Layer, Service};

const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub(crate) struct LoadSheddingLayer {
    permits: Arc<Semaphore>,
}

impl LoadSheddingLayer {
    pub(crate) fn new(max_concurrent_calls: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent_calls.max(1))),
        }
    }
}

impl<S> Layer<S> for LoadSheddingLayer {
    type Service = LoadShedding<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShedding {
            inner,
            permits: self.permits.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct LoadShedding<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, B> Service<http::Request<B>> for LoadShedding<S>
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            tracing::warn!(method = %request.uri().path(), "shedding load: too many calls in flight");
            return Box::pin(async { Ok(resource_exhausted("the server is busy", RETRY_AFTER).into_http()) });
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            // The call holds its permit until its response body ends or is dropped.
            Ok(response.map(|inner| Body::new(PermitBody { inner, _permit: permit })))
        })
    }
}

struct PermitBody {
    inner: Body,
    _permit: OwnedSemaphorePermit,
}

impl HttpBody for PermitBody {
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
