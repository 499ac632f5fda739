//! Who may sign up: the policy (the flag's, until an administrator sets one) and invite codes.

use std::time::Duration;

use parley_service_kit::database::{self, now_millis};

use super::{AccountService, SignedIn, millis};
use crate::Error;
use crate::account_fields;
use crate::store::{AccountStatus, Inserted, InviteRow, NewUser, Role};
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

/// A Register request as it came.
#[derive(Debug, Default, Clone, Copy)]
pub struct Registration<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub email: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub invite_code: Option<&'a str>,
    pub accepted_terms: bool,
}

impl AccountService {
    pub async fn register(&self, request: Registration<'_>) -> Result<SignedIn, Error> {
        let Registration {
            username,
            password,
            email,
            display_name,
            invite_code,
            accepted_terms,
        } = request;
        let username = account_fields::username("username", username)?;
        account_fields::password("password", password)?;
        let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
            Some(email) => Some(account_fields::email("email", email)?),
            None => None,
        };
        let display_name = match display_name {
            Some(name) => account_fields::display_name("display_name", name)?,
            None => String::new(),
        };
        let display_name = if display_name.is_empty() {
            username.display.clone()
        } else {
            display_name
        };
        let now = now_millis();
        // Consent is recorded only where the operator publishes terms.
        let terms_accepted_at = match &self.terms_url {
            Some(url) if !accepted_terms => {
                return Err(Error::invalid(
                    "accepted_terms",
                    format!("must be true: signing up means accepting the terms at {url}"),
                ));
            }
            Some(_) => Some(now),
            None => None,
        };
        // The first account administers the instance (two sign-ups racing on an empty
        // database could both be; both are then the operator's), as does the one the operator
        // names; neither is subject to the sign-up policy.
        let administrator =
            self.admin_username.as_deref() == Some(username.normalized.as_str()) || !self.store.any_user().await?;
        let (status, invite_code_hash) = if administrator {
            (AccountStatus::Active, None)
        } else {
            match self.signup_policy().await?.0 {
                SignupPolicy::Open => (AccountStatus::Active, None),
                SignupPolicy::Approval => (AccountStatus::Pending, None),
                SignupPolicy::Invite => match invite_code.map(str::trim).filter(|c| !c.is_empty()) {
                    Some(code) => (AccountStatus::Active, Some(verification::token_hash(code))),
                    None => {
                        return Err(Error::invalid(
                            "invite_code",
                            "is required: sign-up here is by invitation",
                        ));
                    }
                },
                SignupPolicy::Closed => {
                    return Err(Error::Precondition("sign-up is closed on this server".to_string()));
                }
            }
        };
        let taken = || Error::AlreadyTaken {
            field: "username",
            reason: "is already taken".into(),
        };
        // A taken username has to be said (the person must pick another); an address in use
        // is accepted and stays unverified, so Register never tells who has an account.
        if self.store.username_taken(&username.normalized).await? {
            return Err(taken());
        }
        let password_hash = self.passwords.hash(password).await?;
        let inserted = self
            .store
            .insert_user(NewUser {
                account_id: &uuid::Uuid::new_v4().to_string(),
                role: if administrator { Role::Admin } else { Role::User },
                status,
                username: &username.display,
                username_normalized: &username.normalized,
                email: email.as_ref().map(|e| e.display.as_str()),
                email_normalized: email.as_ref().map(|e| e.normalized.as_str()),
                password_hash: &password_hash,
                display_name: &display_name,
                terms_accepted_at,
                invite_code_hash: invite_code_hash.as_deref(),
                now,
            })
            .await;
        let id = match inserted {
            Ok(Inserted::User(id)) => id,
            Ok(Inserted::InviteUnusable) => {
                return Err(Error::invalid("invite_code", "is wrong, expired, used up or revoked"));
            }
            // Someone registered the same name between the check and the insert.
            Err(e) if database::is_unique_violation(&e) => return Err(taken()),
            Err(e) => return Err(e.into()),
        };
        let user = self.store.user_by_id(id).await?.ok_or(Error::UserNotFound)?;
        tracing::info!(user_id = id, status = status.as_str(), "account registered");
        if status == AccountStatus::Pending {
            return Err(Error::AwaitingApproval);
        }
        self.start_session(user).await
    }
}
