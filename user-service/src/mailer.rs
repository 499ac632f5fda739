//! How verification codes reach people. The default [`LogMailer`] writes the code to the
//! service log (no SMTP needed on a laptop); [`SmtpMailer`] sends email. The log mailer is the
//! only place a code is ever logged.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    PasswordReset,
    EmailVerify,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::EmailVerify => "email_verify",
        }
    }
}

/// One code to deliver.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationMail {
    pub username: String,
    /// Where to send it; `None` when the account has no email address.
    pub email: Option<String>,
    pub purpose: Purpose,
    pub code: String,
    pub expires_in: Duration,
}

// Hand-written so a mail printed with `{:?}` never shows its code.
impl std::fmt::Debug for VerificationMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationMail")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("purpose", &self.purpose)
            .field("code", &"<redacted>")
            .finish()
    }
}

/// Why a mailer could not be set up or could not deliver: the mailer's own error (the
/// service only logs failed deliveries; it never answers a caller with one).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the account has no email address")]
    NoAddress,
    #[error("invalid address: {0}")]
    Address(String),
    #[error("building the message failed: {0}")]
    Build(String),
    #[error("SMTP: {0}")]
    Smtp(String),
}

#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    async fn send_code(&self, mail: VerificationMail) -> Result<(), MailError>;

    /// Whether codes end up in the service log (so the operator is told at start-up).
    fn delivers_to_log(&self) -> bool {
        false
    }
}

/// Writes codes to the service log: the operator reads them off the console.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMailer;

#[async_trait::async_trait]
impl Mailer for LogMailer {
    async fn send_code(&self, mail: VerificationMail) -> Result<(), MailError> {
        let login = mail.email.as_deref().unwrap_or(&mail.username);
        tracing::info!(
            login = %login,
            username = %mail.username,
            purpose = mail.purpose.as_str(),
            code = %mail.code,
            "verification code (log mailer: no SMTP configured)"
        );
        Ok(())
    }

    fn delivers_to_log(&self) -> bool {
        true
    }
}

/// SMTP settings (STARTTLS on the given port; implicit TLS on 465).
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
}

/// Sends codes by email. Build it inside the Tokio runtime (its connection pool lives there).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(settings: SmtpSettings) -> Result<Self, MailError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::Address(format!("from: {e}")))?;
        let builder = if settings.port == 465 {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
        }
        .map_err(|e| MailError::Smtp(e.to_string()))?;
        let mut builder = builder.port(settings.port).timeout(Some(Duration::from_secs(20)));
        if let (Some(user), Some(password)) = (settings.username, settings.password) {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

fn subject_and_body(mail: &VerificationMail) -> (String, String) {
    let minutes = mail.expires_in.as_secs().div_ceil(60);
    let what = match mail.purpose {
        Purpose::PasswordReset => "reset your Parley password",
        Purpose::EmailVerify => "verify your email address on Parley",
    };
    (
        format!("Your Parley code: {}", mail.code),
        format!(
            "Hello {},\n\nUse this code to {what}:\n\n    {}\n\nIt expires in {minutes} minutes. If you did not ask for it, ignore this mail.\n",
            mail.username, mail.code
        ),
    )
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send_code(&self, mail: VerificationMail) -> Result<(), MailError> {
        let to: Mailbox = mail
            .email
            .as_deref()
            .ok_or(MailError::NoAddress)?
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?;
        let (subject, body) = subject_and_body(&mail);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Smtp(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn log_mailer_writes_the_code_and_login() {
        let logs = parley_testkit::captured_logs::CapturedLogs::new();
        let _guard = logs.capture_thread();
        LogMailer
            .send_code(VerificationMail {
                username: "alice".into(),
                email: Some("alice@example.com".into()),
                purpose: Purpose::EmailVerify,
                code: "042137".into(),
                expires_in: Duration::from_secs(600),
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let line = logs.contents();
        assert!(line.contains("code=042137"), "{line}");
        assert!(line.contains("login=alice@example.com"), "{line}");
        assert!(line.contains("INFO"), "{line}");
    }

    #[test]
    fn debug_output_hides_the_code() {
        let mail = VerificationMail {
            username: "alice".into(),
            email: None,
            purpose: Purpose::PasswordReset,
            code: "123456".into(),
            expires_in: Duration::from_secs(600),
        };
        assert!(!format!("{mail:?}").contains("123456"));
        let (subject, body) = subject_and_body(&mail);
        assert!(subject.contains("123456") && body.contains("10 minutes"));
    }

    // The transport's connection pool needs a runtime, as in the service.
    #[tokio::test]
    async fn smtp_settings_are_checked() {
        let settings = SmtpSettings {
            host: "smtp.example.com".into(),
            port: 587,
            username: Some("u".into()),
            password: Some("p".into()),
            from: "Parley <parley@example.com>".into(),
        };
        assert!(SmtpMailer::new(settings.clone()).is_ok());
        assert!(
            SmtpMailer::new(SmtpSettings {
                from: "not an address".into(),
                ..settings
            })
            .is_err()
        );
    }
}
