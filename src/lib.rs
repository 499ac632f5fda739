//! Parley in one process: user-service, chat-service and llm-service on internal loopback
//! ports, the gateway on the public one, SQLite files and generated keys under one data
//! directory. What a laptop needs; the distributed deployment runs each binary on its own.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinHandle};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[derive(Debug, Clone)]
pub struct StackConfig {
    /// SQLite databases and keys live here; created when missing.
    pub data_dir: PathBuf,
    /// A built web UI directory, served instead of `embedded_ui`; a placeholder page is served
    /// while it has no `index.html`.
    pub web_dir: Option<PathBuf>,
    /// The web UI compiled into the binary ([`embedded_ui`]).
    pub embedded_ui: Option<gateway::EmbeddedUi>,
    /// The gateway's edge settings (rate limits, CORS, limits).
    pub edge: gateway::EdgeOptions,
    /// How user-service delivers codes (log or SMTP) and marks its cookie.
    pub accounts: user_service::AccountOptions,
    /// Whether LLM calls may reach loopback and private addresses (a local Ollama); `None`
    /// decides by the listener (see [`private_networks_allowed`]).
    pub allow_private_networks: Option<bool>,
    /// llm-service's timeouts, retries and extra CA certificates.
    pub provider: llm_service::ProviderOptions,
    /// Give chats stored before chat data was keyed by account UUID to the first account
    /// signing in with their integer user id (an upgrade whose user database was never reset).
    pub adopt_legacy_chats: bool,
    /// Every account's chat quotas unless an administrator overrides them (0: unlimited).
    pub quotas: chat_service::QuotaLimits,
    /// Room limits, the retention sweep and NATS (which the all-in-one does not need: its
    /// room events stay in process unless given one).
    pub rooms: chat_service::RoomOptions,
    /// Export and import limits (--max-import-bytes).
    pub transfer: chat_service::TransferOptions,
    /// Prompt library and folder limits.
    pub library: chat_service::LibraryOptions,
    /// How often every service's token verifier fetches keys and revocations: a logged-out
    /// session or deleted account is refused within about this long.
    pub verifier: parley_service_kit::access_token::VerifierOptions,
    /// Where the gateway serves Prometheus metrics (`/metrics`); `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
}

impl StackConfig {
    /// A stack under `data_dir` with every setting at its default: private networks allowed
    /// when it listens on loopback only (a laptop, where a local Ollama or llama.cpp server is
    /// the point), refused otherwise.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            web_dir: None,
            embedded_ui: Some(embedded_ui()),
            edge: gateway::EdgeOptions::default(),
            accounts: user_service::AccountOptions::default(),
            allow_private_networks: None,
            provider: llm_service::ProviderOptions::default(),
            adopt_legacy_chats: false,
            quotas: chat_service::QuotaLimits::default(),
            rooms: chat_service::RoomOptions::default(),
            transfer: chat_service::TransferOptions::default(),
            library: chat_service::LibraryOptions::default(),
            verifier: parley_service_kit::access_token::VerifierOptions::default(),
            metrics_listen: None,
        }
    }
}

/// The web UI compiled into this binary by `build.rs` from `web/dist`: empty when the UI was
/// not built before the binary was.
pub fn embedded_ui() -> gateway::EmbeddedUi {
    static FILES: &[gateway::EmbeddedFile] = include!(concat!(env!("OUT_DIR"), "/embedded_ui.rs"));
    gateway::EmbeddedUi::new(FILES)
}

/// Whether LLM calls may reach loopback and private addresses: what the operator said, else
/// only when the stack listens on loopback. Listening on every address (or a LAN one) with
/// open sign-up, allowing them would let any visitor make Parley probe the network it runs
/// in; on loopback the visitors are on the machine already, and a local Ollama is the point.
pub fn private_networks_allowed(explicit: Option<bool>, listen: SocketAddr) -> bool {
    explicit.unwrap_or_else(|| listens_on_loopback(listen))
}

/// Whether only this machine can reach `listen` (`::ffff:127.0.0.1` too).
fn listens_on_loopback(listen: SocketAddr) -> bool {
    listen.ip().to_canonical().is_loopback()
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot use the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cannot open an internal port: {0}")]
    InternalPort(std::io::Error),
    #[error("cannot listen for metrics on {addr}: {source}")]
    MetricsPort { addr: SocketAddr, source: std::io::Error },
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
    #[error("{0} stopped without being asked to")]
    StoppedEarly(&'static str),
    #[error("{service} crashed: {reason}")]
    Crashed { service: &'static str, reason: String },
    /// The shutdown signal came before every service was serving; everything started has
    /// been stopped again.
    #[error("shut down during start-up")]
    Interrupted,
}

type Shutdown = Shared<BoxFuture<'static, ()>>;

/// One of the four services, running as its own task with its own stop signal, so the stack
/// can stop them one after the other.
struct RunningService {
    name: &'static str,
    stop: Option<oneshot::Sender<()>>,
    /// `None` once its end has been collected.
    task: Option<JoinHandle<Result<(), Error>>>,
}

impl RunningService {
    fn spawn<F>(name: &'static str, serve: impl FnOnce(BoxFuture<'static, ()>) -> F) -> Self
    where
        F: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            async move {
                let _ = stopped.await;
            }
            .boxed(),
        ));
        Self {
            name,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Asks the service to stop and waits until it has (it drains what it has open first).
    async fn stop(&mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => joined(self.name, task.await),
            None => Ok(()),
        }
    }
}

fn joined(name: &'static str, joined: Result<Result<(), Error>, JoinError>) -> Result<(), Error> {
    joined.map_err(|e| Error::Crashed {
        service: name,
        reason: e.to_string(),
    })?
}

/// The services in the order they stop: the gateway first (it stops accepting and lets open
/// calls finish, streams included, while everything behind it still runs), then chat-service
/// (which stops what still generates), then llm-service, then user-service (which chat-service
/// asks for keys until the end).
struct Services(Vec<RunningService>);

impl Services {
    /// The first service to end on its own, and how it ended (stopping early is a failure too).
    async fn first_to_end(&mut self) -> Error {
        let running: Vec<_> = self
            .0
            .iter_mut()
            .filter_map(|s| {
                let name = s.name;
                Some(s.task.as_mut()?.map(move |ended| (name, ended)))
            })
            .collect();
        if running.is_empty() {
            return std::future::pending().await;
        }
        let ((name, ended), _, _) = futures::future::select_all(running).await;
        if let Some(service) = self.0.iter_mut().find(|s| s.name == name) {
            service.task = None;
        }
        match joined(name, ended) {
            Ok(()) => Error::StoppedEarly(name),
            Err(error) => error,
        }
    }

    /// Stops every service in order; the first failure among them is the result.
    async fn stop_in_order(&mut self) -> Result<(), Error> {
        let mut result = Ok(());
        for service in &mut self.0 {
            tracing::info!(service = service.name, "stopping");
            let stopped = service.stop().await;
            if let Err(error) = stopped {
                tracing::error!(service = service.name, %error, "did not stop cleanly");
                result = result.and(Err(error));
            }
        }
        result
    }
}

/// The stack, started: every service is serving, so clients can use it from now on.
pub struct RunningStack {
    /// Where the gateway listens.
    pub addr: SocketAddr,
    services: Services,
    shutdown: Shutdown,
}

impl RunningStack {
    /// The address to show a person.
    pub fn url(&self) -> String {
        format!("http://{}", reachable(self.addr))
    }

    /// Runs until the shutdown signal, then stops the services one after the other (see
    /// [`Services`]); or until one fails, which stops the others and is the result.
    pub async fn wait(mut self) -> Result<(), Error> {
        let shutdown = self.shutdown.clone();
        tokio::select! {
            () = shutdown => self.services.stop_in_order().await,
            failure = self.services.first_to_end() => {
                tracing::error!(error = %failure, "a service failed; stopping the others");
                let _ = self.services.stop_in_order().await;
                Err(failure)
            }
        }
    }
}

/// Checks the data directory, binds the internal ports, starts all four services (the gateway
/// on `listener`) and returns once every one of them is serving. A service that fails on the
/// way (a corrupt database, a wrong key) is the error, after the others were stopped.
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
    // The gateway reports SERVING only once user-service and chat-service do; llm-service is
    // behind chat-service, which does not check it, so it is asked itself.
    let health_urls = [llm_url.clone(), format!("http://{}", reachable(addr))];

    let mut user_config = user_service::Config::new(user_service::Config::default_database_url(&data_dir), &data_dir);
    config.accounts.apply_to(&mut user_config)?;
    // Deleted accounts' chats are erased there; user-service starts first, and its outbox
    // retries until chat-service answers.
    user_config.chat_service_url = Some(chat_url.clone());
    let token_refresh = config.verifier.refresh_interval();
    user_config.revocation_refresh_interval = token_refresh;
    let mut chat_config = chat_service::Config::new(
        chat_service::Config::default_database_url(&data_dir),
        &data_dir,
        user_url.clone(),
        llm_url,
    );
    chat_config.adopt_legacy_chats = config.adopt_legacy_chats;
    chat_config.quotas = config.quotas;
    config.rooms.clone().apply(&mut chat_config);
    config.transfer.clone().apply(&mut chat_config);
    config.library.clone().apply(&mut chat_config);
    chat_config.access_token_refresh = token_refresh;
    let mut llm_config = llm_service::Config {
        allow_private_networks: private_networks_allowed(config.allow_private_networks, addr),
        // On loopback the users are on the machine: what a local provider says (Ollama's
        // "try pulling it first") helps them and tells them nothing they could not read.
        echo_private_provider_errors: listens_on_loopback(addr),
        ..llm_service::Config::default()
    };
    config.provider.apply_to(&mut llm_config)?;
    let mut gateway_config = gateway::Config::new(user_url, chat_url);
    match (&config.web_dir, &config.embedded_ui) {
        (Some(dir), _) => tracing::info!(dir = %dir.display(), "serving the web UI from a directory"),
        (None, Some(ui)) if ui.is_built() => tracing::info!(files = ui.len(), "serving the embedded web UI"),
        (None, _) => tracing::warn!(
            "this binary was built without the web UI (web/dist was empty): the API works, the \
             browser gets a page saying so; `make run` builds both, or pass --web-dir"
        ),
    }
    gateway_config.web_dir = config.web_dir;
    gateway_config.embedded_ui = config.embedded_ui;
    config.edge.apply_to(&mut gateway_config);
    gateway_config.access_token_refresh = token_refresh;
    gateway_config.validate()?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| Error::MetricsPort { addr, source })?,
        ),
        None => None,
    };

    let mut services = Services(vec![
        RunningService::spawn("gateway", |stop| async move {
            Ok(gateway::serve_with_metrics(listener, metrics_listener, gateway_config, stop).await?)
        }),
        RunningService::spawn("chat-service", |stop| async move {
            Ok(chat_service::serve(chat_listener, chat_config, stop).await?)
        }),
        RunningService::spawn("llm-service", |stop| async move {
            Ok(llm_service::serve(llm_listener, llm_config, stop).await?)
        }),
        RunningService::spawn("user-service", |stop| async move {
            Ok(user_service::serve(user_listener, user_config, stop).await?)
        }),
    ]);
    let shutdown = shutdown.boxed().shared();
    tokio::select! {
        () = all_serving(&health_urls) => Ok(RunningStack {
            addr,
            services,
            shutdown,
        }),
        failure = services.first_to_end() => {
            let _ = services.stop_in_order().await;
            Err(failure)
        }
        () = shutdown.clone() => {
            services.stop_in_order().await?;
            Err(Error::Interrupted)
        }
    }
}

/// Where a client reaches a listener: an unspecified address (0.0.0.0) is reachable on
/// loopback.
fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(Ipv4Addr::LOCALHOST.into());
    }
    addr
}

/// Waits until every one of `urls` answers `grpc.health.v1` with SERVING (the gateway does once
/// its upstreams do). No deadline: a service that cannot start fails instead, and that ends
/// the wait.
async fn all_serving(urls: &[String]) {
    for url in urls {
        let Ok(endpoint) = tonic::transport::Endpoint::from_shared(url.clone()) else {
            continue;
        };
        let mut health = HealthClient::new(endpoint.connect_timeout(HEALTH_CHECK_TIMEOUT).connect_lazy());
        loop {
            let check = health.check(HealthCheckRequest { service: String::new() });
            let serving = matches!(
                tokio::time::timeout(HEALTH_CHECK_TIMEOUT, check).await,
                Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32
            );
            if serving {
                break;
            }
            tokio::time::sleep(HEALTH_CHECK_RETRY).await;
        }
    }
}

const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
const HEALTH_CHECK_RETRY: Duration = Duration::from_millis(50);

/// Creates the directory and proves it writable now, so a bad path fails start-up with one
/// line instead of a database error later.
fn prepare_data_dir(dir: &Path) -> Result<PathBuf, Error> {
    let fail = |source| Error::DataDir {
        path: dir.display().to_string(),
        source,
    };
    // Owner-only (0700), like the key files it holds.
    parley_service_kit::database::create_private_dir(dir).map_err(fail)?;
    let probe = dir.join(".parley-write-check");
    std::fs::write(&probe, b"").map_err(fail)?;
    let _ = std::fs::remove_file(&probe);
    std::path::absolute(dir).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_networks_follow_the_listener_unless_the_operator_says() {
        let at = |address: &str| address.parse::<SocketAddr>().unwrap_or_else(|_| unreachable!());
        for loopback in ["127.0.0.1:8080", "127.1.2.3:0", "[::1]:8080", "[::ffff:127.0.0.1]:8080"] {
            assert!(private_networks_allowed(None, at(loopback)), "{loopback}");
            assert!(!private_networks_allowed(Some(false), at(loopback)), "{loopback}");
        }
        for everywhere in [
            "0.0.0.0:8080",
            "[::]:8080",
            "192.168.1.20:8080",
            "10.0.0.5:80",
            "203.0.113.9:443",
        ] {
            assert!(!private_networks_allowed(None, at(everywhere)), "{everywhere}");
            assert!(private_networks_allowed(Some(true), at(everywhere)), "{everywhere}");
        }
    }
}
