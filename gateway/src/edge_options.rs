//! The gateway's edge settings as command-line flags and `PARLEY_…` environment variables,
//! shared by the gateway binary and the all-in-one `parley` binary; and CORS.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use parley_service_kit::trace_context::TRACE_HEADERS;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::client_addr::NetworkList;
use crate::config::Config;
use crate::error::Error;
use crate::rate_limit::RateLimit;

#[derive(Debug, Clone, clap::Args)]
pub struct EdgeOptions {
    /// Origins allowed to call the API from another origin (comma-separated), or `*`.
    /// The UI served by the gateway itself needs none.
    #[arg(long, env = "PARLEY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses or
    /// ranges such as 10.0.0.0/8; empty: none). List only the proxies themselves: a client
    /// inside a listed range could claim any address.
    #[arg(long, env = "PARLEY_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: NetworkList,
    /// Sign-in, sign-up and code calls allowed per client address per minute (0: no limit).
    #[arg(long, env = "PARLEY_AUTH_REQUESTS_PER_MINUTE", default_value_t = 30)]
    pub auth_requests_per_minute: u32,
    /// Token refreshes and sign-outs allowed per client address per minute (0: no limit).
    #[arg(long, env = "PARLEY_REFRESH_REQUESTS_PER_MINUTE", default_value_t = 120)]
    pub refresh_requests_per_minute: u32,
    /// Shared chats (links opened, signed in or not) allowed per client address per minute
    /// (0: no limit).
    #[arg(long, env = "PARLEY_SHARED_CHAT_REQUESTS_PER_MINUTE", default_value_t = 60)]
    pub shared_chat_requests_per_minute: u32,
    /// Messages (and regenerations) allowed per user per minute (0: no limit).
    #[arg(long, env = "PARLEY_MESSAGES_PER_MINUTE", default_value_t = 30)]
    pub messages_per_minute: u32,
    /// Connection tests and model lists (calls to the user's provider) allowed per user per
    /// minute (0: no limit).
    #[arg(long, env = "PARLEY_PROVIDER_CHECKS_PER_MINUTE", default_value_t = 20)]
    pub provider_checks_per_minute: u32,
    /// The largest request message accepted, in bytes.
    #[arg(long, env = "PARLEY_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Seconds a unary call may take.
    #[arg(long, env = "PARLEY_UNARY_TIMEOUT_SECS", default_value_t = 60)]
    pub unary_timeout_secs: u64,
    /// API calls in flight beyond which new ones are refused (RESOURCE_EXHAUSTED). Health
    /// and reflection do not count.
    #[arg(long, env = "PARLEY_MAX_CONCURRENT_CALLS", default_value_t = 1024)]
    pub max_concurrent_calls: usize,
    /// Reflection streams open at once (their own pool, apart from the API's).
    #[arg(long, env = "PARLEY_MAX_REFLECTION_STREAMS", default_value_t = 16)]
    pub max_reflection_streams: usize,
    /// Calls one client address may have in flight (RESOURCE_EXHAUSTED beyond).
    #[arg(long, env = "PARLEY_MAX_CALLS_PER_ADDRESS", default_value_t = 256)]
    pub max_calls_per_address: usize,
    /// Of those, calls that need no account (sign-in, codes, health, reflection).
    #[arg(long, env = "PARLEY_MAX_PUBLIC_CALLS_PER_ADDRESS", default_value_t = 32)]
    pub max_public_calls_per_address: usize,
    /// Streams (answers being followed) one user may have open at once (RESOURCE_EXHAUSTED
    /// beyond).
    #[arg(long, env = "PARLEY_MAX_STREAMS_PER_USER", default_value_t = 32)]
    pub max_streams_per_user: usize,
    /// Unary calls one user may have in flight at once (RESOURCE_EXHAUSTED beyond).
    #[arg(long, env = "PARLEY_MAX_UNARY_CALLS_PER_USER", default_value_t = 32)]
    pub max_unary_calls_per_user: usize,
    /// HTTP/2 streams one connection may have open at once (advertised to clients).
    #[arg(long, env = "PARLEY_MAX_STREAMS_PER_CONNECTION", default_value_t = 100)]
    pub max_streams_per_connection: u32,
    /// Open connections; beyond it new ones wait until one closes.
    #[arg(long, env = "PARLEY_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Open connections from one address that is not a trusted proxy (new ones are closed
    /// beyond it).
    #[arg(long, env = "PARLEY_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256)]
    pub max_connections_per_address: usize,
    /// Seconds open calls may run on after a shutdown signal (0: closed at once).
    #[arg(long, env = "PARLEY_DRAIN_DEADLINE_SECS", default_value_t = 10)]
    pub drain_deadline_secs: u64,
    /// Seconds a new connection may take to send its first request (and an HTTP/1.1 request
    /// its headers) before it is closed.
    #[arg(long, env = "PARLEY_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a connection with no call open may stay before it is closed (HTTP/2 pings do
    /// not keep it).
    #[arg(long, env = "PARLEY_IDLE_CONNECTION_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_connection_timeout_secs: u64,
    /// Send Strict-Transport-Security with the web UI. Only behind TLS (an HTTPS ingress).
    #[arg(long, env = "PARLEY_HSTS")]
    pub hsts: bool,
}

/// The same values as the flags' defaults.
impl Default for EdgeOptions {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            trusted_proxies: NetworkList::default(),
            auth_requests_per_minute: 30,
            refresh_requests_per_minute: 120,
            shared_chat_requests_per_minute: 60,
            messages_per_minute: 30,
            provider_checks_per_minute: 20,
            max_message_bytes: 4 * 1024 * 1024,
            unary_timeout_secs: 60,
            max_concurrent_calls: 1024,
            max_reflection_streams: 16,
            max_calls_per_address: 256,
            max_public_calls_per_address: 32,
            max_streams_per_user: 32,
            max_unary_calls_per_user: 32,
            max_streams_per_connection: 100,
            max_connections: 4096,
            max_connections_per_address: 256,
            drain_deadline_secs: 10,
            header_timeout_secs: 10,
            idle_connection_timeout_secs: 60,
            hsts: false,
        }
    }
}

impl EdgeOptions {
    /// Sets the gateway's edge settings from these options.
    pub fn apply_to(&self, config: &mut Config) {
        config.cors_origins = self
            .cors_origins
            .iter()
            .filter(|o| !o.trim().is_empty())
            .cloned()
            .collect();
        config.trusted_proxies = self.trusted_proxies.0.clone();
        let per_minute = |calls: u32| (calls > 0).then(|| RateLimit::per_minute(calls));
        config.auth_rate_limit = per_minute(self.auth_requests_per_minute);
        config.refresh_rate_limit = per_minute(self.refresh_requests_per_minute);
        config.shared_chat_rate_limit = per_minute(self.shared_chat_requests_per_minute);
        config.generation_rate_limit = per_minute(self.messages_per_minute);
        config.provider_rate_limit = per_minute(self.provider_checks_per_minute);
        config.max_message_bytes = self.max_message_bytes;
        config.unary_timeout = Duration::from_secs(self.unary_timeout_secs);
        config.max_concurrent_calls = self.max_concurrent_calls;
        config.max_reflection_streams = self.max_reflection_streams;
        config.max_calls_per_address = self.max_calls_per_address;
        config.max_public_calls_per_address = self.max_public_calls_per_address;
        config.max_streams_per_user = self.max_streams_per_user;
        config.max_unary_calls_per_user = self.max_unary_calls_per_user;
        config.max_streams_per_connection = self.max_streams_per_connection;
        config.max_connections = self.max_connections;
        config.max_connections_per_address = self.max_connections_per_address;
        config.drain_deadline = Duration::from_secs(self.drain_deadline_secs);
        config.header_timeout = Duration::from_secs(self.header_timeout_secs);
        config.idle_connection_timeout = Duration::from_secs(self.idle_connection_timeout_secs);
        config.hsts = self.hsts;
    }
}

/// Headers a gRPC-web client sends (connect-web, grpc-web, buf) plus auth; the trace context
/// headers are allowed too.
const ALLOWED_HEADERS: &[&str] = &[
    "content-type",
    "authorization",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "x-request-id",
];

/// Response headers a cross-origin gRPC-web client must be able to read.
const EXPOSED_HEADERS: &[&str] = &["grpc-status", "grpc-message", "grpc-status-details-bin", "x-request-id"];

/// Listed origins may send credentials (user-service keeps the browser's refresh token in an
/// HttpOnly cookie); `*` may not, as browsers refuse credentials with a wildcard.
pub(crate) fn cors_layer(origins: &[String]) -> Result<CorsLayer, Error> {
    let any = origins.iter().any(|o| o.trim() == "*");
    let allow_origin = if any {
        AllowOrigin::any()
    } else {
        let mut list = Vec::new();
        for origin in origins {
            let origin = origin.trim().trim_end_matches('/');
            let valid = origin.parse::<http::Uri>().is_ok_and(|u| {
                u.scheme().is_some() && u.host().is_some() && u.path_and_query().is_none_or(|p| p.as_str() == "/")
            });
            if !valid {
                return Err(Error::CorsOrigin(origin.to_string()));
            }
            list.push(HeaderValue::from_str(origin).map_err(|_| Error::CorsOrigin(origin.to_string()))?);
        }
        AllowOrigin::list(list)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
        .allow_headers(
            ALLOWED_HEADERS
                .iter()
                .chain(TRACE_HEADERS.iter())
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .expose_headers(
            EXPOSED_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .allow_credentials(!any)
        .max_age(Duration::from_secs(24 * 60 * 60)))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        edge: EdgeOptions,
    }

    #[test]
    fn defaults_match_the_flags_defaults() {
        let parsed = Cli::try_parse_from(["gateway"]).unwrap_or_else(|e| panic!("{e}"));
        let mut from_flags = Config::new("http://a:1", "http://b:2");
        parsed.edge.apply_to(&mut from_flags);
        let mut from_default = Config::new("http://a:1", "http://b:2");
        EdgeOptions::default().apply_to(&mut from_default);
        assert_eq!(format!("{from_flags:?}"), format!("{from_default:?}"));
    }

    #[test]
    fn zero_and_absurd_limits_are_refused_naming_the_flag() {
        let valid = || {
            let mut config = Config::new("http://a:1", "http://b:2");
            EdgeOptions::default().apply_to(&mut config);
            config
        };
        assert!(valid().validate().is_ok());
        let refused = |flag: &str, args: &[&str]| {
            let mut argv = vec!["gateway"];
            argv.extend_from_slice(args);
            let parsed = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
            let mut config = valid();
            parsed.edge.apply_to(&mut config);
            match config.validate() {
                Err(e @ Error::Setting { .. }) => {
                    let line = e.to_string();
                    assert!(line.contains(flag) && !line.contains('\n'), "{line}");
                }
                other => panic!("{args:?} was not refused: {other:?}"),
            }
        };
        refused("--unary-timeout-secs", &["--unary-timeout-secs", "0"]);
        refused("--unary-timeout-secs", &["--unary-timeout-secs", "99999999999"]);
        refused("--max-message-bytes", &["--max-message-bytes", "0"]);
        refused("--max-message-bytes", &["--max-message-bytes", "99999999999999"]);
        refused("--max-concurrent-calls", &["--max-concurrent-calls", "0"]);
        // Past tokio's semaphore limit, which would panic instead.
        refused(
            "--max-concurrent-calls",
            &["--max-concurrent-calls", "18446744073709551615"],
        );
        refused("--max-streams-per-user", &["--max-streams-per-user", "0"]);
        refused("--max-reflection-streams", &["--max-reflection-streams", "0"]);
        refused("--max-calls-per-address", &["--max-calls-per-address", "0"]);
        refused(
            "--max-public-calls-per-address",
            &["--max-public-calls-per-address", "0"],
        );
        refused("--max-unary-calls-per-user", &["--max-unary-calls-per-user", "0"]);
        refused("--max-streams-per-connection", &["--max-streams-per-connection", "0"]);
        refused("--max-connections", &["--max-connections", "0"]);
        refused("--max-connections", &["--max-connections", "99999999"]);
        refused("--max-connections-per-address", &["--max-connections-per-address", "0"]);
        refused("--drain-deadline-secs", &["--drain-deadline-secs", "86400"]);
        refused("--header-timeout-secs", &["--header-timeout-secs", "0"]);
        refused(
            "--idle-connection-timeout-secs",
            &["--idle-connection-timeout-secs", "0"],
        );
        refused(
            "--idle-connection-timeout-secs",
            &["--idle-connection-timeout-secs", "99999999"],
        );

        // Zero means "closed at once" for the drain and "no limit" for the rate limits.
        let parsed = Cli::try_parse_from([
            "gateway",
            "--drain-deadline-secs",
            "0",
            "--auth-requests-per-minute",
            "0",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let mut config = valid();
        parsed.edge.apply_to(&mut config);
        assert!(config.validate().is_ok());
        assert_eq!(config.auth_rate_limit, None);

        let mut config = valid();
        config.health_check_interval = Duration::ZERO;
        assert!(matches!(config.validate(), Err(Error::Setting { .. })));
        let mut config = valid();
        config.generation_rate_limit = Some(RateLimit {
            burst: 3,
            period: Duration::ZERO,
        });
        assert!(matches!(config.validate(), Err(Error::Setting { .. })));
    }

    #[test]
    fn cors_origins_must_be_origins() {
        assert!(cors_layer(&["https://chat.example.com".into()]).is_ok());
        assert!(cors_layer(&["*".into()]).is_ok());
        assert!(matches!(
            cors_layer(&["not an origin".into()]),
            Err(Error::CorsOrigin(_))
        ));
        assert!(matches!(
            cors_layer(&["https://chat.example.com/path".into()]),
            Err(Error::CorsOrigin(_))
        ));
    }
}
