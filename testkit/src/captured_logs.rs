//! Captures what a test's code logs (every level, every field), so a test can assert that no
//! secret ever reaches a log line.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A tracing subscriber writing into memory, installed for the current thread while the
/// returned guard lives. Use a current-thread runtime (`#[tokio::test]`) so spawned tasks log
/// here too; for servers on other threads use [`CapturedLogs::global`].
#[derive(Clone, Default)]
pub struct CapturedLogs {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl CapturedLogs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything logged so far.
    pub fn contents(&self) -> String {
        let bytes = self.buffer.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }

    /// Captures on this thread until the guard is dropped.
    pub fn capture_thread(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(self.subscriber())
    }

    /// Captures process-wide (all threads). Only one test binary-wide may call this; keep
    /// such tests in their own test file.
    pub fn global() -> Self {
        let logs = Self::new();
        let _ = tracing::subscriber::set_global_default(logs.subscriber());
        logs
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.buffer.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
