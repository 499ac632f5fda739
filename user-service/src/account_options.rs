//! user-service's delivery, cookie and password-hashing settings as command-line flags and `PARLEY_…`
//! environment variables, shared by the user-service binary and the all-in-one `parley`.

use std::sync::Arc;

use crate::service::SignupPolicy;
use crate::{Config, MailError, SmtpMailer, SmtpSettings};

const DEFAULT_SMTP_PORT: u16 = 587;
const DEFAULT_SMTP_FROM: &str = "Parley <parley@localhost>";

#[derive(Debug, Clone, clap::Args)]
pub struct AccountOptions {
    /// Send verification codes by email through this SMTP server (default: write them to the
    /// log, for a single-user or trusted laptop).
    #[arg(long, env = "PARLEY_SMTP_HOST")]
    pub smtp_host: Option<String>,
    #[arg(long, env = "PARLEY_SMTP_PORT", default_value_t = DEFAULT_SMTP_PORT)]
    pub smtp_port: u16,
    #[arg(long, env = "PARLEY_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    #[arg(long, env = "PARLEY_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    #[arg(long, env = "PARLEY_SMTP_FROM", default_value = DEFAULT_SMTP_FROM)]
    pub smtp_from: String,
    /// Mark the refresh-token cookie `Secure` (when browsers reach Parley over HTTPS).
    #[arg(long, env = "PARLEY_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Password hashes run at once (each takes ~19 MiB; default: one per CPU). Requests beyond
    /// wait up to 2 s, then are refused with RESOURCE_EXHAUSTED and a retry delay.
    #[arg(long, env = "PARLEY_PASSWORD_HASH_CONCURRENCY", value_parser = clap::value_parser!(u16).range(1..))]
    pub password_hash_concurrency: Option<u16>,
    /// Verification codes one email address receives a day, over every account that names it
    /// and every purpose (anyone can sign up with someone else's address).
    #[arg(long, env = "PARLEY_CODES_PER_ADDRESS_PER_DAY", default_value_t = crate::service::CODES_PER_ADDRESS_PER_DAY,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub codes_per_address_per_day: u32,
    /// This account is an administrator (made one at start-up, or when it signs up). The first
    /// account to sign up is one in any case.
    #[arg(long, env = "PARLEY_ADMIN_USERNAME")]
    pub admin_username: Option<String>,
    /// Who may sign up: open, approval (accounts wait for an administrator), invite (invite
    /// codes from an administrator) or closed. An administrator's setting (AdminService)
    /// overrides it.
    #[arg(long, env = "PARLEY_SIGNUP_POLICY", value_enum, default_value_t = SignupPolicy::Open)]
    pub signup_policy: SignupPolicy,
    /// The operator's terms/privacy page (http or https): sign-up then asks for consent and
    /// records when it was given.
    #[arg(long, env = "PARLEY_TERMS_URL")]
    pub terms_url: Option<String>,
}

/// The same values as the flags' defaults: codes to the log, cookies without `Secure`.
impl Default for AccountOptions {
    fn default() -> Self {
        Self {
            smtp_host: None,
            smtp_port: DEFAULT_SMTP_PORT,
            smtp_username: None,
            smtp_password: None,
            smtp_from: DEFAULT_SMTP_FROM.to_string(),
            secure_cookies: false,
            password_hash_concurrency: None,
            codes_per_address_per_day: crate::service::CODES_PER_ADDRESS_PER_DAY,
            admin_username: None,
            signup_policy: SignupPolicy::Open,
            terms_url: None,
        }
    }
}

impl AccountOptions {
    /// Sets the mailer, cookie and hashing settings. Call inside the Tokio runtime: the SMTP
    /// connection pool lives there.
    pub fn apply_to(&self, config: &mut Config) -> Result<(), MailError> {
        config.secure_cookies = self.secure_cookies;
        config.codes_per_address_per_day = self.codes_per_address_per_day;
        config.rules.admin_username = self.admin_username.clone();
        config.rules.signup_policy = self.signup_policy;
        config.rules.terms_url = self.terms_url.clone();
        if let Some(concurrent) = self.password_hash_concurrency {
            config.password_hashing.concurrent = usize::from(concurrent);
        }
        if let Some(host) = &self.smtp_host {
            config.mailer = Arc::new(SmtpMailer::new(SmtpSettings {
                host: host.clone(),
                port: self.smtp_port,
                username: self.smtp_username.clone(),
                password: self.smtp_password.clone(),
                from: self.smtp_from.clone(),
            })?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        accounts: AccountOptions,
    }

    /// `parley` builds the options with `Default`; they must be what the flags default to.
    #[test]
    fn default_is_what_no_flags_give() {
        let parsed = Flags::try_parse_from(["user-service"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            format!("{:?}", parsed.accounts),
            format!("{:?}", AccountOptions::default())
        );
    }
}
