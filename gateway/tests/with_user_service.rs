//! The gateway in front of the real user-service: sign-up and sign-in over gRPC-web, and edge
//! auth verifying real tokens with the keys it fetched from user-service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use parley_proto::user::v1 as user;
use support::*;
use tonic::Code;

const REGISTER: &str = "/parley.user.v1.UserService/Register";
const LOGIN: &str = "/parley.user.v1.UserService/Login";
const GET_ME: &str = "/parley.user.v1.UserService/GetMe";

#[tokio::test]
async fn sign_up_sign_in_and_call_a_protected_method_over_grpc_web() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let user_url = format!("http://{}", listener.local_addr().unwrap());
    let config = user_service::Config::new(user_service::Config::default_database_url(dir.path()), dir.path());
    tokio::spawn(user_service::serve(listener, config, std::future::pending()));

    let mut config = gateway::Config::new(user_url, closed_port_url().await);
    config.health_check_interval = Duration::from_millis(100);
    let stack = Stack::gateway(config, Default::default()).await;

    let register = grpc_web_call(
        stack.addr,
        REGISTER,
        &user::RegisterRequest {
            username: "grace".into(),
            password: "a long enough password".into(),
            email: None,
            display_name: Some("Grace".into()),
            ..Default::default()
        },
        WebMode::Text,
        &[],
    )
    .await;
    let (replies, code, message) = register.collect::<user::RegisterResponse>().await;
    assert_eq!(code, Code::Ok, "{message}");
    let user_id = replies[0].user.as_ref().unwrap().id;

    let login = grpc_web_call(
        stack.addr,
        LOGIN,
        &user::LoginRequest {
            login: "grace".into(),
            password: "a long enough password".into(),
            ..Default::default()
        },
        WebMode::Binary,
        &[],
    )
    .await;
    let (replies, code, message) = login.collect::<user::LoginResponse>().await;
    assert_eq!(code, Code::Ok, "{message}");
    let auth = bearer(&replies[0].access_token);

    let me = grpc_web_call(
        stack.addr,
        GET_ME,
        &user::GetMeRequest {},
        WebMode::Binary,
        &[("authorization", &auth)],
    )
    .await;
    let (replies, code, message) = me.collect::<user::GetMeResponse>().await;
    assert_eq!(code, Code::Ok, "{message}");
    assert_eq!(replies[0].user.as_ref().unwrap().id, user_id);

    let tampered = format!("{}x", auth);
    let me = grpc_web_call(
        stack.addr,
        GET_ME,
        &user::GetMeRequest {},
        WebMode::Binary,
        &[("authorization", &tampered)],
    )
    .await;
    let (_, code, _) = me.collect::<user::GetMeResponse>().await;
    assert_eq!(code, Code::Unauthenticated);
    stack.shutdown().await;
}

#[derive(clap::Parser)]
struct VerifierFlags {
    #[command(flatten)]
    verifier: parley_service_kit::access_token::VerifierOptions,
}

#[tokio::test]
async fn a_logged_out_token_is_refused_at_the_edge_within_the_refresh_interval() {
    use clap::Parser;
    use std::time::Instant;
    const LIST_SESSIONS: &str = "/parley.chat.v1.SessionService/ListSessions";
    // Well under the 5 s default: with it, the token would almost surely still pass.
    const REFUSED_WITHIN: Duration = Duration::from_millis(1_000);

    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let user_url = format!("http://{}", listener.local_addr().unwrap());
    let config = user_service::Config::new(user_service::Config::default_database_url(dir.path()), dir.path());
    tokio::spawn(user_service::serve(listener, config, std::future::pending()));

    let flags = VerifierFlags::try_parse_from(["gateway", "--access-token-refresh-ms", "100"]).unwrap();
    // chat-service is down: a call the edge lets through answers UNAVAILABLE, one it refuses
    // UNAUTHENTICATED.
    let mut config = gateway::Config::new(user_url, closed_port_url().await);
    config.health_check_interval = Duration::from_millis(100);
    config.access_token_refresh = flags.verifier.refresh_interval();
    let stack = Stack::gateway(config, Default::default()).await;

    let mut users = user::user_service_client::UserServiceClient::new(channel_to(&stack.url()).await);
    let signed_up = users
        .register(user::RegisterRequest {
            username: "lin".into(),
            password: "a long enough password".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let auth = bearer(&signed_up.access_token);
    let list = || async {
        let call = grpc_web_call(
            stack.addr,
            LIST_SESSIONS,
            &parley_proto::chat::v1::ListSessionsRequest::default(),
            WebMode::Binary,
            &[("authorization", &auth)],
        )
        .await;
        call.collect::<()>().await.1
    };
    assert_eq!(list().await, Code::Unavailable, "the edge refused a valid token");

    users
        .logout(user::LogoutRequest {
            refresh_token: signed_up.refresh_token,
        })
        .await
        .unwrap();
    let logged_out = Instant::now();
    parley_testkit::wait::eventually("the logged-out token refused at the edge", REFUSED_WITHIN, || async {
        (list().await == Code::Unauthenticated).then_some(())
    })
    .await;
    println!(
        "logged-out token refused at the edge {:?} after Logout (refresh every 100 ms)",
        logged_out.elapsed()
    );
    stack.shutdown().await;
}
