//! user-service's delivery and cookie settings as command-line flags and `PARLEY_…`
//! environment variables, shared by the user-service binary and the all-in-one `parley`.

use std::sync::Arc;

use crate::{Config, MailError, SmtpMailer, SmtpSettings};

#[derive(Debug, Clone, clap::Args)]
pub struct AccountOptions {
    /// Send verification codes by email through this SMTP server (default: write them to the
    /// log, for a single-user or trusted laptop).
    #[arg(long, env = "PARLEY_SMTP_HOST")]
    pub smtp_host: Option<String>,
    #[arg(long, env = "PARLEY_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    #[arg(long, env = "PARLEY_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    #[arg(long, env = "PARLEY_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    #[arg(long, env = "PARLEY_SMTP_FROM", default_value = "Parley <parley@localhost>")]
    pub smtp_from: String,
    /// Mark the refresh-token cookie `Secure` (when browsers reach Parley over HTTPS).
    #[arg(long, env = "PARLEY_SECURE_COOKIES")]
    pub secure_cookies: bool,
}

/// The same values as the flags' defaults: codes to the log, cookies without `Secure`.
impl Default for AccountOptions {
    fn default() -> Self {
        Self {
            smtp_host: None,
            smtp_port: 587,
            smtp_username: None,
            smtp_password: None,
            smtp_from: "Parley <parley@localhost>".to_string(),
            secure_cookies: false,
        }
    }
}

impl AccountOptions {
    /// Sets the mailer and cookie settings. Call inside the Tokio runtime: the SMTP
    /// connection pool lives there.
    pub fn apply_to(&self, config: &mut Config) -> Result<(), MailError> {
        config.secure_cookies = self.secure_cookies;
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
