//! Test support, not part of the service: a mailer that keeps mails in memory so the
//! integration tests can read the codes. Hidden from the docs; nothing shipped uses it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::mailer::{MailError, Mailer, Purpose, VerificationMail};

/// Keeps every mail in memory, for tests to read codes from.
#[derive(Clone, Default)]
pub struct RecordingMailer {
    mails: Arc<Mutex<Vec<VerificationMail>>>,
    sent: Arc<tokio::sync::Notify>,
}

impl RecordingMailer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every mail sent so far, oldest first.
    pub fn mails(&self) -> Vec<VerificationMail> {
        self.mails.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The latest code sent to `username` for `purpose`, if any.
    pub fn last_code(&self, username: &str, purpose: Purpose) -> Option<String> {
        self.mails()
            .into_iter()
            .rev()
            .find(|m| m.username == username && m.purpose == purpose)
            .map(|m| m.code)
    }

    /// Waits (up to `timeout`) until the number of mails sent reaches `count`, since delivery
    /// runs in the background after the call that asked for it returned.
    pub async fn wait_for_mails(&self, count: usize, timeout: Duration) -> Vec<VerificationMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.sent.notified();
            let mails = self.mails();
            if mails.len() >= count {
                return mails;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.mails();
            }
        }
    }
}

#[async_trait::async_trait]
impl Mailer for RecordingMailer {
    async fn send_code(&self, mail: VerificationMail) -> Result<(), MailError> {
        if let Ok(mut mails) = self.mails.lock() {
            mails.push(mail);
        }
        self.sent.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recording_mailer_keeps_codes() {
        let mailer = RecordingMailer::new();
        let mail = VerificationMail {
            username: "bob".into(),
            email: None,
            purpose: Purpose::PasswordReset,
            code: "111111".into(),
            expires_in: Duration::from_secs(600),
        };
        mailer.send_code(mail).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mailer.wait_for_mails(1, Duration::from_secs(1)).await.len(), 1);
        assert_eq!(
            mailer.last_code("bob", Purpose::PasswordReset).as_deref(),
            Some("111111")
        );
        assert_eq!(mailer.last_code("bob", Purpose::EmailVerify), None);
    }
}
