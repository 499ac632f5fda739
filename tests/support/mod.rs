//! The whole stack in this process, as `parley` runs it, for the root package's tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::sync::oneshot;

/// A started stack on a fresh data directory, its gateway on a random port; `stop` sends the
/// shutdown signal and checks that every service stopped cleanly.
pub struct Stack {
    pub addr: SocketAddr,
    /// The stack's data directory (databases, keys).
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    running: tokio::task::JoinHandle<Result<(), parley::Error>>,
    _dir: tempfile::TempDir,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(|config| config).await
    }

    pub async fn start_with(adjust: impl FnOnce(parley::StackConfig) -> parley::StackConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let config = adjust(parley::StackConfig {
            web_dir: Some(PathBuf::from("/nonexistent/web/dist")),
            ..parley::StackConfig::new(dir.path().join("data"))
        });
        let stack = parley::start(listener, config, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        let addr = stack.addr;
        Self {
            addr,
            data_dir: dir.path().join("data"),
            stop: Some(stop),
            running: tokio::spawn(stack.wait()),
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.running).await.unwrap().unwrap();
    }
}
