//! The built web UI on the gateway's port: files from `web/dist`, `index.html` for any
//! client-side route (single-page app), long caching for the content-hashed files under
//! `/assets/` (and only for them: `index.html` is always revalidated), and a strict
//! Content-Security-Policy (no inline script, no style elements) with the usual security
//! headers on every page. The build writes a brotli (`x.js.br`) and a gzip (`x.js.gz`) copy
//! next to each compressible file; a client that accepts one gets it as is, with the
//! original's Content-Type, so no request costs compression work here. gRPC-web never comes
//! here (the front door sends it to the proxy), so its responses are never re-encoded.

use std::convert::Infallible;
use std::path::PathBuf;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{HeaderValue, Method, StatusCode, header};
use tonic::body::Body;
use tower::{Service, ServiceExt};
use tower_http::services::{ServeDir, ServeFile};

/// Scripts and style sheets only from this origin; gRPC-web calls only to this origin; nothing
/// may frame the UI. Inline `style="…"` attributes are allowed (KaTeX lays formulas out with
/// them); inline `<style>` elements and inline script are not.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data: blob: https:; \
    font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
    form-action 'self'; frame-ancestors 'none'";

/// Vite's content-hashed build output: a name there never changes content.
const HASHED_ASSETS: &str = "/assets/";
const LONG_CACHE: &str = "public, max-age=31536000, immutable";
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Extensions of the files a build holds; any other last path segment (`/chat/42`,
/// `/u/ada.lovelace`) is a route of the UI.
const STATIC_EXTENSIONS: &[&str] = &[
    "html",
    "js",
    "mjs",
    "css",
    "map",
    "json",
    "webmanifest",
    "txt",
    "xml",
    "ico",
    "svg",
    "png",
    "jpg",
    "jpeg",
    "gif",
    "webp",
    "avif",
    "woff",
    "woff2",
    "ttf",
    "otf",
    "eot",
    "wasm",
    // The build's precompressed copies: a missing one is a 404, not the UI.
    "br",
    "gz",
];

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
    hsts: bool,
}

impl WebUi {
    pub(crate) fn new(dir: Option<PathBuf>, hsts: bool) -> Self {
        Self { dir, hsts }
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
        let hsts = self.hsts;
        Box::pin(async move {
            let path = request.uri().path().to_string();
            let mut response = respond(dir, request).await;
            add_headers(&path, hsts, &mut response);
            Ok(response)
        })
    }
}

/// The UI's own routes (`/chat/42`) are answered with `index.html`; a missing file
/// (`/favicon.ico`, anything under `/assets/`) is a plain 404, so `index.html` is never cached
/// as if it were an asset.
fn is_client_route(path: &str) -> bool {
    if path.starts_with(HASHED_ASSETS) {
        return false;
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    !last
        .rsplit_once('.')
        .is_some_and(|(_, ext)| STATIC_EXTENSIONS.iter().any(|known| ext.eq_ignore_ascii_case(known)))
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
    // Brotli first when both are accepted equally (smaller); `q=0` rules an encoding out.
    let found = match ServeDir::new(&dir)
        .precompressed_br()
        .precompressed_gzip()
        .oneshot(request)
        .await
    {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    if found.status() != StatusCode::NOT_FOUND || !is_client_route(&path) {
        return found;
    }
    match ServeFile::new(index)
        .precompressed_br()
        .precompressed_gzip()
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

fn add_headers(path: &str, hsts: bool, response: &mut http::Response<Body>) {
    // A hashed asset, found or not modified, never changes. index.html and the rest are always
    // revalidated, so a new build is picked up at once.
    let status = response.status();
    let cache = if path.starts_with(HASHED_ASSETS) && (status.is_success() || status == StatusCode::NOT_MODIFIED) {
        LONG_CACHE
    } else {
        "no-cache"
    };
    let headers = response.headers_mut();
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    // The same URL is answered brotli, gzip or plain by Accept-Encoding: caches must keep them
    // apart.
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
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
    fn client_routes_are_everything_but_files() {
        assert!(is_client_route("/"));
        assert!(is_client_route("/chat/42"));
        // A dot alone does not make a file.
        assert!(is_client_route("/u/ada.lovelace"));
        assert!(is_client_route("/chat/v1.2"));
        assert!(!is_client_route("/assets/index-3f9a.js"));
        assert!(!is_client_route("/favicon.ico"));
        assert!(!is_client_route("/FAVICON.ICO"));
        // Nothing under /assets/ is a route, extension or not.
        assert!(!is_client_route("/assets/foo"));
        assert!(!is_client_route("/assets/"));
    }
}
