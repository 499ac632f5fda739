//! The built web UI on the gateway's port: files from `web/dist`, `index.html` for any
//! client-side route (single-page app), long caching for the content-hashed files under
//! `/assets/`, and a strict Content-Security-Policy (no inline script) with the usual
//! security headers on every page.

use std::convert::Infallible;
use std::path::PathBuf;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{HeaderValue, Method, StatusCode, header};
use tonic::body::Body;
use tower::{Service, ServiceExt};
use tower_http::services::{ServeDir, ServeFile};

/// Scripts and styles only from this origin; gRPC-web calls only to this origin; nothing may
/// frame the UI. Inline `style` is allowed because UI libraries set styles at run time; inline
/// script is not.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https:; font-src 'self' data:; \
    connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
    frame-ancestors 'none'";

const HASHED_ASSETS: &str = "/assets/";
const LONG_CACHE: &str = "public, max-age=31536000, immutable";

const NOT_BUILT_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Parley</title></head>
<body>
<h1>Parley is running</h1>
<p>The web UI is not built yet. Build it with <code>make run</code> (which runs
<code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>), then reload this page.</p>
<p>Meanwhile every API is here on this port, over gRPC and gRPC-web, for example:
<code>grpcurl -plaintext 127.0.0.1:8080 list</code></p>
</body>
</html>
"#;

#[derive(Clone)]
pub(crate) struct WebUi {
    dir: Option<PathBuf>,
}

impl WebUi {
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }
}

impl<B> Service<http::Request<B>> for WebUi
where
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let dir = self.dir.clone();
        Box::pin(async move {
            let path = request.uri().path().to_string();
            let mut response = respond(dir, request).await;
            add_headers(&path, &mut response);
            Ok(response)
        })
    }
}

/// Paths without a file extension are the UI's own routes (`/chat/42`), answered with
/// `index.html`; a missing file (`/assets/gone.js`) is a plain 404.
fn is_client_route(path: &str) -> bool {
    !path.rsplit('/').next().unwrap_or_default().contains('.')
}

async fn respond<B: Send + 'static>(dir: Option<PathBuf>, request: http::Request<B>) -> http::Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = request.uri().path().to_string();
    let built = match &dir {
        Some(dir) => tokio::fs::metadata(dir.join("index.html")).await.is_ok(),
        None => false,
    };
    let Some(dir) = dir.filter(|_| built) else {
        return if is_client_route(&path) {
            let mut response = http::Response::new(Body::new(NOT_BUILT_PAGE.to_string()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        } else {
            plain(StatusCode::NOT_FOUND, "not found\n")
        };
    };
    let index = dir.join("index.html");
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts.clone(), body);
    let found = match ServeDir::new(&dir).oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    if found.status() != StatusCode::NOT_FOUND || !is_client_route(&path) {
        return found;
    }
    match ServeFile::new(index)
        .oneshot(http::Request::from_parts(parts, ()))
        .await
    {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}

fn plain(status: StatusCode, text: &'static str) -> http::Response<Body> {
    let mut response = http::Response::new(Body::new(text.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn add_headers(path: &str, response: &mut http::Response<Body>) {
    let cache = if path.starts_with(HASHED_ASSETS) && response.status().is_success() {
        LONG_CACHE
    } else {
        // index.html and friends: always revalidate, so a new build is picked up at once.
        "no-cache"
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        http::HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    headers.insert(
        http::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_routes_have_no_extension() {
        assert!(is_client_route("/"));
        assert!(is_client_route("/chat/42"));
        assert!(!is_client_route("/assets/index-3f9a.js"));
        assert!(!is_client_route("/favicon.ico"));
    }
}
