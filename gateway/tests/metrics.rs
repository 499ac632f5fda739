//! Prometheus metrics on a port of their own: calls by method and code, latency, calls in
//! flight and open connections; a made-up method is labelled `other`, not by its path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use parley_proto::chat::v1 as chat;
use parley_proto::user::v1 as user;
use support::*;
use tokio::net::TcpListener;

async fn scrape(metrics: std::net::SocketAddr) -> String {
    let (parts, body) = http_request(
        http::Request::get(format!("http://{metrics}/metrics"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(parts.status, 200);
    assert!(
        parts.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{parts:?}"
    );
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_code_on_their_own_port() {
    let observed = Arc::new(Observed::default());
    let user_url = serve_upstream(fake_user_server(observed.clone())).await;
    let chat_url = serve_upstream(fake_chat_server(observed.clone())).await;
    let config = gateway::Config::new(user_url, chat_url);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = metrics_listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = tokio::spawn(gateway::serve_with_metrics(
        listener,
        Some(metrics_listener),
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    let url = format!("http://{addr}");

    let channel = channel_to(&url).await;
    let mut users = user::user_service_client::UserServiceClient::new(channel.clone());
    users
        .login(user::LoginRequest {
            login: "ada".into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let refused = users.get_me(user::GetMeRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    // A path nobody serves: counted, but not by a label a client chose.
    let made_up = grpc_web_call(addr, "/parley.user.v1.UserService/MadeUp123", &(), WebMode::Binary, &[]).await;
    let _ = made_up.collect::<()>().await;
    // A stream held open is a call in flight.
    let mut request = tonic::Request::new(chat::SendMessageRequest {
        session_id: 1,
        content: "slow".into(),
        api_config_id: None,
        version_of_id: None,
    });
    request
        .metadata_mut()
        .insert("authorization", bearer(&access_token(USER_ID)).parse().unwrap());
    let mut stream = chat::message_service_client::MessageServiceClient::new(channel)
        .send_message(request)
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap();

    let expected = [
        r#"parley_gateway_calls_total{method="/parley.user.v1.UserService/Login",code="Ok"} 1"#,
        r#"parley_gateway_calls_total{method="/parley.user.v1.UserService/GetMe",code="Unauthenticated"} 1"#,
        // Under a routed service, so refused by auth before routing.
        r#"parley_gateway_calls_total{method="other",code="Unauthenticated"} 1"#,
        r#"parley_gateway_call_duration_seconds_count{method="/parley.user.v1.UserService/Login"} 1"#,
        "parley_gateway_calls_in_flight 1",
    ];
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(metrics).await;
        if expected.iter().all(|line| text.contains(line)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for line in expected {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    assert!(!text.contains("MadeUp123"), "{text}");
    let connections: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("parley_gateway_connections "))
        .unwrap_or_else(|| panic!("no connections gauge in:\n{text}"))
        .trim()
        .parse()
        .unwrap();
    assert!(connections >= 1, "{text}");

    // The stream ended: nothing in flight, and it counted as cancelled.
    drop(stream);
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(metrics).await;
        if text.contains("parley_gateway_calls_in_flight 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(text.contains("parley_gateway_calls_in_flight 0"), "{text}");
    assert!(
        text.contains(
            r#"parley_gateway_calls_total{method="/parley.chat.v1.MessageService/SendMessage",code="Cancelled"} 1"#
        ),
        "{text}"
    );

    // The public port does not serve them.
    let (parts, body) = http_request(
        http::Request::get(format!("{url}/metrics"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert!(
        !String::from_utf8_lossy(&body).contains("parley_gateway_calls_total"),
        "{parts:?}"
    );
    let _ = stop.send(());
    gateway.await.unwrap().unwrap();
}
