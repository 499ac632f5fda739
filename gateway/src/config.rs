//! The gateway's settings, and the checks that stop start-up on one that would break every call.

use std::path::PathBuf;
use std::time::Duration;

use parley_service_kit::access_token::DEFAULT_REFRESH_INTERVAL;
use parley_service_kit::balanced_channel::Resolver;

use crate::client_addr::IpNetwork;
use crate::edge_options::cors_layer;
use crate::error::Error;
use crate::rate_limit::RateLimit;
use crate::upstream_proxy::check_url;

#[derive(Debug, Clone)]
pub struct Config {
    /// e.g. `http://127.0.0.1:50051`.
    pub user_service_url: String,
    /// e.g. `http://127.0.0.1:50052`.
    pub chat_service_url: String,
    /// The built web UI (`web/dist`). Without it (or while it has no `index.html`) the gateway
    /// serves a page saying the UI is not built.
    pub web_dir: Option<PathBuf>,
    /// A web UI build compiled into the binary, served when `web_dir` is not set.
    pub embedded_ui: Option<crate::web_ui::EmbeddedUi>,
    /// Origins allowed to call from another origin (`https://chat.example.com`), or `*`.
    /// Same-origin use needs none.
    pub cors_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies, load balancers).
    pub trusted_proxies: Vec<IpNetwork>,
    /// Per client address, on the public auth methods. `None`: unlimited.
    pub auth_rate_limit: Option<RateLimit>,
    /// Per client address, on RefreshToken and Logout. `None`: unlimited.
    pub refresh_rate_limit: Option<RateLimit>,
    /// Per client address, on GetSharedChat (opening a shared link). `None`: unlimited.
    pub shared_chat_rate_limit: Option<RateLimit>,
    /// Per user, on SendMessage and RegenerateMessage. `None`: unlimited.
    pub generation_rate_limit: Option<RateLimit>,
    /// Per user, on TestApiConfig and ListModels. `None`: unlimited.
    pub provider_rate_limit: Option<RateLimit>,
    /// The largest request message forwarded, in bytes.
    pub max_message_bytes: usize,
    /// How long a unary call may take (streams are not limited).
    pub unary_timeout: Duration,
    /// API calls in flight (streams included) beyond which new calls are refused with
    /// RESOURCE_EXHAUSTED instead of queueing. Health and reflection do not count.
    pub max_concurrent_calls: usize,
    /// Reflection streams open at once, in a pool of their own so they cannot starve the API.
    pub max_reflection_streams: usize,
    /// Calls one client address may have in flight, so a few addresses cannot take every slot.
    pub max_calls_per_address: usize,
    /// Of those, calls that need no account (sign-in, codes, health, reflection).
    pub max_public_calls_per_address: usize,
    /// Streams (SendMessage, WatchGeneration …) one user may have open at once, so that one
    /// user cannot take every call slot.
    pub max_streams_per_user: usize,
    /// Unary calls one user may have in flight at once (a slow provider can hold one for the
    /// whole unary timeout).
    pub max_unary_calls_per_user: usize,
    /// HTTP/2 streams one connection may have open (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_streams_per_connection: u32,
    /// Open connections; beyond it the gateway accepts no more until one closes.
    pub max_connections: usize,
    /// Open connections from one peer address that is not a trusted proxy; beyond it new
    /// ones are closed at once.
    pub max_connections_per_address: usize,
    /// How long open calls may run on after shutdown was asked for (zero: closed at once).
    pub drain_deadline: Duration,
    /// How long a new connection may take to send its first request's headers (and any
    /// HTTP/1.1 request its headers) before it is closed.
    pub header_timeout: Duration,
    /// How long a connection with no call open may stay before it is closed.
    pub idle_connection_timeout: Duration,
    /// How long connecting to an upstream may take before the call fails UNAVAILABLE.
    pub upstream_connect_timeout: Duration,
    /// How often the upstreams' health is checked once they are all up (more often until then).
    pub health_check_interval: Duration,
    /// How often access-token keys and revocations are fetched from user-service: a revoked
    /// token is refused at the edge within about this long.
    pub access_token_refresh: Duration,
    /// Send `Strict-Transport-Security` with the UI: only behind TLS, where browsers heed it.
    pub hsts: bool,
    /// Resolves the upstreams' names to the replicas calls are balanced over: the system's
    /// resolver (a headless Service's DNS name gives every ready pod); tests give a list.
    pub upstream_resolver: Resolver,
}

/// The largest values the limits may take: beyond them a value is a typo, not a setting.
const MAX_MESSAGE_BYTES: usize = 1 << 30;
const MIN_MESSAGE_BYTES: usize = 1024;
const MAX_CONCURRENT_CALLS: usize = 1_000_000;
const MAX_UNARY_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
const MAX_CONNECTION_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
const MAX_DRAIN_DEADLINE: Duration = Duration::from_secs(60 * 60);

impl Config {
    pub fn new(user_service_url: impl Into<String>, chat_service_url: impl Into<String>) -> Self {
        Self {
            user_service_url: user_service_url.into(),
            chat_service_url: chat_service_url.into(),
            web_dir: None,
            embedded_ui: None,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            auth_rate_limit: Some(RateLimit::per_minute(30)),
            refresh_rate_limit: Some(RateLimit::per_minute(120)),
            shared_chat_rate_limit: Some(RateLimit::per_minute(60)),
            generation_rate_limit: Some(RateLimit::per_minute(30)),
            provider_rate_limit: Some(RateLimit::per_minute(20)),
            max_message_bytes: 4 * 1024 * 1024,
            unary_timeout: Duration::from_secs(60),
            max_concurrent_calls: 1024,
            max_reflection_streams: 16,
            max_calls_per_address: 256,
            max_public_calls_per_address: 32,
            max_streams_per_user: 32,
            max_unary_calls_per_user: 32,
            max_streams_per_connection: 100,
            max_connections: 4096,
            max_connections_per_address: 256,
            drain_deadline: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_connection_timeout: Duration::from_secs(60),
            upstream_connect_timeout: Duration::from_secs(3),
            health_check_interval: Duration::from_secs(5),
            access_token_refresh: DEFAULT_REFRESH_INTERVAL,
            hsts: false,
            upstream_resolver: Resolver::default(),
        }
    }

    /// Checks what can be checked before serving (upstream URLs, CORS origins, limits), so a
    /// configuration mistake stops start-up with one clear line instead of breaking every call.
    pub fn validate(&self) -> Result<(), Error> {
        check_url("user-service", &self.user_service_url)?;
        check_url("chat-service", &self.chat_service_url)?;
        let _ = cors_layer(&self.cors_origins)?;
        let setting =
            |setting: &'static str, expected: &'static str, got: String| Err(Error::Setting { setting, expected, got });
        if !(MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&self.max_message_bytes) {
            return setting(
                "the largest message (--max-message-bytes)",
                "between 1024 bytes and 1 GiB",
                format!("{} bytes", self.max_message_bytes),
            );
        }
        if self.unary_timeout.is_zero() || self.unary_timeout > MAX_UNARY_TIMEOUT {
            return setting(
                "the unary call timeout (--unary-timeout-secs)",
                "more than 0 and at most a day",
                seconds(self.unary_timeout),
            );
        }
        let caps = [
            (
                "the calls in flight (--max-concurrent-calls)",
                self.max_concurrent_calls,
            ),
            (
                "the reflection streams (--max-reflection-streams)",
                self.max_reflection_streams,
            ),
            (
                "the calls per address (--max-calls-per-address)",
                self.max_calls_per_address,
            ),
            (
                "the public calls per address (--max-public-calls-per-address)",
                self.max_public_calls_per_address,
            ),
            (
                "the open streams per user (--max-streams-per-user)",
                self.max_streams_per_user,
            ),
            (
                "the unary calls per user (--max-unary-calls-per-user)",
                self.max_unary_calls_per_user,
            ),
            ("the open connections (--max-connections)", self.max_connections),
            (
                "the connections per address (--max-connections-per-address)",
                self.max_connections_per_address,
            ),
        ];
        for (name, value) in caps {
            if !(1..=MAX_CONCURRENT_CALLS).contains(&value) {
                return setting(name, "between 1 and 1000000", value.to_string());
            }
        }
        if self.max_streams_per_connection == 0 {
            return setting(
                "the streams per connection (--max-streams-per-connection)",
                "at least 1",
                "0".to_string(),
            );
        }
        if self.drain_deadline > MAX_DRAIN_DEADLINE {
            return setting(
                "the drain deadline (--drain-deadline-secs)",
                "at most an hour",
                seconds(self.drain_deadline),
            );
        }
        let connection_timeouts = [
            ("the header timeout (--header-timeout-secs)", self.header_timeout),
            (
                "the idle connection timeout (--idle-connection-timeout-secs)",
                self.idle_connection_timeout,
            ),
        ];
        for (name, timeout) in connection_timeouts {
            if timeout.is_zero() || timeout > MAX_CONNECTION_TIMEOUT {
                return setting(name, "more than 0 and at most a day", seconds(timeout));
            }
        }
        if self.access_token_refresh.is_zero() {
            return setting(
                "the access-token refresh interval (--access-token-refresh-ms)",
                "more than 0",
                seconds(self.access_token_refresh),
            );
        }
        if self.upstream_connect_timeout.is_zero() || self.health_check_interval.is_zero() {
            return setting(
                "the upstream connect timeout and health check interval",
                "more than 0",
                format!(
                    "{} and {}",
                    seconds(self.upstream_connect_timeout),
                    seconds(self.health_check_interval)
                ),
            );
        }
        let limits = [
            self.auth_rate_limit,
            self.refresh_rate_limit,
            self.shared_chat_rate_limit,
            self.generation_rate_limit,
            self.provider_rate_limit,
        ];
        if limits.iter().flatten().any(|l| l.burst > 0 && l.period.is_zero()) {
            return setting("a rate limit's period", "more than 0", "0 s".to_string());
        }
        Ok(())
    }
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}
