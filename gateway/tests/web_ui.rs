//! The web UI's precompressed files: brotli or gzip as the client accepts (q-values, `q=0`
//! included), the original's Content-Type, `Vary: Accept-Encoding` and the caching rules
//! unchanged; a file without a compressed copy and every gRPC-web answer go out as they are.
//! The same from a directory (`--web-dir`) and from a build embedded in the binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bytes::Bytes;
use http_body_util::Full;
use parley_proto::user::v1 as user;
use support::*;

const LOGIN: &str = "/parley.user.v1.UserService/Login";
const LONG_CACHE: &str = "public, max-age=31536000, immutable";
const SCRIPT: &str = "/assets/app-3f9a.js";
const INDEX: &str = "<!doctype html><script src=/assets/app-3f9a.js></script>";

/// A build as `npm run build` leaves it: each compressible file with its `.br` and `.gz` copy.
/// The copies hold marker text instead of real compressed bytes, so a test sees which one was
/// sent (the client does not decode).
fn built_ui() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::write(root.join("index.html"), INDEX).unwrap();
    std::fs::write(root.join("index.html.br"), "br:index").unwrap();
    std::fs::write(root.join("index.html.gz"), "gz:index").unwrap();
    std::fs::write(root.join("assets/app-3f9a.js"), "console.log(1)").unwrap();
    std::fs::write(root.join("assets/app-3f9a.js.br"), "br:app").unwrap();
    std::fs::write(root.join("assets/app-3f9a.js.gz"), "gz:app").unwrap();
    // Already compressed: the build writes no copies.
    std::fs::write(root.join("assets/font-1a2b.woff2"), "wOF2").unwrap();
    dir
}

async fn get(stack: &Stack, path: &str, headers: &[(&str, &str)]) -> (http::response::Parts, Bytes) {
    let mut request = http::Request::get(format!("{}{path}", stack.url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    http_request(request.body(Full::new(Bytes::new())).unwrap()).await
}

fn header<'a>(parts: &'a http::response::Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).map(|v| v.to_str().unwrap())
}

/// The files under `dir` as a binary embeds them.
fn embedded(dir: &std::path::Path) -> gateway::EmbeddedUi {
    fn walk(root: &std::path::Path, dir: &std::path::Path, files: &mut Vec<gateway::EmbeddedFile>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let name = path.strip_prefix(root).unwrap().to_str().unwrap().to_string();
                files.push(gateway::EmbeddedFile {
                    path: Box::leak(name.into_boxed_str()),
                    contents: Box::leak(std::fs::read(&path).unwrap().into_boxed_slice()),
                });
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    gateway::EmbeddedUi::new(Box::leak(files.into_boxed_slice()))
}

#[derive(Debug, Clone, Copy)]
enum Served {
    FromDir,
    Embedded,
}

async fn started(served: Served) -> (tempfile::TempDir, Stack) {
    let dir = built_ui();
    let web_dir = dir.path().to_path_buf();
    let stack = Stack::start_with(move |config| match served {
        Served::FromDir => config.web_dir = Some(web_dir),
        Served::Embedded => config.embedded_ui = Some(embedded(&web_dir)),
    })
    .await;
    (dir, stack)
}

#[tokio::test]
async fn assets_go_out_precompressed_as_accepted_from_a_directory() {
    assets_go_out_precompressed_as_accepted(Served::FromDir).await;
}

#[tokio::test]
async fn assets_go_out_precompressed_as_accepted_when_embedded() {
    assets_go_out_precompressed_as_accepted(Served::Embedded).await;
}

async fn assets_go_out_precompressed_as_accepted(served: Served) {
    let (_dir, stack) = started(served).await;
    // (Accept-Encoding, the encoding sent, the body sent)
    let cases: &[(Option<&str>, Option<&str>, &str)] = &[
        (None, None, "console.log(1)"),
        (Some("gzip, deflate, br"), Some("br"), "br:app"),
        (Some("br"), Some("br"), "br:app"),
        (Some("gzip"), Some("gzip"), "gz:app"),
        (Some("gzip;q=1.0, br;q=0.5"), Some("gzip"), "gz:app"),
        (Some("br;q=0, gzip"), Some("gzip"), "gz:app"),
        (Some("br;q=0, gzip;q=0"), None, "console.log(1)"),
        (Some("identity"), None, "console.log(1)"),
        (Some("zstd"), None, "console.log(1)"),
    ];
    for &(accept, encoding, body) in cases {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept-encoding", a)).into_iter().collect();
        let (parts, sent) = get(&stack, SCRIPT, &headers).await;
        assert_eq!(parts.status, 200, "{accept:?}");
        assert_eq!(header(&parts, "content-encoding"), encoding, "{accept:?}");
        assert_eq!(String::from_utf8_lossy(&sent), body, "{accept:?}");
        assert_eq!(
            header(&parts, "content-type"),
            Some("text/javascript"),
            "the original's type, {accept:?}"
        );
        assert_eq!(header(&parts, "vary"), Some("accept-encoding"), "{accept:?}");
        assert_eq!(header(&parts, "cache-control"), Some(LONG_CACHE), "{accept:?}");
        assert_eq!(header(&parts, "content-length"), Some(body.len().to_string().as_str()));
    }

    // index.html, at / and at any route of the UI: compressed too, and still revalidated.
    for path in ["/", "/index.html", "/c/42"] {
        let (parts, sent) = get(&stack, path, &[("accept-encoding", "gzip, br")]).await;
        assert_eq!(parts.status, 200, "{path}");
        assert_eq!(header(&parts, "content-encoding"), Some("br"), "{path}");
        assert_eq!(&sent[..], b"br:index", "{path}");
        assert!(
            header(&parts, "content-type").unwrap().starts_with("text/html"),
            "{path}"
        );
        assert_eq!(header(&parts, "cache-control"), Some("no-cache"), "{path}");
        assert_eq!(header(&parts, "vary"), Some("accept-encoding"), "{path}");
        let (parts, sent) = get(&stack, path, &[]).await;
        assert_eq!(header(&parts, "content-encoding"), None, "{path}");
        assert_eq!(String::from_utf8_lossy(&sent), INDEX, "{path}");
    }

    // A file without copies is sent as it is, whatever the client accepts.
    let (parts, sent) = get(&stack, "/assets/font-1a2b.woff2", &[("accept-encoding", "br, gzip")]).await;
    assert_eq!(parts.status, 200);
    assert_eq!(header(&parts, "content-encoding"), None);
    assert_eq!(&sent[..], b"wOF2");
    assert_eq!(header(&parts, "cache-control"), Some(LONG_CACHE));

    // Revalidating the compressed variant keeps it immutable (a directory's files by their
    // modification time, embedded ones by ETag).
    let (first, _) = get(&stack, SCRIPT, &[("accept-encoding", "br")]).await;
    let validator = match (header(&first, "etag"), header(&first, "last-modified")) {
        (Some(tag), _) => ("if-none-match", tag.to_string()),
        (None, Some(modified)) => ("if-modified-since", modified.to_string()),
        (None, None) => panic!("{served:?}: no validator"),
    };
    let (parts, sent) = get(
        &stack,
        SCRIPT,
        &[("accept-encoding", "br"), (validator.0, &validator.1)],
    )
    .await;
    assert_eq!(parts.status, 304, "{served:?}");
    assert!(sent.is_empty());
    assert_eq!(header(&parts, "cache-control"), Some(LONG_CACHE));

    // A missing copy of a missing file is a 404, not the UI.
    let (parts, _) = get(&stack, "/app.js.br", &[("accept-encoding", "br")]).await;
    assert_eq!(parts.status, 404);
    stack.shutdown().await;
}

#[tokio::test]
async fn grpc_web_answers_are_never_reencoded() {
    let (_dir, stack) = started(Served::FromDir).await;
    for mode in [WebMode::Binary, WebMode::Text] {
        let login = user::LoginRequest {
            login: "ada".into(),
            password: PASSWORD.into(),
            ..Default::default()
        };
        let call = grpc_web_call(stack.addr, LOGIN, &login, mode, &[("accept-encoding", "br, gzip")]).await;
        assert_eq!(call.http_status, 200);
        assert!(
            !call.headers.contains_key("content-encoding"),
            "{:?}",
            call.headers.get("content-encoding")
        );
        let (messages, code, message) = call.collect::<user::LoginResponse>().await;
        assert_eq!(code, tonic::Code::Ok, "{message}");
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].user.as_ref().unwrap().id, USER_ID);
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn a_web_dir_wins_over_the_embedded_build_and_an_empty_build_says_so() {
    let dir = built_ui();
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("index.html"), "from the directory").unwrap();
    let (web_dir, embedded_ui) = (other.path().to_path_buf(), embedded(dir.path()));
    let stack = Stack::start_with(move |config| {
        config.web_dir = Some(web_dir);
        config.embedded_ui = Some(embedded_ui);
    })
    .await;
    let (parts, sent) = get(&stack, "/", &[]).await;
    assert_eq!(parts.status, 200);
    assert_eq!(&sent[..], b"from the directory");
    stack.shutdown().await;

    // A binary built before the UI was: the page saying so, and no file.
    let stack = Stack::start_with(|config| config.embedded_ui = Some(gateway::EmbeddedUi::new(&[]))).await;
    let (parts, sent) = get(&stack, "/chat/1", &[]).await;
    assert_eq!(parts.status, 200);
    assert!(String::from_utf8_lossy(&sent).contains("not built yet"));
    let (parts, _) = get(&stack, SCRIPT, &[]).await;
    assert_eq!(parts.status, 404);
    stack.shutdown().await;
}
