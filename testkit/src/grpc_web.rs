//! A small gRPC-web client written from the protocol description (length-prefixed frames, a
//! trailer frame flagged 0x80, base64 in text mode) over plain HTTP/1.1 or HTTP/2 (h2c, prior
//! knowledge), so tests drive the gateway the way a browser does. Used by the gateway's tests
//! and the root package's.

use std::collections::VecDeque;
use std::net::SocketAddr;

use base64::Engine;
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebMode {
    Binary,
    Text,
}

/// The HTTP version a call goes over. Browsers use HTTP/2 wherever the server offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    Http1,
    /// Cleartext HTTP/2 with prior knowledge (h2c), as behind a TLS-terminating proxy.
    Http2,
}

/// One call's response as a gRPC-web client reads it, frame by frame.
pub struct GrpcWebResponse {
    pub http_status: http::StatusCode,
    pub headers: http::HeaderMap,
    body: hyper::body::Incoming,
    mode: WebMode,
    /// Undecoded base64 in text mode.
    text: Vec<u8>,
    decoded: BytesMut,
    pending: VecDeque<WebFrame>,
    done: bool,
}

#[derive(Debug)]
pub enum WebFrame {
    Message(Bytes),
    Trailers(http::HeaderMap),
}

impl GrpcWebResponse {
    /// The next message or the trailers; `None` at the end of the body.
    pub async fn next_frame(&mut self) -> Option<WebFrame> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            if self.done {
                return None;
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.push(&data);
                    }
                }
                Some(Err(e)) => panic!("gRPC-web body failed: {e}"),
                None => self.done = true,
            }
        }
    }

    fn push(&mut self, data: &[u8]) {
        match self.mode {
            WebMode::Binary => self.decoded.extend_from_slice(data),
            WebMode::Text => {
                self.text.extend_from_slice(data);
                // Each 4-character group decodes on its own (frames are padded separately).
                let whole = self.text.len() / 4 * 4;
                for group in self.text[..whole].chunks(4) {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(group)
                        .unwrap_or_else(|e| panic!("bad base64 from the gateway: {e}"));
                    self.decoded.extend_from_slice(&bytes);
                }
                self.text.drain(..whole);
            }
        }
        while self.decoded.len() >= 5 {
            let len = u32::from_be_bytes([self.decoded[1], self.decoded[2], self.decoded[3], self.decoded[4]]) as usize;
            if self.decoded.len() < 5 + len {
                break;
            }
            let flag = self.decoded[0];
            self.decoded.advance(5);
            let payload = self.decoded.split_to(len).freeze();
            if flag & 0x80 != 0 {
                let mut trailers = http::HeaderMap::new();
                for line in String::from_utf8_lossy(&payload).split("\r\n") {
                    if let Some((name, value)) = line.split_once(':') {
                        trailers.insert(
                            http::HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes()).unwrap(),
                            http::HeaderValue::from_str(value.trim()).unwrap(),
                        );
                    }
                }
                self.pending.push_back(WebFrame::Trailers(trailers));
            } else {
                self.pending.push_back(WebFrame::Message(payload));
            }
        }
    }

    /// Reads everything: the messages and the final status (from the trailers, or from the
    /// headers of a trailers-only response).
    pub async fn collect<M: Message + Default>(mut self) -> (Vec<M>, tonic::Code, String) {
        let mut messages = Vec::new();
        let mut status = self.headers.get("grpc-status").map(|v| v.as_bytes().to_vec());
        let mut message = self
            .headers
            .get("grpc-message")
            .map(|v| percent_decode(v.to_str().unwrap()))
            .unwrap_or_default();
        while let Some(frame) = self.next_frame().await {
            match frame {
                WebFrame::Message(bytes) => messages.push(M::decode(bytes).unwrap()),
                WebFrame::Trailers(trailers) => {
                    status = trailers.get("grpc-status").map(|v| v.as_bytes().to_vec());
                    message = trailers
                        .get("grpc-message")
                        .map(|v| percent_decode(v.to_str().unwrap()))
                        .unwrap_or_default();
                }
            }
        }
        let status = status.unwrap_or_else(|| panic!("no grpc-status in headers or trailers"));
        (messages, tonic::Code::from_bytes(&status), message)
    }
}

/// `grpc-message` is percent-encoded on the wire.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = value.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn frame(message: &impl Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    framed.extend_from_slice(&payload);
    framed
}

/// Calls `path` over HTTP/1.1 gRPC-web.
pub async fn grpc_web_call(
    addr: SocketAddr,
    path: &str,
    message: &impl Message,
    mode: WebMode,
    headers: &[(&str, &str)],
) -> GrpcWebResponse {
    grpc_web_call_over(HttpVersion::Http1, addr, path, message, mode, headers).await
}

/// Calls `path` over gRPC-web on `version`; panics if the server answers on another.
pub async fn grpc_web_call_over(
    version: HttpVersion,
    addr: SocketAddr,
    path: &str,
    message: &impl Message,
    mode: WebMode,
    headers: &[(&str, &str)],
) -> GrpcWebResponse {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(version == HttpVersion::Http2)
        .build_http::<Full<Bytes>>();
    let (content_type, body) = match mode {
        WebMode::Binary => ("application/grpc-web+proto", frame(message)),
        WebMode::Text => (
            "application/grpc-web-text",
            base64::engine::general_purpose::STANDARD
                .encode(frame(message))
                .into_bytes(),
        ),
    };
    let mut request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("accept", content_type)
        .header("x-grpc-web", "1");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap_or_else(|e| panic!("gRPC-web request to {path} failed: {e}"));
    let expected = match version {
        HttpVersion::Http1 => http::Version::HTTP_11,
        HttpVersion::Http2 => http::Version::HTTP_2,
    };
    assert_eq!(response.version(), expected, "{path}");
    let (parts, body) = response.into_parts();
    GrpcWebResponse {
        http_status: parts.status,
        headers: parts.headers,
        body,
        mode,
        text: Vec::new(),
        decoded: BytesMut::new(),
        pending: VecDeque::new(),
        done: false,
    }
}

/// Plain HTTP/1.1 request (static files, CORS preflights).
pub async fn http_request(request: http::Request<Full<Bytes>>) -> (http::response::Parts, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts, body.collect().await.unwrap().to_bytes())
}
