//! The shared server builder, served for real on 127.0.0.1:0: health on shutdown and how calls
//! that fail are logged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use parley_service_kit::auth_layer::AuthLayer;
use parley_service_kit::grpc_server::GrpcServer;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

struct Running {
    address: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        GrpcServer::new(AuthLayer::disabled())
            .drain_deadline(Duration::from_secs(5))
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        address,
        stop: Some(stop),
        task,
    }
}

async fn channel(address: std::net::SocketAddr) -> tonic::transport::Channel {
    parley_testkit::wait::channel(address).await
}

/// Kubernetes' gRPC probes ask about "" (the whole server): it must stop answering SERVING
/// as soon as shutdown starts, so traffic moves away while open calls drain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_server_reports_not_serving_once_shutdown_starts() {
    let mut server = start().await;
    let mut health = HealthClient::new(channel(server.address).await);
    let mut watch = health
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    let _ = server.stop.take().unwrap().send(());
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("no health update after shutdown")
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    drop(watch);
    server.task.await.unwrap();
}

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A caller's mistake (NOT_FOUND here; a wrong password in user-service) is not an ERROR line;
/// a call the server cannot answer is.
// One thread, so the server's tasks log to this test's subscriber.
#[tokio::test]
async fn client_errors_are_logged_below_error_and_server_failures_as_errors() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = start().await;
    let channel = channel(server.address).await;
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    // A method nobody serves: UNIMPLEMENTED is the server's answer, not the caller's fault.
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let status = grpc
        .unary::<HealthCheckRequest, HealthCheckRequest, _>(
            tonic::Request::new(HealthCheckRequest::default()),
            "/grpc.health.v1.Health/NoSuchMethod".parse().unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);

    // The trace layer logs when the response ends; wait for both lines.
    let logged = parley_testkit::wait::eventually("both calls logged", Duration::from_secs(10), || {
        let logged = lines.lines();
        let done = logged
            .iter()
            .filter(|l| l.contains("call refused") || l.contains("call failed"))
            .count()
            >= 2;
        async move { done.then_some(logged) }
    })
    .await;
    let refused: Vec<&String> = logged.iter().filter(|l| l.contains("call refused")).collect();
    let failed: Vec<&String> = logged.iter().filter(|l| l.contains("call failed")).collect();
    assert_eq!(refused.len(), 1, "{logged:#?}");
    assert!(
        refused[0].contains("DEBUG") && refused[0].contains("NotFound"),
        "{refused:?}"
    );
    assert_eq!(failed.len(), 1, "{logged:#?}");
    assert!(
        failed[0].contains("ERROR") && failed[0].contains("Unimplemented"),
        "{failed:?}"
    );
    assert!(
        !logged.iter().any(|l| l.contains("ERROR") && l.contains("NotFound")),
        "{logged:#?}"
    );
}

/// Reflection answers in v1 and in v1alpha (grpcurl before 1.9 speaks only v1alpha).
#[tokio::test]
async fn reflection_speaks_v1_and_v1alpha() {
    use tokio_stream::StreamExt;
    let server = start().await;
    let channel = channel(server.address).await;

    use tonic_reflection::pb::v1;
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let answer = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        answer.message_response,
        Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(_))
    ));

    use tonic_reflection::pb::v1alpha;
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let answer = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("unexpected v1alpha answer");
    };
    assert!(
        list.service.iter().any(|s| s.name == "grpc.health.v1.Health"),
        "{list:?}"
    );
}
