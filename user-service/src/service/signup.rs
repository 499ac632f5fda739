//! Who may sign up: the policy (the flag's, until an administrator sets one) and invite codes.

use std::time::Duration;

use parley_service_kit::database::now_millis;

use super::{AccountService, millis};
use crate::Error;
use crate::store::InviteRow;
use crate::verification;

/// Who may sign up (`--signup-policy`, or an administrator's setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignupPolicy {
    /// Anyone.
    Open,
    /// Anyone; the account waits until an administrator approves it.
    Approval,
    /// Only with an invite code.
    Invite,
    /// Nobody (but the first account).
    Closed,
}

impl SignupPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Approval => "approval",
            Self::Invite => "invite",
            Self::Closed => "closed",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [Self::Open, Self::Approval, Self::Invite, Self::Closed]
            .into_iter()
            .find(|policy| policy.as_str() == value)
    }
}

/// The settings row holding an administrator's policy.
const POLICY_SETTING: &str = "signup_policy";
/// An invite without an expiry lasts this long; none lasts longer than the maximum.
pub const DEFAULT_INVITE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);
pub const MAX_INVITE_LIFETIME: Duration = Duration::from_secs(366 * 24 * 60 * 60);
pub const MAX_INVITE_USES: i64 = 1000;

/// A CreateInviteCode request as it came.
#[derive(Debug, Default, Clone, Copy)]
pub struct InviteRequest {
    /// 0 means 1.
    pub max_uses: i64,
    /// Unix milliseconds; `None`: [`DEFAULT_INVITE_LIFETIME`] from now.
    pub expires_at: Option<i64>,
}

impl AccountService {
    /// The policy in force, and whether an administrator set it.
    pub async fn signup_policy(&self) -> Result<(SignupPolicy, bool), Error> {
        Ok(match self.store.setting(POLICY_SETTING).await? {
            // A value this version does not know (written by a newer one) is not guessed at:
            // closed is the safe reading.
            Some(value) => (SignupPolicy::parse(&value).unwrap_or(SignupPolicy::Closed), true),
            None => (self.default_signup_policy, false),
        })
    }

    /// The policy and the terms to accept, for the sign-up page.
    pub async fn signup_info(&self) -> Result<(SignupPolicy, Option<&str>), Error> {
        Ok((self.signup_policy().await?.0, self.terms_url.as_deref()))
    }

    pub async fn admin_signup_policy(&self, caller_id: i64) -> Result<(SignupPolicy, bool), Error> {
        self.administrator(caller_id).await?;
        self.signup_policy().await
    }

    pub async fn set_signup_policy(&self, caller_id: i64, policy: SignupPolicy) -> Result<SignupPolicy, Error> {
        self.administrator(caller_id).await?;
        self.store
            .set_setting(POLICY_SETTING, policy.as_str(), now_millis())
            .await?;
        tracing::info!(policy = policy.as_str(), by = caller_id, "sign-up policy set");
        Ok(policy)
    }

    /// A new invite and its code (shown only now; stored as a hash).
    pub async fn create_invite(&self, caller_id: i64, request: InviteRequest) -> Result<(InviteRow, String), Error> {
        let admin = self.administrator(caller_id).await?;
        let max_uses = match request.max_uses {
            0 => 1,
            uses if (1..=MAX_INVITE_USES).contains(&uses) => uses,
            _ => {
                return Err(Error::invalid(
                    "max_uses",
                    format!("must be between 1 and {MAX_INVITE_USES} (0 for 1)"),
                ));
            }
        };
        let now = now_millis();
        let expires_at = match request.expires_at {
            None => now + millis(DEFAULT_INVITE_LIFETIME),
            Some(at) if at <= now => return Err(Error::invalid("expires_at", "must be in the future")),
            Some(at) if at > now + millis(MAX_INVITE_LIFETIME) => {
                return Err(Error::invalid("expires_at", "must be at most a year away"));
            }
            Some(at) => at,
        };
        let code = verification::new_refresh_token()?;
        let invite = self
            .store
            .insert_invite(&verification::token_hash(&code), max_uses, expires_at, admin.id, now)
            .await?;
        tracing::info!(invite_id = invite.id, max_uses, by = caller_id, "invite code created");
        Ok((invite, code))
    }

    pub async fn list_invites(&self, caller_id: i64) -> Result<Vec<InviteRow>, Error> {
        self.administrator(caller_id).await?;
        Ok(self.store.invites().await?)
    }

    pub async fn revoke_invite(&self, caller_id: i64, id: i64) -> Result<InviteRow, Error> {
        self.administrator(caller_id).await?;
        let invite = self
            .store
            .revoke_invite(id, now_millis())
            .await?
            .ok_or(Error::InviteNotFound)?;
        tracing::info!(invite_id = id, by = caller_id, "invite code revoked");
        Ok(invite)
    }
}
