//! llm-service's provider settings (timeouts, retries, extra CA certificates, the answer-size
//! cap) as command-line flags and `PARLEY_…` environment variables, shared by the llm-service
//! binary and the all-in-one `parley`. Whether private networks are allowed is not among them: its default
//! differs between the two (off for the service; for `parley`, on only when it listens on
//! loopback), so each binary declares it.

use std::path::PathBuf;
use std::time::Duration;

use crate::{Config, Error};

/// Each flag's default is [`Config::default`]'s value, so the two cannot drift apart.
#[derive(Debug, Clone, clap::Args)]
pub struct ProviderOptions {
    /// Seconds to establish a connection to a provider.
    #[arg(long, env = "PARLEY_LLM_CONNECT_TIMEOUT_SECS", default_value_t = Config::default().connect_timeout.as_secs_f64())]
    pub connect_timeout_secs: f64,
    /// Seconds from the request to the first token.
    #[arg(long, env = "PARLEY_LLM_FIRST_TOKEN_TIMEOUT_SECS", default_value_t = Config::default().first_token_timeout.as_secs_f64())]
    pub first_token_timeout_secs: f64,
    /// Seconds of silence allowed between chunks once the answer has started.
    #[arg(long, env = "PARLEY_LLM_IDLE_TIMEOUT_SECS", default_value_t = Config::default().idle_timeout.as_secs_f64())]
    pub idle_timeout_secs: f64,
    /// Seconds for a whole ListModels or CheckProvider call.
    #[arg(long, env = "PARLEY_LLM_REQUEST_TIMEOUT_SECS", default_value_t = Config::default().request_timeout.as_secs_f64())]
    pub request_timeout_secs: f64,
    /// Retries before the first token (429, 5xx, connect errors).
    #[arg(long, env = "PARLEY_LLM_MAX_RETRIES", default_value_t = Config::default().retry.max_retries)]
    pub max_retries: u32,
    /// Seconds before the first retry when the provider gives no Retry-After; doubles per retry.
    #[arg(long, env = "PARLEY_LLM_INITIAL_BACKOFF_SECS", default_value_t = Config::default().retry.initial_backoff.as_secs_f64())]
    pub initial_backoff_secs: f64,
    /// The longest wait before a retry, also the cap on a provider's Retry-After.
    #[arg(long, env = "PARLEY_LLM_MAX_RETRY_DELAY_SECS", default_value_t = Config::default().retry.max_delay.as_secs_f64())]
    pub max_retry_delay_secs: f64,
    /// A PEM file of CA certificates to trust besides the built-in (Mozilla) roots, for
    /// providers behind an internal CA.
    #[arg(long, env = "PARLEY_EXTRA_CA_CERTS")]
    pub extra_ca_certs: Option<PathBuf>,
    /// The most an answer (reasoning and content together) may grow to, in bytes; a provider
    /// that keeps talking is cut off there and the answer ends as on `length`.
    #[arg(long, env = "PARLEY_LLM_MAX_ANSWER_BYTES", default_value_t = Config::default().max_answer_bytes)]
    pub max_answer_bytes: usize,
}

/// The flags' defaults, for callers that build options without parsing any.
impl Default for ProviderOptions {
    fn default() -> Self {
        let config = Config::default();
        Self {
            connect_timeout_secs: config.connect_timeout.as_secs_f64(),
            first_token_timeout_secs: config.first_token_timeout.as_secs_f64(),
            idle_timeout_secs: config.idle_timeout.as_secs_f64(),
            request_timeout_secs: config.request_timeout.as_secs_f64(),
            max_retries: config.retry.max_retries,
            initial_backoff_secs: config.retry.initial_backoff.as_secs_f64(),
            max_retry_delay_secs: config.retry.max_delay.as_secs_f64(),
            extra_ca_certs: None,
            max_answer_bytes: config.max_answer_bytes,
        }
    }
}

impl ProviderOptions {
    /// Sets the provider settings, refusing values that would break every call.
    pub fn apply_to(&self, config: &mut Config) -> Result<(), Error> {
        config.connect_timeout = timeout("connect-timeout-secs", self.connect_timeout_secs)?;
        config.first_token_timeout = timeout("first-token-timeout-secs", self.first_token_timeout_secs)?;
        config.idle_timeout = timeout("idle-timeout-secs", self.idle_timeout_secs)?;
        config.request_timeout = timeout("request-timeout-secs", self.request_timeout_secs)?;
        config.retry.max_retries = self.max_retries;
        config.retry.initial_backoff = duration("initial-backoff-secs", self.initial_backoff_secs)?;
        config.retry.max_delay = duration("max-retry-delay-secs", self.max_retry_delay_secs)?;
        config.extra_ca_certs = self.extra_ca_certs.clone();
        if self.max_answer_bytes == 0 {
            return Err(Error::Setting {
                flag: "max-answer-bytes",
                problem: "must be more than 0 (0 would end every answer before it starts)",
            });
        }
        config.max_answer_bytes = self.max_answer_bytes;
        Ok(())
    }
}

/// A delay from a flag: zero or more seconds.
fn duration(flag: &'static str, secs: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(secs).map_err(|_| Error::Setting {
        flag,
        problem: "must be a non-negative number of seconds",
    })
}

/// A timeout from a flag: more than zero seconds (zero would fail every call at once).
fn timeout(flag: &'static str, secs: f64) -> Result<Duration, Error> {
    match duration(flag, secs)? {
        Duration::ZERO => Err(Error::Setting {
            flag,
            problem: "must be more than 0 seconds",
        }),
        timeout => Ok(timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options as parsed from no flags at all, whatever the environment holds.
    fn parsed_without_flags() -> ProviderOptions {
        use clap::{CommandFactory, FromArgMatches};

        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            provider: ProviderOptions,
        }
        let command = Flags::command().mut_args(|arg| arg.env(None));
        let matches = command.try_get_matches_from(["llm-service"]).unwrap();
        Flags::from_arg_matches(&matches).unwrap().provider
    }

    #[test]
    fn the_defaults_are_the_config_defaults() {
        let default = Config::default();
        for options in [parsed_without_flags(), ProviderOptions::default()] {
            let mut config = Config::default();
            options.apply_to(&mut config).unwrap();
            assert_eq!(config.connect_timeout, default.connect_timeout);
            assert_eq!(config.first_token_timeout, default.first_token_timeout);
            assert_eq!(config.idle_timeout, default.idle_timeout);
            assert_eq!(config.request_timeout, default.request_timeout);
            assert_eq!(config.retry.max_retries, default.retry.max_retries);
            assert_eq!(config.retry.initial_backoff, default.retry.initial_backoff);
            assert_eq!(config.retry.max_delay, default.retry.max_delay);
            assert_eq!(config.extra_ca_certs, None);
            assert_eq!(config.max_answer_bytes, default.max_answer_bytes);
        }
    }

    #[test]
    fn zero_timeouts_and_negative_delays_are_refused_naming_the_flag() {
        let zero = ProviderOptions {
            idle_timeout_secs: 0.0,
            ..ProviderOptions::default()
        };
        let error = zero.apply_to(&mut Config::default()).unwrap_err().to_string();
        assert_eq!(error, "--idle-timeout-secs must be more than 0 seconds");
        let negative = ProviderOptions {
            initial_backoff_secs: -1.0,
            ..ProviderOptions::default()
        };
        let error = negative.apply_to(&mut Config::default()).unwrap_err().to_string();
        assert!(error.starts_with("--initial-backoff-secs"), "{error}");
        let no_answer = ProviderOptions {
            max_answer_bytes: 0,
            ..ProviderOptions::default()
        };
        let error = no_answer.apply_to(&mut Config::default()).unwrap_err().to_string();
        assert!(error.starts_with("--max-answer-bytes must be more than 0"), "{error}");
    }
}
