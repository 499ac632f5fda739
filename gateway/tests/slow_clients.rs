//! Connections that hold a slot without using it are closed: one that never sends a request
//! (after the header timeout), one with no call open (after the idle timeout); one with a
//! stream open stays however long the stream runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use parley_proto::chat::v1 as chat;
use prost::Message;
use support::*;
use tokio::io::AsyncReadExt;

const HEADER_TIMEOUT: Duration = Duration::from_millis(400);
const IDLE_TIMEOUT: Duration = Duration::from_millis(800);

async fn stack() -> Stack {
    Stack::start_with(|config| {
        config.header_timeout = HEADER_TIMEOUT;
        config.idle_connection_timeout = IDLE_TIMEOUT;
    })
    .await
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_closed_after_the_header_timeout() {
    let stack = stack().await;
    let mut silent = tokio::net::TcpStream::connect(stack.addr).await.unwrap();
    let connected = Instant::now();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(WAIT, silent.read(&mut buffer))
        .await
        .expect("a silent connection was kept open");
    // Closed (end of stream, or a reset) without a byte of answer.
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(
        connected.elapsed() >= HEADER_TIMEOUT,
        "closed before the header timeout: {:?}",
        connected.elapsed()
    );

    // A client half-way through its first request's headers is closed too.
    let mut trickling = tokio::net::TcpStream::connect(stack.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut trickling, b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let read = tokio::time::timeout(WAIT, trickling.read(&mut buffer))
        .await
        .expect("a connection that never finished its headers was kept open");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    stack.shutdown().await;
}

/// An HTTP/2 connection to the gateway that has made one health check and then sits idle;
/// resolves when the gateway closes it.
async fn one_check_then_idle(addr: std::net::SocketAddr) -> Instant {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let call = async {
        let mut send = send.ready().await.unwrap();
        let request = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (response, mut body) = send.send_request(request, false).unwrap();
        let message = tonic_health::pb::HealthCheckRequest { service: String::new() }.encode_to_vec();
        let mut frame = vec![0];
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(&message);
        body.send_data(Bytes::from(frame), true).unwrap();
        let mut body = response.await.unwrap().into_body();
        while body.data().await.is_some() {}
        body.trailers().await.unwrap();
        send
    };
    let send = tokio::select! {
        send = call => send,
        ended = &mut connection => panic!("the connection ended during the call: {ended:?}"),
    };
    let idle_since = Instant::now();
    tokio::time::timeout(WAIT, connection)
        .await
        .expect("an idle HTTP/2 connection was kept open")
        .ok();
    drop(send);
    idle_since
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let stack = stack().await;
    let idle_since = one_check_then_idle(stack.addr).await;
    // The gateway's clock starts when it sent the trailers, a moment before this client read them.
    assert!(
        idle_since.elapsed() + Duration::from_millis(100) >= IDLE_TIMEOUT,
        "closed before the idle timeout: {:?}",
        idle_since.elapsed()
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_connection_with_a_stream_open_is_not_closed() {
    let stack = stack().await;
    let mut messages = chat::message_service_client::MessageServiceClient::new(channel_to(&stack.url()).await);
    let mut request = tonic::Request::new(chat::SendMessageRequest {
        session_id: 1,
        content: "slow".into(),
        api_config_id: None,
        version_of_id: None,
    });
    request
        .metadata_mut()
        .insert("authorization", bearer(&access_token(USER_ID)).parse().unwrap());
    let mut stream = messages.send_message(request).await.unwrap().into_inner();
    // Several idle timeouts (and header timeouts) long, the stream still delivers.
    let until = Instant::now() + 4 * IDLE_TIMEOUT;
    let mut events = 0;
    while Instant::now() < until {
        let event = tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("the stream stalled")
            .unwrap_or_else(|status| panic!("the stream ended: {status:?}"));
        assert!(event.is_some(), "the stream ended early");
        events += 1;
    }
    assert!(events > 10, "{events}");
    drop(stream);
    stack.shutdown().await;
}
