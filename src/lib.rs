//! Parley in one process: user-service, chat-service and llm-service on internal loopback
//! ports, the gateway on the public one, SQLite files and generated keys under one data
//! directory. What a laptop needs; the distributed deployment runs each binary on its own.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use futures::FutureExt;
use futures::future::BoxFuture;
use parley_service_kit::database::sqlite_url;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct StackConfig {
    /// SQLite databases and keys live here; created when missing.
    pub data_dir: PathBuf,
    /// The built web UI; a placeholder page is served while it has no `index.html`.
    pub web_dir: Option<PathBuf>,
    /// The gateway's edge settings (rate limits, CORS, limits).
    pub edge: gateway::EdgeOptions,
    /// How user-service delivers codes (log or SMTP) and marks its cookie.
    pub accounts: user_service::AccountOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot use the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cannot open an internal port: {0}")]
    InternalPort(std::io::Error),
    #[error("SMTP settings: {0}")]
    Mail(#[from] user_service::MailError),
    #[error("user-service: {0}")]
    User(#[from] user_service::Error),
    #[error("chat-service: {0}")]
    Chat(#[from] chat_service::Error),
    #[error("llm-service: {0}")]
    Llm(#[from] llm_service::Error),
    #[error("gateway: {0}")]
    Gateway(#[from] gateway::Error),
}

/// The stack, started: every port is bound, so clients can connect from now on.
pub struct RunningStack {
    /// Where the gateway listens.
    pub addr: SocketAddr,
    running: BoxFuture<'static, Result<(), Error>>,
}

impl RunningStack {
    /// The address to show a person: an unspecified listen address (0.0.0.0) is reachable
    /// on loopback.
    pub fn url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    }

    /// Runs until the shutdown signal, then until every service has drained; or until one
    /// fails, which stops the others.
    pub async fn wait(self) -> Result<(), Error> {
        self.running.await
    }
}

/// Checks the data directory, binds the internal ports and starts all four services on the
/// gateway's `listener`.
pub async fn start(
    listener: TcpListener,
    config: StackConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningStack, Error> {
    let data_dir = prepare_data_dir(&config.data_dir)?;
    let addr = listener.local_addr().map_err(Error::InternalPort)?;
    let internal = || async {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(Error::InternalPort)
    };
    let (user_listener, chat_listener, llm_listener) = (internal().await?, internal().await?, internal().await?);
    let url_of = |listener: &TcpListener| {
        listener
            .local_addr()
            .map(|a| format!("http://{a}"))
            .map_err(Error::InternalPort)
    };
    let (user_url, chat_url, llm_url) = (url_of(&user_listener)?, url_of(&chat_listener)?, url_of(&llm_listener)?);

    let mut user_config = user_service::Config::new(sqlite_url(&data_dir.join("user-service.db")), &data_dir);
    config.accounts.apply_to(&mut user_config)?;
    let chat_config = chat_service::Config::new(
        sqlite_url(&data_dir.join("chat-service.db")),
        &data_dir,
        user_url.clone(),
        llm_url,
    );
    // A local Ollama or llama.cpp server is the point of running on a laptop.
    let llm_config = llm_service::Config {
        allow_private_networks: true,
        ..llm_service::Config::default()
    };
    let mut gateway_config = gateway::Config::new(user_url, chat_url);
    gateway_config.web_dir = config.web_dir;
    config.edge.apply_to(&mut gateway_config);
    gateway_config.validate()?;

    let shutdown = shutdown.boxed().shared();
    let running = async move {
        tokio::try_join!(
            async {
                user_service::serve(user_listener, user_config, shutdown.clone())
                    .await
                    .map_err(Error::from)
            },
            async {
                llm_service::serve(llm_listener, llm_config, shutdown.clone())
                    .await
                    .map_err(Error::from)
            },
            async {
                chat_service::serve(chat_listener, chat_config, shutdown.clone())
                    .await
                    .map_err(Error::from)
            },
            async {
                gateway::serve(listener, gateway_config, shutdown.clone())
                    .await
                    .map_err(Error::from)
            },
        )
        .map(|_| ())
    };
    Ok(RunningStack {
        addr,
        running: running.boxed(),
    })
}

/// Creates the directory and proves it writable now, so a bad path fails start-up with one
/// line instead of a database error later.
fn prepare_data_dir(dir: &Path) -> Result<PathBuf, Error> {
    let fail = |source| Error::DataDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(".parley-write-check");
    std::fs::write(&probe, b"").map_err(fail)?;
    let _ = std::fs::remove_file(&probe);
    std::path::absolute(dir).map_err(fail)
}
