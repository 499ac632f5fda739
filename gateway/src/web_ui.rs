//! The built web UI on the gateway's port: files from `web/dist`, `index.html` for any
//! client-side route (single-page app), long caching for the content-hashed files under
//! `/assets/` (and only for them: `index.html` is always revalidated), and a strict
//! Content-Security-Policy (no inline script, no style elements) with the usual security
//! headers on every page. The build writes a brotli (`x.js.br`) and a gzip (`x.js.gz`) copy
//! next to each compressible file; a client that accepts one gets it as is, with the
//! original's Content-Type, so no request costs compression work here. gRPC-web never comes
//! here (the front door sends it to the proxy), so its responses are never re-encoded.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
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

/// One file of a web UI build compiled into the binary, by its path under `web/dist`
/// (`index.html`, `assets/index-3f9a.js.br`).
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedFile {
    pub path: &'static str,
    pub contents: &'static [u8],
}

struct Embedded {
    contents: &'static [u8],
    /// A strong validator of the contents, so a browser revalidating `index.html` gets a 304.
    etag: HeaderValue,
}

/// A web UI build compiled into the binary (the all-in-one `parley` embeds `web/dist` at build
/// time), served as a directory would be: single-page-app routes, the precompressed copies,
/// caching, and revalidation by ETag.
#[derive(Clone)]
pub struct EmbeddedUi {
    files: Arc<HashMap<&'static str, Embedded>>,
}

impl EmbeddedUi {
    pub fn new(files: &'static [EmbeddedFile]) -> Self {
        let files = files
            .iter()
            .map(|file| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                file.contents.hash(&mut hasher);
                let etag = format!("\"{:016x}-{:x}\"", hasher.finish(), file.contents.len());
                let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
                (
                    file.path,
                    Embedded {
                        contents: file.contents,
                        etag,
                    },
                )
            })
            .collect();
        Self { files: Arc::new(files) }
    }

    /// Whether it holds a build (an `index.html`); a binary built before the UI holds none.
    pub fn is_built(&self) -> bool {
        self.files.contains_key(INDEX)
    }

    /// How many files it holds (copies included).
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl std::fmt::Debug for EmbeddedUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedUi").field("files", &self.files.len()).finish()
    }
}

const INDEX: &str = "index.html";

/// Where the UI comes from: a directory (`--web-dir`), the build compiled in, or nowhere.
#[derive(Clone)]
enum Source {
    Dir(PathBuf),
    Embedded(EmbeddedUi),
    None,
}

#[derive(Clone)]
pub(crate) struct WebUi {
    source: Source,
    hsts: bool,
}

impl WebUi {
    /// A directory wins over the embedded build, so the UI can be worked on without a rebuild.
    pub(crate) fn new(dir: Option<PathBuf>, embedded: Option<EmbeddedUi>, hsts: bool) -> Self {
        let source = match (dir, embedded) {
            (Some(dir), _) => Source::Dir(dir),
            (None, Some(embedded)) => Source::Embedded(embedded),
            (None, None) => Source::None,
        };
        Self { source, hsts }
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
        let source = self.source.clone();
        let hsts = self.hsts;
        Box::pin(async move {
            let path = request.uri().path().to_string();
            let mut response = respond(source, request).await;
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

async fn respond<B: Send + 'static>(source: Source, request: http::Request<B>) -> http::Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = request.uri().path().to_string();
    let dir = match source {
        Source::Dir(dir) if tokio::fs::metadata(dir.join(INDEX)).await.is_ok() => dir,
        Source::Embedded(embedded) if embedded.is_built() => return respond_embedded(&embedded, &request),
        _ => return not_built(&path),
    };
    let index = dir.join(INDEX);
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

fn not_built(path: &str) -> http::Response<Body> {
    if is_client_route(path) {
        let mut response = http::Response::new(Body::new(NOT_BUILT_PAGE.to_string()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    } else {
        plain(StatusCode::NOT_FOUND, "not found\n")
    }
}

/// The embedded build, answered as `ServeDir` answers a directory: the file, `index.html` for
/// a UI route, the precompressed copy the client accepts best, a 304 when its ETag matches.
fn respond_embedded<B>(ui: &EmbeddedUi, request: &http::Request<B>) -> http::Response<Body> {
    let path = request.uri().path();
    let relative = path.trim_start_matches('/');
    let name = if relative.is_empty() || relative.ends_with('/') {
        format!("{relative}{INDEX}")
    } else {
        relative.to_string()
    };
    let name = match ui.files.get(name.as_str()) {
        Some(_) => name,
        None if is_client_route(path) => INDEX.to_string(),
        None => return plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    let accepted = request
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let copy = best_encoding(accepted, |extension| {
        ui.files.contains_key(format!("{name}.{extension}").as_str())
    });
    let sent_name = match copy {
        Some((extension, _)) => format!("{name}.{extension}"),
        None => name.clone(),
    };
    let Some(file) = ui.files.get(sent_name.as_str()) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let unchanged = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == file.etag.to_str().unwrap_or_default()
        });
    let mut response = if unchanged {
        let mut response = http::Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else if request.method() == Method::HEAD {
        http::Response::new(Body::empty())
    } else {
        http::Response::new(Body::new(http_body_util_full(file.contents)))
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, file.etag.clone());
    if !unchanged {
        let content_type = mime_guess::from_path(&name).first_or_octet_stream();
        if let Ok(value) = HeaderValue::from_str(content_type.essence_str()) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.contents.len()));
        if let Some((_, coding)) = copy {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
    }
    response
}

/// A whole static file as a body.
fn http_body_util_full(contents: &'static [u8]) -> http_body_util::Full<bytes::Bytes> {
    http_body_util::Full::new(bytes::Bytes::from_static(contents))
}

/// The precompressed copy to send: (file extension, Content-Encoding) of the accepted coding
/// with the highest q-value whose copy `exists`, brotli on a tie; `None` for the file itself.
fn best_encoding(accept_encoding: &str, exists: impl Fn(&str) -> bool) -> Option<(&'static str, &'static str)> {
    let quality = |coding: &str| -> f32 {
        let mut wildcard = 0.0;
        for entry in accept_encoding.split(',') {
            let mut parts = entry.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if name.eq_ignore_ascii_case(coding) {
                return q;
            }
            if name == "*" {
                wildcard = q;
            }
        }
        wildcard
    };
    [("br", "br"), ("gz", "gzip")]
        .into_iter()
        .map(|(extension, coding)| (extension, coding, quality(coding)))
        .filter(|&(extension, _, q)| q > 0.0 && exists(extension))
        .fold(None, |best: Option<(&str, &str, f32)>, candidate| match best {
            Some(best) if best.2 >= candidate.2 => Some(best),
            _ => Some(candidate),
        })
        .map(|(extension, coding, _)| (extension, coding))
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
    fn the_best_accepted_copy_is_chosen() {
        let both = |_: &str| true;
        assert_eq!(best_encoding("gzip, br", both), Some(("br", "br")));
        assert_eq!(best_encoding("gzip;q=1, br;q=0.5", both), Some(("gz", "gzip")));
        assert_eq!(best_encoding("br;q=0, gzip", both), Some(("gz", "gzip")));
        assert_eq!(best_encoding("*", both), Some(("br", "br")));
        assert_eq!(best_encoding("identity", both), None);
        assert_eq!(best_encoding("", both), None);
        assert_eq!(best_encoding("br, gzip", |e| e == "gz"), Some(("gz", "gzip")));
    }

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
