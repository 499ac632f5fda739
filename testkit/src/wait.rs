//! Waiting for something in a test, bounded so a broken server fails the test instead of
//! hanging it. Every "start a server, retry until it answers" loop in the tests goes through
//! here.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// How often [`eventually`] asks again.
const POLL: Duration = Duration::from_millis(25);

/// How long the connect helpers wait for a server to start listening.
pub const STARTUP: Duration = Duration::from_secs(10);

/// Asks `check` every 25 ms until it answers `Some`, and returns that; panics naming `what`
/// once `limit` has passed.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("{what} did not happen within {limit:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for a condition: waits until `check` holds.
pub async fn until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually(what, limit, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await
}

/// A gRPC channel to `url`, once something listens there (a server started in the
/// background, or a child process, may not have bound yet).
pub async fn channel_to(url: &str) -> Channel {
    let endpoint = Endpoint::from_shared(url.to_string()).unwrap_or_else(|e| panic!("{url} is not a URL: {e}"));
    eventually(&format!("a server listening at {url}"), STARTUP, || {
        let endpoint = endpoint.clone();
        async move { endpoint.connect().await.ok() }
    })
    .await
}

/// [`channel_to`] a plain-HTTP/2 address.
pub async fn channel(address: SocketAddr) -> Channel {
    channel_to(&format!("http://{address}")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn eventually_returns_the_first_answer() {
        let mut calls = 0;
        let value = eventually("the third call", Duration::from_secs(1), || {
            calls += 1;
            let now = calls;
            async move { (now == 3).then_some(now) }
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "never did not happen within")]
    async fn eventually_gives_up_at_the_limit() {
        until("never", Duration::from_millis(60), || async { false }).await;
    }

    #[tokio::test]
    async fn channel_connects_once_a_server_listens() {
        // Reserve a port, free it, then start listening there only after a while.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let listener = tokio::net::TcpListener::bind(address).await.unwrap();
            // Accept (and hold) the connection the channel opens.
            let (_socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        let _channel = channel(address).await;
        server.abort();
    }
}
