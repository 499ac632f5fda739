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
