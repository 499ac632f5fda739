//! The gateway in front of in-test upstreams: gRPC-web (binary and text) and native gRPC
//! through the generic proxy, edge auth, rate limits, limits, CORS, health, reflection,
//! cancellation, a down upstream and the web UI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use parley_proto::chat::v1 as chat;
use parley_proto::chat::v1::chat_event::Event;
use parley_proto::llm::v1 as llm;
use parley_proto::user::v1 as user;
use parley_service_kit::grpc_status::retry_delay;
use parley_service_kit::trace_context::trace_id;
use support::*;
use tonic::Code;
use tonic::metadata::MetadataValue;

const LOGIN: &str = "/parley.user.v1.UserService/Login";
const REFRESH_TOKEN: &str = "/parley.user.v1.UserService/RefreshToken";
const LOGOUT: &str = "/parley.user.v1.UserService/Logout";
const GET_ME: &str = "/parley.user.v1.UserService/GetMe";
const SEND_MESSAGE: &str = "/parley.chat.v1.MessageService/SendMessage";
const LONG_CACHE: &str = "public, max-age=31536000, immutable";
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn login_request(password: &str) -> user::LoginRequest {
    user::LoginRequest {
        login: "ada".into(),
        password: password.into(),
        ..Default::default()
    }
}

fn send_request(content: &str) -> chat::SendMessageRequest {
    chat::SendMessageRequest {
        session_id: 1,
        content: content.into(),
        api_config_id: None,
        version_of_id: None,
    }
}

/// The status a gRPC-web call ends with, whatever it answered.
async fn status_of(
    addr: std::net::SocketAddr,
    path: &str,
    message: &impl prost::Message,
    headers: &[(&str, &str)],
) -> (Code, String) {
    let call = grpc_web_call(addr, path, message, WebMode::Binary, headers).await;
    let (_, code, message) = call.collect::<()>().await;
    (code, message)
}

fn kinds(events: &[chat::SendMessageResponse]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e.event.as_ref().and_then(|e| e.event.as_ref()) {
            Some(Event::UserMessage(m)) => format!("user:{}", m.content),
            Some(Event::AssistantStarted(_)) => "started".to_string(),
            Some(Event::Delta(d)) => format!("delta:{d}"),
            Some(Event::Completed(m)) => format!("completed:{}", m.content),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn grpc_web_binary_and_text_stream_events_in_order_over_http1_and_http2() {
    let stack = Stack::start().await;
    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        for mode in [WebMode::Binary, WebMode::Text] {
            let login = grpc_web_call_over(version, stack.addr, LOGIN, &login_request(PASSWORD), mode, &[]).await;
            assert_eq!(login.http_status, 200);
            let (replies, code, message) = login.collect::<user::LoginResponse>().await;
            assert_eq!(code, Code::Ok, "{version:?} {mode:?}: {message}");
            let token = replies[0].access_token.clone();

            let auth = bearer(&token);
            let mut stream = grpc_web_call_over(
                version,
                stack.addr,
                SEND_MESSAGE,
                &send_request("hi"),
                mode,
                &[
                    ("authorization", &auth),
                    ("x-request-id", "req-123"),
                    ("traceparent", TRACEPARENT),
                    ("tracestate", "vendor=opaque"),
                ],
            )
            .await;
            assert_eq!(stream.headers["x-request-id"], "req-123");
            // The first event arrives before the stream ends: nothing is buffered.
            match stream.next_frame().await {
                Some(WebFrame::Message(_)) => {}
                other => panic!("{version:?} {mode:?}: expected a first event, got {other:?}"),
            }
            let (events, code, message) = stream.collect::<chat::SendMessageResponse>().await;
            assert_eq!(code, Code::Ok, "{version:?} {mode:?}: {message}");
            assert_eq!(
                kinds(&events),
                ["started", "delta:Hel", "delta:lo", "completed:Hello"],
                "{version:?} {mode:?}"
            );

            let seen = stack.observed.last_headers("SendMessage");
            assert_eq!(seen["x-request-id"], "req-123");
            assert_eq!(seen["authorization"], auth.as_str());
            assert_eq!(seen["tracestate"], "vendor=opaque");
            // The upstream continues the caller's trace, as a child of the gateway's span.
            let forwarded = seen["traceparent"].to_str().unwrap();
            assert_eq!(trace_id(forwarded), Some(TRACE_ID), "{forwarded}");
            assert_ne!(forwarded, TRACEPARENT, "the gateway opened no span of its own");
            assert!(forwarded.ends_with("-01"), "sampling flag lost: {forwarded}");
        }
    }
    // A call without trace context gets one, and a request id, before it goes upstream.
    let login = grpc_web_call(stack.addr, LOGIN, &login_request(PASSWORD), WebMode::Binary, &[]).await;
    let generated = login.headers["x-request-id"].to_str().unwrap().to_string();
    let _ = login.collect::<user::LoginResponse>().await;
    let seen = stack.observed.last_headers("Login");
    assert_eq!(seen["x-request-id"], generated.as_str());
    assert!(trace_id(seen["traceparent"].to_str().unwrap()).is_some());
    stack.shutdown().await;
}

#[tokio::test]
async fn errors_keep_code_and_message_over_grpc_web() {
    let stack = Stack::start().await;
    for mode in [WebMode::Binary, WebMode::Text] {
        // Trailers-only response.
        let wrong = grpc_web_call(stack.addr, LOGIN, &login_request("wrong"), mode, &[]).await;
        let (_, code, message) = wrong.collect::<user::LoginResponse>().await;
        assert_eq!(
            (code, message.as_str()),
            (Code::Unauthenticated, "wrong login or password")
        );

        // An error after some messages, in real trailers.
        let auth = bearer(&access_token(USER_ID));
        let failing = grpc_web_call(
            stack.addr,
            SEND_MESSAGE,
            &send_request("fail"),
            mode,
            &[("authorization", &auth)],
        )
        .await;
        let (events, code, message) = failing.collect::<chat::SendMessageResponse>().await;
        assert_eq!(events.len(), 5);
        assert_eq!(code, Code::FailedPrecondition);
        assert_eq!(message, "provider refused the key");
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn native_grpc_through_the_same_port() {
    let stack = Stack::start().await;
    let mut users = user::user_service_client::UserServiceClient::connect(stack.url())
        .await
        .unwrap();
    let token = users
        .login(login_request(PASSWORD))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let mut messages = chat::message_service_client::MessageServiceClient::connect(stack.url())
        .await
        .unwrap();
    let mut request = tonic::Request::new(send_request("hi"));
    request
        .metadata_mut()
        .insert("authorization", MetadataValue::try_from(bearer(&token)).unwrap());
    let mut stream = messages.send_message(request).await.unwrap().into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.message().await.unwrap() {
        events.push(event);
    }
    assert_eq!(kinds(&events)[0], "user:hi");
    assert_eq!(kinds(&events)[4], "completed:Hello");
    stack.shutdown().await;
}

#[tokio::test]
async fn protected_methods_need_a_valid_token_at_the_edge() {
    let stack = Stack::start().await;
    let mut users = user::user_service_client::UserServiceClient::connect(stack.url())
        .await
        .unwrap();
    let status = users.get_me(user::GetMeRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let mut forged = tonic::Request::new(user::GetMeRequest {});
    forged
        .metadata_mut()
        .insert("authorization", MetadataValue::from_static("Bearer not.a.token"));
    assert_eq!(users.get_me(forged).await.unwrap_err().code(), Code::Unauthenticated);

    let stream = grpc_web_call(stack.addr, SEND_MESSAGE, &send_request("hi"), WebMode::Binary, &[]).await;
    let (_, code, _) = stream.collect::<chat::SendMessageResponse>().await;
    assert_eq!(code, Code::Unauthenticated);
    // Nothing protected reached an upstream.
    assert!(
        !stack
            .observed
            .paths()
            .iter()
            .any(|p| p == "GetMe" || p == "SendMessage")
    );

    let mut good = tonic::Request::new(user::GetMeRequest {});
    good.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(bearer(&access_token(USER_ID))).unwrap(),
    );
    assert_eq!(users.get_me(good).await.unwrap().into_inner().user.unwrap().id, USER_ID);
    stack.shutdown().await;
}

#[tokio::test]
async fn internal_and_unknown_services_are_unimplemented() {
    let stack = Stack::start().await;
    let mut llm = llm::llm_service_client::LlmServiceClient::connect(stack.url())
        .await
        .unwrap();
    let mut request = tonic::Request::new(llm::ListModelsRequest::default());
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(bearer(&access_token(USER_ID))).unwrap(),
    );
    assert_eq!(llm.list_models(request).await.unwrap_err().code(), Code::Unimplemented);

    let auth = bearer(&access_token(USER_ID));
    let web = grpc_web_call(
        stack.addr,
        "/parley.llm.v1.LlmService/ListModels",
        &llm::ListModelsRequest::default(),
        WebMode::Binary,
        &[("authorization", &auth)],
    )
    .await;
    let (_, code, _) = web.collect::<llm::ListModelsResponse>().await;
    assert_eq!(code, Code::Unimplemented);

    // Signed in or not, it looks the same: no hint that something is behind it.
    for path in [
        "/parley.llm.v1.LlmService/StreamChat",
        "/parley.chat.internal.v1.AccountDataService/EraseAccountData",
        "/parley.chat.v1.NoSuchService/Anything",
    ] {
        let web = grpc_web_call(stack.addr, path, &llm::ListModelsRequest::default(), WebMode::Text, &[]).await;
        let (_, code, _) = web.collect::<llm::ListModelsResponse>().await;
        assert_eq!(code, Code::Unimplemented, "{path}");
    }
    // An unknown method of a routed service is the upstream's to answer.
    let auth = bearer(&access_token(USER_ID));
    let web = grpc_web_call(
        stack.addr,
        "/parley.user.v1.UserService/NoSuchMethod",
        &llm::ListModelsRequest::default(),
        WebMode::Binary,
        &[("authorization", &auth)],
    )
    .await;
    let (_, code, _) = web.collect::<llm::ListModelsResponse>().await;
    assert_eq!(code, Code::Unimplemented);
    stack.shutdown().await;
}

#[tokio::test]
async fn address_rate_limit_trips_and_recovers() {
    let stack = Stack::start_with(|config| {
        config.auth_rate_limit = Some(gateway::RateLimit {
            burst: 2,
            period: Duration::from_secs(1),
        });
    })
    .await;
    let mut users = user::user_service_client::UserServiceClient::connect(stack.url())
        .await
        .unwrap();
    for _ in 0..2 {
        users.login(login_request(PASSWORD)).await.unwrap();
    }
    // A client that is not a trusted proxy cannot pick a fresh address with X-Forwarded-For.
    let mut spoofed = tonic::Request::new(login_request(PASSWORD));
    spoofed
        .metadata_mut()
        .insert("x-forwarded-for", MetadataValue::from_static("203.0.113.77"));
    let status = users.login(spoofed).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let delay = retry_delay(&status).expect("a retry delay");
    assert!(delay > Duration::ZERO && delay <= Duration::from_secs(1), "{delay:?}");

    tokio::time::sleep(delay).await;
    users.login(login_request(PASSWORD)).await.unwrap();
    stack.shutdown().await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    let stack = Stack::start_with(|config| {
        config.auth_rate_limit = Some(gateway::RateLimit {
            burst: 1,
            period: Duration::from_secs(60),
        });
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let mut users = user::user_service_client::UserServiceClient::connect(stack.url())
        .await
        .unwrap();
    let login_from = |ip: &'static str| {
        let mut request = tonic::Request::new(login_request(PASSWORD));
        request
            .metadata_mut()
            .insert("x-forwarded-for", MetadataValue::from_static(ip));
        request
    };
    users.login(login_from("203.0.113.1")).await.unwrap();
    users.login(login_from("203.0.113.2")).await.unwrap();
    let status = users.login(login_from("203.0.113.1")).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);

    // A list the proxy did not end with an address names nobody but the proxy: whatever the
    // client wrote to the left of it is never a fresh address.
    users.login(login_from("198.51.100.7, x")).await.unwrap();
    for forwarded in ["198.51.100.8, x", "198.51.100.9, unknown", "198.51.100.10,"] {
        let status = users.login(login_from(forwarded)).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{forwarded}");
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn user_rate_limit_on_messages() {
    let stack = Stack::start_with(|config| {
        config.generation_rate_limit = Some(gateway::RateLimit {
            burst: 1,
            period: Duration::from_secs(60),
        });
    })
    .await;
    let send = |user_id: i64| {
        let auth = bearer(&access_token(user_id));
        let addr = stack.addr;
        async move {
            let stream = grpc_web_call(
                addr,
                SEND_MESSAGE,
                &send_request("hi"),
                WebMode::Binary,
                &[("authorization", &auth)],
            )
            .await;
            stream.collect::<chat::SendMessageResponse>().await.1
        }
    };
    assert_eq!(send(1).await, Code::Ok);
    assert_eq!(send(1).await, Code::ResourceExhausted);
    assert_eq!(send(2).await, Code::Ok, "another user has their own allowance");
    stack.shutdown().await;
}

#[tokio::test]
async fn token_refreshes_have_their_own_allowance_and_logout_is_limited_too() {
    let stack = Stack::start_with(|config| {
        config.auth_rate_limit = Some(gateway::RateLimit {
            burst: 1,
            period: Duration::from_secs(60),
        });
        config.refresh_rate_limit = Some(gateway::RateLimit {
            burst: 2,
            period: Duration::from_secs(60),
        });
    })
    .await;
    let code_of = |path: &'static str| {
        let addr = stack.addr;
        async move {
            match path {
                LOGIN => status_of(addr, path, &login_request(PASSWORD), &[]).await,
                _ => {
                    let request = user::RefreshTokenRequest {
                        refresh_token: "opaque".into(),
                    };
                    status_of(addr, path, &request, &[]).await
                }
            }
        }
    };
    assert_eq!(code_of(LOGIN).await.0, Code::Ok);
    assert_eq!(code_of(LOGIN).await.0, Code::ResourceExhausted);
    // Signing in is used up; refreshing is not, and reaches user-service (whose fake refuses).
    assert_eq!(code_of(REFRESH_TOKEN).await.0, Code::FailedPrecondition);
    assert_eq!(code_of(LOGOUT).await.0, Code::Ok);
    let (code, message) = code_of(REFRESH_TOKEN).await;
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(message.contains("refresh"), "{message}");
    let (code, _) = code_of(LOGOUT).await;
    assert_eq!(code, Code::ResourceExhausted, "Logout is limited by address");
    let paths = stack.observed.paths();
    assert_eq!(
        paths.iter().filter(|p| *p == "RefreshToken" || *p == "Logout").count(),
        2
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn one_user_cannot_hold_more_than_their_share_of_streams() {
    let stack = Stack::start_with(|config| config.max_streams_per_user = 2).await;
    let open = |user_id: i64| {
        let auth = bearer(&access_token(user_id));
        let addr = stack.addr;
        async move {
            grpc_web_call(
                addr,
                SEND_MESSAGE,
                &send_request("slow"),
                WebMode::Binary,
                &[("authorization", &auth)],
            )
            .await
        }
    };
    let mut first = open(USER_ID).await;
    let mut second = open(USER_ID).await;
    for stream in [&mut first, &mut second] {
        assert!(matches!(stream.next_frame().await, Some(WebFrame::Message(_))));
    }
    let mut messages = chat::message_service_client::MessageServiceClient::new(channel_to(&stack.url()).await);
    let mut third = tonic::Request::new(send_request("slow"));
    third.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(bearer(&access_token(USER_ID))).unwrap(),
    );
    let status = messages.send_message(third).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("streams"), "{status:?}");
    assert!(retry_delay(&status).is_some(), "no retry delay");
    assert_eq!(
        stack.observed.paths().iter().filter(|p| *p == "SendMessage").count(),
        2,
        "the refused stream reached the upstream"
    );

    // Someone else is not affected.
    let mut other = open(USER_ID + 1).await;
    assert!(matches!(other.next_frame().await, Some(WebFrame::Message(_))));

    // A closed stream gives its slot back.
    drop(first);
    until("the stream's slot came back", WAIT, || async {
        let mut stream = open(USER_ID).await;
        matches!(stream.next_frame().await, Some(WebFrame::Message(_)))
    })
    .await;
    drop((second, other));
    stack.shutdown().await;
}

#[tokio::test]
async fn protected_calls_answer_unavailable_while_the_keys_cannot_be_fetched() {
    // user-service is down, so nobody can tell a valid token from a forged one: that is the
    // server's trouble (UNAVAILABLE, try again), not the caller's (UNAUTHENTICATED, sign in).
    let observed = std::sync::Arc::new(Observed::default());
    let chat_url = serve_upstream(fake_chat_server(observed.clone())).await;
    let config = gateway::Config::new(closed_port_url().await, chat_url);
    let stack = Stack::gateway(config, observed).await;
    let auth = bearer(&access_token(USER_ID));
    for path in [SEND_MESSAGE, GET_ME] {
        let (code, message) = tokio::time::timeout(
            Duration::from_secs(20),
            status_of(stack.addr, path, &user::GetMeRequest {}, &[("authorization", &auth)]),
        )
        .await
        .expect("the gateway hung on a down user-service");
        assert_eq!(code, Code::Unavailable, "{path}: {message}");
    }
    assert!(stack.observed.paths().is_empty(), "a call got past the edge unverified");
    stack.shutdown().await;
}

#[tokio::test]
async fn cors_preflight_and_exposed_headers() {
    let stack = Stack::start_with(|config| {
        config.cors_origins = vec!["https://chat.example.com".into()];
    })
    .await;
    let preflight = http::Request::builder()
        .method("OPTIONS")
        .uri(format!("{}{SEND_MESSAGE}", stack.url()))
        .header("origin", "https://chat.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,x-user-agent,authorization,grpc-timeout",
        )
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (parts, _) = http_request(preflight).await;
    assert!(parts.status.is_success(), "{:?}", parts.status);
    assert_eq!(parts.headers["access-control-allow-origin"], "https://chat.example.com");
    assert_eq!(parts.headers["access-control-allow-credentials"], "true");
    let allowed = parts.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_string();
    for header in ["authorization", "x-grpc-web", "content-type", "grpc-timeout"] {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }

    let call = grpc_web_call(
        stack.addr,
        LOGIN,
        &login_request(PASSWORD),
        WebMode::Binary,
        &[("origin", "https://chat.example.com")],
    )
    .await;
    assert_eq!(call.headers["access-control-allow-origin"], "https://chat.example.com");
    let exposed = call.headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_string();
    for header in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(header), "{header} not in {exposed}");
    }

    let other = grpc_web_call(
        stack.addr,
        LOGIN,
        &login_request(PASSWORD),
        WebMode::Binary,
        &[("origin", "https://evil.example.com")],
    )
    .await;
    assert!(other.headers.get("access-control-allow-origin").is_none());
    stack.shutdown().await;
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_upstream_stream() {
    let stack = Stack::start().await;
    let auth = bearer(&access_token(USER_ID));
    for mode in [WebMode::Binary, WebMode::Text] {
        let mut stream = grpc_web_call(
            stack.addr,
            SEND_MESSAGE,
            &send_request("slow"),
            mode,
            &[("authorization", &auth)],
        )
        .await;
        for _ in 0..6 {
            assert!(matches!(stream.next_frame().await, Some(WebFrame::Message(_))));
        }
        let closed = stack.observed.stream_closed.notified();
        drop(stream);
        tokio::time::timeout(Duration::from_secs(10), closed)
            .await
            .unwrap_or_else(|_| panic!("{mode:?}: the upstream stream was not cancelled"));
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn a_down_upstream_answers_unavailable_not_a_hang() {
    let observed = std::sync::Arc::new(Observed::default());
    let mut config = gateway::Config::new(closed_port_url().await, closed_port_url().await);
    config.health_check_interval = Duration::from_millis(100);
    let stack = Stack::gateway(config, observed).await;
    let mut users = user::user_service_client::UserServiceClient::connect(stack.url())
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), users.login(login_request(PASSWORD)))
        .await
        .expect("the gateway hung on a down upstream")
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let web = tokio::time::timeout(
        Duration::from_secs(10),
        grpc_web_call(stack.addr, LOGIN, &login_request(PASSWORD), WebMode::Text, &[]),
    )
    .await
    .expect("the gateway hung on a down upstream");
    let (_, code, _) = web.collect::<user::LoginResponse>().await;
    assert_eq!(code, Code::Unavailable);

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel_to(&stack.url()).await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn health_follows_the_upstreams() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let stack = Stack::start().await;
    let url = stack.url();
    let status_of = |service: &'static str| {
        let url = url.clone();
        async move {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel_to(&url).await);
            health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status
        }
    };
    until("UserService reported SERVING", WAIT, || async {
        status_of("parley.user.v1.UserService").await == ServingStatus::Serving as i32
    })
    .await;
    assert_eq!(
        status_of("parley.chat.v1.MessageService").await,
        ServingStatus::Serving as i32
    );
    // The fake chat upstream serves MessageService only.
    assert_eq!(
        status_of("parley.chat.v1.SessionService").await,
        ServingStatus::NotServing as i32
    );
    assert_eq!(status_of("").await, ServingStatus::NotServing as i32);
    stack.shutdown().await;
}

#[tokio::test]
async fn reflection_lists_the_public_services_only() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServiceResponse};

    let stack = Stack::start().await;
    let mut client = ServerReflectionClient::new(channel_to(&stack.url()).await);
    let ask = |request: MessageRequest| {
        tokio_stream::iter(vec![ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        }])
    };
    let mut replies = client
        .server_reflection_info(ask(MessageRequest::ListServices(String::new())))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = replies.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s: ServiceResponse| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "parley.chat.v1.ApiConfigService",
            "parley.chat.v1.ChatDefaultsService",
            "parley.chat.v1.FolderService",
            "parley.chat.v1.MessageService",
            "parley.chat.v1.ModelService",
            "parley.chat.v1.NotificationService",
            "parley.chat.v1.PersonaService",
            "parley.chat.v1.PromptService",
            "parley.chat.v1.QuotaService",
            "parley.chat.v1.RoomService",
            "parley.chat.v1.SessionService",
            "parley.chat.v1.ShareService",
            "parley.chat.v1.SharedChatService",
            "parley.chat.v1.SharedConnectionService",
            "parley.chat.v1.TransferService",
            "parley.chat.v1.UsageService",
            "parley.user.v1.AdminService",
            "parley.user.v1.UserService",
        ]
    );

    for internal in ["parley.llm.v1.LlmService", "parley.chat.internal.v1.AccountDataService"] {
        let mut replies = client
            .server_reflection_info(ask(MessageRequest::FileContainingSymbol(internal.into())))
            .await
            .unwrap()
            .into_inner();
        match replies.message().await {
            Err(status) => assert_eq!(status.code(), Code::NotFound),
            Ok(reply) => assert!(
                matches!(
                    reply.and_then(|r| r.message_response),
                    Some(MessageResponse::ErrorResponse(_))
                ),
                "the internal service {internal}'s descriptors leaked"
            ),
        }
    }

    // Public services resolve, with their dependencies.
    let mut replies = client
        .server_reflection_info(ask(MessageRequest::FileContainingSymbol(
            "parley.chat.v1.SessionService".into(),
        )))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap().message_response;
    assert!(
        matches!(reply, Some(MessageResponse::FileDescriptorResponse(_))),
        "{reply:?}"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let stack = Stack::start_with(|config| config.max_message_bytes = 1024).await;
    let mut users = user::user_service_client::UserServiceClient::connect(stack.url())
        .await
        .unwrap();
    let status = users.login(login_request(&"x".repeat(4096))).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(!stack.observed.paths().iter().any(|p| p == "Login"));
    users.login(login_request(PASSWORD)).await.unwrap();
    stack.shutdown().await;
}

#[tokio::test]
async fn slow_unary_calls_time_out_but_streams_do_not() {
    let stack = Stack::start_with(|config| config.unary_timeout = Duration::from_millis(300)).await;
    let mut users = user::user_service_client::UserServiceClient::connect(stack.url())
        .await
        .unwrap();
    let status = users.login(login_request("slow")).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    // A stream that runs longer than the unary timeout is left alone.
    let auth = bearer(&access_token(USER_ID));
    let mut stream = grpc_web_call(
        stack.addr,
        SEND_MESSAGE,
        &send_request("slow"),
        WebMode::Binary,
        &[("authorization", &auth)],
    )
    .await;
    for _ in 0..30 {
        assert!(matches!(stream.next_frame().await, Some(WebFrame::Message(_))));
    }
    drop(stream);
    stack.shutdown().await;
}

#[tokio::test]
async fn calls_beyond_the_concurrency_limit_are_shed() {
    let stack = Stack::start_with(|config| config.max_concurrent_calls = 1).await;
    let auth = bearer(&access_token(USER_ID));
    let mut open = grpc_web_call(
        stack.addr,
        SEND_MESSAGE,
        &send_request("slow"),
        WebMode::Binary,
        &[("authorization", &auth)],
    )
    .await;
    assert!(matches!(open.next_frame().await, Some(WebFrame::Message(_))));
    let mut users = user::user_service_client::UserServiceClient::connect(stack.url())
        .await
        .unwrap();
    let status = users.login(login_request(PASSWORD)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(retry_delay(&status).is_some());

    drop(open);
    until("the permit came back", WAIT, || {
        let mut users = users.clone();
        async move { users.login(login_request(PASSWORD)).await.is_ok() }
    })
    .await;
    stack.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_open_streams_finish_within_the_deadline() {
    let stack = Stack::start_with(|config| config.drain_deadline = Duration::from_millis(500)).await;
    let auth = bearer(&access_token(USER_ID));
    let mut open = grpc_web_call(
        stack.addr,
        SEND_MESSAGE,
        &send_request("slow"),
        WebMode::Binary,
        &[("authorization", &auth)],
    )
    .await;
    assert!(matches!(open.next_frame().await, Some(WebFrame::Message(_))));
    let addr = stack.addr;
    // The gateway returns once the deadline passed, closing the endless stream.
    tokio::time::timeout(Duration::from_secs(10), stack.shutdown())
        .await
        .expect("shutdown did not finish after the drain deadline");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting");
}

#[tokio::test]
async fn web_ui_is_served_with_spa_fallback_caching_and_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("assets")).unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><script src=/assets/app-3f9a.js></script>",
    )
    .unwrap();
    std::fs::write(dir.path().join("assets/app-3f9a.js"), "console.log(1)").unwrap();
    let web_dir = dir.path().to_path_buf();
    let stack = Stack::start_with(move |config| config.web_dir = Some(web_dir)).await;
    let get = |path: &str| {
        http_request(
            http::Request::get(format!("{}{path}", stack.url()))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
    };

    for path in ["/", "/chat/42", "/u/ada.lovelace"] {
        let (parts, body) = get(path).await;
        assert_eq!(parts.status, 200, "{path}");
        assert!(String::from_utf8_lossy(&body).contains("app-3f9a.js"), "{path}");
        assert_eq!(parts.headers["cache-control"], "no-cache");
        let csp = parts.headers["content-security-policy"].to_str().unwrap();
        let directive = |name: &str| {
            csp.split(';')
                .map(str::trim)
                .find(|d| d.split_whitespace().next() == Some(name))
                .unwrap_or_else(|| panic!("no {name} in {csp}"))
                .to_string()
        };
        assert_eq!(directive("script-src"), "script-src 'self'");
        // No <style> elements; style attributes (KaTeX) only.
        assert_eq!(directive("style-src"), "style-src 'self'");
        assert_eq!(directive("style-src-attr"), "style-src-attr 'unsafe-inline'");
        assert_eq!(parts.headers["x-content-type-options"], "nosniff");
        assert_eq!(parts.headers["x-frame-options"], "DENY");
        assert!(
            !parts.headers.contains_key("strict-transport-security"),
            "HSTS over plain HTTP"
        );
    }
    let (parts, body) = get("/assets/app-3f9a.js").await;
    assert_eq!(parts.status, 200);
    assert_eq!(&body[..], b"console.log(1)");
    assert!(parts.headers["cache-control"].to_str().unwrap().contains("immutable"));

    // Revalidating a hashed asset keeps it immutable; revalidating index.html keeps it not.
    for (path, cache) in [("/assets/app-3f9a.js", LONG_CACHE), ("/", "no-cache")] {
        let (first, _) = get(path).await;
        let modified = first.headers["last-modified"].clone();
        let (parts, body) = http_request(
            http::Request::get(format!("{}{path}", stack.url()))
                .header("if-modified-since", modified)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
        assert_eq!(parts.status, 304, "{path}");
        assert!(body.is_empty());
        assert_eq!(parts.headers["cache-control"], cache, "{path}");
    }

    // A missing file is a 404 and never index.html with a year-long cache.
    for path in ["/assets/gone-1234.js", "/assets/foo", "/assets/", "/favicon.ico"] {
        let (parts, body) = get(path).await;
        assert_eq!(parts.status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("app-3f9a.js"), "{path}");
        assert_eq!(parts.headers["cache-control"], "no-cache", "{path}");
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn hsts_is_sent_only_when_asked_for() {
    let stack = Stack::start_with(|config| config.hsts = true).await;
    let (parts, _) = http_request(
        http::Request::get(format!("{}/", stack.url()))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(parts.headers["strict-transport-security"], "max-age=31536000");
    stack.shutdown().await;
}

#[tokio::test]
async fn without_a_built_ui_a_page_says_so() {
    let stack = Stack::start_with(|config| config.web_dir = Some("/nonexistent/web/dist".into())).await;
    let (parts, body) = http_request(
        http::Request::get(format!("{}/", stack.url()))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(parts.status, 200);
    assert!(String::from_utf8_lossy(&body).contains("not built yet"));
    assert!(parts.headers.contains_key("content-security-policy"));
    stack.shutdown().await;
}

/// A gRPC request (native) for `path`, with `metadata` and, if asked, a bearer token.
fn with_metadata<T>(message: T, metadata: &[(&'static str, String)]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    for (name, value) in metadata {
        request
            .metadata_mut()
            .insert(*name, MetadataValue::try_from(value.as_str()).unwrap());
    }
    request
}

#[tokio::test]
async fn public_streams_cannot_starve_the_api() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;

    let stack = Stack::start_with(|config| {
        config.max_concurrent_calls = 4;
        config.max_reflection_streams = 2;
    })
    .await;
    // Health's Watch answers the current status once and ends: no endless public stream.
    let mut health = HealthClient::new(channel_to(&stack.url()).await);
    // The fake upstreams serve only some services, so the overall status stays NOT_SERVING:
    // Watch answers what Check does, whatever that is.
    let current = health
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status;
    let mut watch = health
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(WAIT, watch.message()).await.unwrap().unwrap();
    assert_eq!(first.map(|r| r.status), Some(current));
    assert_ne!(current, ServingStatus::Unknown as i32);
    let end = tokio::time::timeout(WAIT, watch.message())
        .await
        .expect("Watch stayed open after its answer");
    assert!(matches!(end, Ok(None)), "{end:?}");
    let unknown = health
        .watch(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    // More reflection streams than the whole API cap, each held open by its client.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..6 {
        let (requests, receiver) = tokio::sync::mpsc::channel::<ServerReflectionRequest>(1);
        let mut reflection = ServerReflectionClient::new(channel_to(&stack.url()).await);
        match reflection
            .server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
        {
            Ok(replies) => held.push((requests, replies.into_inner(), reflection)),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(status.message().contains("reflection"), "{status:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(
        (held.len(), refused),
        (2, 4),
        "reflection streams have a pool of their own"
    );

    // Sign-in, and everything else, still answers; so do health checks.
    let mut users = user::user_service_client::UserServiceClient::new(channel_to(&stack.url()).await);
    for _ in 0..4 {
        users.login(login_request(PASSWORD)).await.unwrap();
    }
    health
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap();
    drop(held);
    stack.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share_of_calls() {
    let stack = Stack::start_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        config.auth_rate_limit = None;
        config.max_public_calls_per_address = 2;
        config.max_calls_per_address = 3;
    })
    .await;
    let users = user::user_service_client::UserServiceClient::new(channel_to(&stack.url()).await);
    let from = |ip: &str| ("x-forwarded-for", ip.to_string());
    // Two slow sign-ins from one address hold its share of calls without an account.
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let mut users = users.clone();
            let request = with_metadata(login_request("slow"), &[from("203.0.113.1")]);
            tokio::spawn(async move { users.login(request).await })
        })
        .collect();
    until("both slow sign-ins reached user-service", WAIT, || {
        let seen = stack.observed.count("Login");
        async move { seen == 2 }
    })
    .await;
    let mut users_now = users.clone();
    let status = users_now
        .login(with_metadata(login_request(PASSWORD), &[from("203.0.113.1")]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("address"), "{status:?}");
    assert!(retry_delay(&status).is_some(), "no retry delay");
    assert_eq!(
        stack.observed.count("Login"),
        2,
        "the refused call reached user-service"
    );
    users_now
        .login(with_metadata(login_request(PASSWORD), &[from("203.0.113.2")]))
        .await
        .expect("another address has its own share");

    // A signed-in call still fits in the address's whole share, up to it.
    let auth = bearer(&access_token(USER_ID));
    let mut stream = grpc_web_call(
        stack.addr,
        SEND_MESSAGE,
        &send_request("slow"),
        WebMode::Binary,
        &[("authorization", &auth), ("x-forwarded-for", "203.0.113.1")],
    )
    .await;
    assert!(matches!(stream.next_frame().await, Some(WebFrame::Message(_))));
    let get_me = |ip: &str| with_metadata(user::GetMeRequest {}, &[from(ip), ("authorization", auth.clone())]);
    let status = users_now.get_me(get_me("203.0.113.1")).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    users_now.get_me(get_me("203.0.113.2")).await.unwrap();

    // A call that ends gives its slot back.
    drop(stream);
    until("the stream's slot came back", WAIT, || {
        let mut users = users.clone();
        let request = get_me("203.0.113.1");
        async move { users.get_me(request).await.is_ok() }
    })
    .await;
    for call in slow {
        call.abort();
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn one_user_cannot_hold_more_than_their_share_of_unary_calls() {
    let stack = Stack::start_with(|config| config.max_unary_calls_per_user = 2).await;
    let users = user::user_service_client::UserServiceClient::new(channel_to(&stack.url()).await);
    let get_me = |user_id: i64, slow: bool| {
        let mut metadata = vec![("authorization", bearer(&access_token(user_id)))];
        if slow {
            metadata.push((SLOW, "1".to_string()));
        }
        with_metadata(user::GetMeRequest {}, &metadata)
    };
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let mut users = users.clone();
            let request = get_me(USER_ID, true);
            tokio::spawn(async move { users.get_me(request).await })
        })
        .collect();
    until("both slow calls reached user-service", WAIT, || {
        let seen = stack.observed.count("GetMe");
        async move { seen == 2 }
    })
    .await;
    let mut users_now = users.clone();
    let status = users_now.get_me(get_me(USER_ID, false)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("unary"), "{status:?}");
    assert_eq!(
        stack.observed.count("GetMe"),
        2,
        "the refused call reached user-service"
    );
    users_now
        .get_me(get_me(USER_ID + 1, false))
        .await
        .expect("another user has their own share");
    for call in slow {
        call.abort();
    }
    until("the slots came back", WAIT, || {
        let mut users = users.clone();
        let request = get_me(USER_ID, false);
        async move { users.get_me(request).await.is_ok() }
    })
    .await;
    stack.shutdown().await;
}

#[tokio::test]
async fn http2_connections_advertise_their_stream_limit() {
    use prost::Message;
    let stack = Stack::start_with(|config| config.max_streams_per_connection = 7).await;
    let tcp = tokio::net::TcpStream::connect(stack.addr).await.unwrap();
    let (send, mut connection) = h2::client::handshake(tcp).await.unwrap();
    // One health check, so the server's SETTINGS have surely arrived by its answer.
    let call = async {
        let mut send = send.ready().await.unwrap();
        let request = http::Request::post(format!("http://{}/grpc.health.v1.Health/Check", stack.addr))
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
        response.await.unwrap()
    };
    let response = tokio::select! {
        response = call => response,
        ended = &mut connection => panic!("the connection ended: {ended:?}"),
    };
    assert_eq!(response.status(), 200);
    assert_eq!(connection.max_concurrent_send_streams(), 7);
    stack.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let stack = Stack::start_with(|config| config.max_connections = 1).await;
    // An idle connection takes the only slot.
    let idle = tokio::net::TcpStream::connect(stack.addr).await.unwrap();
    let waiting = tonic::transport::Endpoint::from_shared(stack.url())
        .unwrap()
        .connect_lazy();
    let mut call = tokio::spawn(async move {
        user::user_service_client::UserServiceClient::new(waiting)
            .login(login_request(PASSWORD))
            .await
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut call)
            .await
            .is_err(),
        "a second connection was served past the limit"
    );
    drop(idle);
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the waiting connection was not served once the slot was free")
        .unwrap()
        .unwrap();
    stack.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let stack = Stack::start_with(|config| config.max_connections_per_address = 2).await;
    let held = [channel_to(&stack.url()).await, channel_to(&stack.url()).await];
    let mut users = user::user_service_client::UserServiceClient::new(held[0].clone());
    users.login(login_request(PASSWORD)).await.unwrap();
    // The third connection from the same address is closed at once.
    let third = tonic::transport::Endpoint::from_shared(stack.url())
        .unwrap()
        .connect_lazy();
    let status = user::user_service_client::UserServiceClient::new(third)
        .login(login_request(PASSWORD))
        .await
        .unwrap_err();
    // Closed before a byte was read: the client sees the connection go (which code it gives
    // that depends on how far its handshake got).
    assert!(
        matches!(status.code(), Code::Unavailable | Code::Cancelled),
        "{status:?}"
    );
    assert_eq!(
        stack.observed.count("Login"),
        1,
        "the refused connection's call was served"
    );
    drop((users, held));
    until("a connection slot came back", WAIT, || {
        let url = stack.url();
        async move {
            let Ok(channel) = tonic::transport::Endpoint::from_shared(url).unwrap().connect().await else {
                return false;
            };
            user::user_service_client::UserServiceClient::new(channel)
                .login(login_request(PASSWORD))
                .await
                .is_ok()
        }
    })
    .await;
    stack.shutdown().await;
}

#[tokio::test]
async fn provider_checks_are_limited_per_user_with_their_own_allowance() {
    let stack = Stack::start_with(|config| {
        config.provider_rate_limit = Some(gateway::RateLimit {
            burst: 1,
            period: Duration::from_secs(60),
        });
    })
    .await;
    let call = |path: &'static str, user_id: i64| {
        let auth = bearer(&access_token(user_id));
        let addr = stack.addr;
        async move {
            match path {
                SEND_MESSAGE => {
                    let stream = grpc_web_call(
                        addr,
                        path,
                        &send_request("hi"),
                        WebMode::Binary,
                        &[("authorization", &auth)],
                    )
                    .await;
                    stream.collect::<chat::SendMessageResponse>().await.1
                }
                _ => {
                    status_of(
                        addr,
                        path,
                        &chat::ListModelsRequest::default(),
                        &[("authorization", &auth)],
                    )
                    .await
                    .0
                }
            }
        }
    };
    const TEST_API_CONFIG: &str = "/parley.chat.v1.ApiConfigService/TestApiConfig";
    const LIST_MODELS: &str = "/parley.chat.v1.ApiConfigService/ListModels";
    // The fake chat upstream has no ApiConfigService: UNIMPLEMENTED means the call got through.
    assert_eq!(call(TEST_API_CONFIG, USER_ID).await, Code::Unimplemented);
    assert_eq!(call(TEST_API_CONFIG, USER_ID).await, Code::ResourceExhausted);
    assert_eq!(
        call(LIST_MODELS, USER_ID).await,
        Code::ResourceExhausted,
        "one allowance for both"
    );
    assert_eq!(
        call(LIST_MODELS, USER_ID + 1).await,
        Code::Unimplemented,
        "another user"
    );
    assert_eq!(
        call(SEND_MESSAGE, USER_ID).await,
        Code::Ok,
        "messages have their own allowance"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn upstreams_get_the_resolved_client_address_and_never_the_clients_own_claim() {
    const CLIENT_IP: &str = "x-parley-client-ip";
    let stack = Stack::start_with(|config| config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let seen = |path: &str| {
        let headers = stack.observed.last_headers(path);
        headers
            .get_all(CLIENT_IP)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // Native gRPC, behind a trusted proxy: the address X-Forwarded-For names.
    let mut users = user::user_service_client::UserServiceClient::new(channel_to(&stack.url()).await);
    let mut request = with_metadata(
        login_request(PASSWORD),
        &[
            (CLIENT_IP, "198.51.100.66".to_string()),
            ("x-forwarded-for", "203.0.113.5".to_string()),
        ],
    );
    request
        .metadata_mut()
        .append(CLIENT_IP, MetadataValue::from_static("198.51.100.67"));
    users.login(request).await.unwrap();
    assert_eq!(seen("Login"), ["203.0.113.5"]);

    // gRPC-web, a signed-in stream, no proxy header: the TCP peer.
    let auth = bearer(&access_token(USER_ID));
    let stream = grpc_web_call(
        stack.addr,
        SEND_MESSAGE,
        &send_request("hi"),
        WebMode::Text,
        &[("authorization", &auth), (CLIENT_IP, "198.51.100.66")],
    )
    .await;
    assert_eq!(stream.collect::<chat::SendMessageResponse>().await.1, Code::Ok);
    assert_eq!(seen("SendMessage"), ["127.0.0.1"]);
    stack.shutdown().await;

    // A client that is not a trusted proxy cannot name another address either way.
    let stack = Stack::start().await;
    let mut users = user::user_service_client::UserServiceClient::new(channel_to(&stack.url()).await);
    let request = with_metadata(
        login_request(PASSWORD),
        &[
            (CLIENT_IP, "198.51.100.66".to_string()),
            ("x-forwarded-for", "203.0.113.5".to_string()),
        ],
    );
    users.login(request).await.unwrap();
    let headers = stack.observed.last_headers("Login");
    assert_eq!(headers[CLIENT_IP], "127.0.0.1");
    assert_eq!(headers.get_all(CLIENT_IP).iter().count(), 1);
    stack.shutdown().await;
}
