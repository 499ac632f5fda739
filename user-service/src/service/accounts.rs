//! The signed-in user: the profile, the password, deleting the account.

use parley_service_kit::database::now_millis;

use super::sign_in::own_password_key;
use super::{AccountService, check_password_given};
use crate::Error;
use crate::account_fields;
use crate::password::HashingSlot;
use crate::store::{EmailColumns, ProfileUpdate, UserRow};

/// An UpdateProfile request as it came: the fields and, optionally, the mask naming which to
/// change.
#[derive(Debug, Default)]
pub struct ProfileRequest {
    pub display_name: Option<String>,
    /// An empty string removes the address.
    pub email: Option<String>,
    pub avatar_url: Option<String>,
    /// `None` or empty: change the fields that are set. Otherwise change exactly these, an
    /// unset one becoming empty.
    pub update_mask: Option<Vec<String>>,
    /// Needed when the email changes: it decides where password-reset codes go.
    pub current_password: Option<String>,
}

/// Which session survives a password change.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeepSession<'a> {
    /// Named in the request (gRPC clients): it must be a live token of the account.
    pub refresh_token: Option<&'a str>,
    /// The browser's cookie: kept when it is live, ignored when not.
    pub cookie: Option<&'a str>,
}

/// Usernames and account ids one LookupUsers may name together.
pub const MAX_LOOKUPS: usize = 100;

impl AccountService {
    /// Active accounts by username (ignoring case, as sign-up judges uniqueness) or account
    /// id; names that cannot be usernames simply match nothing.
    pub async fn lookup_users(&self, usernames: &[String], account_ids: &[String]) -> Result<Vec<UserRow>, Error> {
        if usernames.len() + account_ids.len() > MAX_LOOKUPS {
            return Err(Error::invalid(
                "usernames",
                format!("at most {MAX_LOOKUPS} usernames and account ids together"),
            ));
        }
        if usernames.iter().chain(account_ids).any(|v| v.contains('\0')) {
            return Err(Error::invalid("usernames", "must not contain NUL characters"));
        }
        let mut names: Vec<String> = usernames.iter().map(|u| account_fields::normalize(u)).collect();
        names.sort();
        names.dedup();
        let mut ids: Vec<String> = account_ids.iter().map(|a| a.trim().to_ascii_lowercase()).collect();
        ids.sort();
        ids.dedup();
        Ok(self.store.active_users_named(&names, &ids).await?)
    }

    pub async fn me(&self, user_id: i64) -> Result<UserRow, Error> {
        self.store.user_by_id(user_id).await?.ok_or(Error::UserNotFound)
    }

    /// Changes the fields the request names. Only those columns are written, so concurrent
    /// updates of other fields are kept; values equal to the stored ones change nothing (and
    /// leave `updated_at` alone), which keeps a retried update harmless.
    pub async fn update_profile(&self, user_id: i64, request: ProfileRequest) -> Result<UserRow, Error> {
        let ProfileRequest {
            display_name,
            email,
            avatar_url,
            update_mask,
            current_password,
        } = request;
        let (display_name, email, avatar_url) = match update_mask.filter(|paths| !paths.is_empty()) {
            None => (display_name, email, avatar_url),
            Some(paths) => {
                let mut named = (None, None, None);
                for path in &paths {
                    match path.as_str() {
                        "display_name" => named.0 = Some(display_name.clone().unwrap_or_default()),
                        "email" => named.1 = Some(email.clone().unwrap_or_default()),
                        "avatar_url" => named.2 = Some(avatar_url.clone().unwrap_or_default()),
                        other => {
                            return Err(Error::invalid(
                                "update_mask",
                                format!("unknown field {other:?}; use display_name, email or avatar_url"),
                            ));
                        }
                    }
                }
                named
            }
        };
        if display_name.is_none() && email.is_none() && avatar_url.is_none() {
            return Err(Error::invalid(
                "update_mask",
                "names no field to change; set display_name, email or avatar_url",
            ));
        }
        let display_name = display_name
            .as_deref()
            .map(|name| account_fields::display_name("display_name", name))
            .transpose()?;
        let email = match email.as_deref().map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(email) => Some(Some(account_fields::email("email", email)?)),
        };
        let avatar_url = avatar_url
            .as_deref()
            .map(|url| account_fields::avatar_url("avatar_url", url))
            .transpose()?;
        // The address is where reset codes go: with only an access token (a stolen one), moving
        // it would be a permanent takeover. Checked last, so bad fields never use an attempt.
        if email.is_some() {
            let password = current_password.as_deref().unwrap_or("");
            if password.is_empty() {
                return Err(Error::invalid(
                    "current_password",
                    "is required to change the email address",
                ));
            }
            check_password_given("current_password", password)?;
            let user = self.me(user_id).await?;
            let slot = self.passwords.slot().await?;
            self.check_own_password(&user, "current_password", password, &slot)
                .await?;
        }
        // An empty display name falls back to the username, as at sign-up; only then is the
        // account read before the update.
        let display_name = match display_name {
            Some(name) if name.is_empty() => Some(self.me(user_id).await?.username),
            other => other,
        };
        let update = ProfileUpdate {
            display_name: display_name.as_deref(),
            email: email.as_ref().map(|email| {
                email.as_ref().map(|e| EmailColumns {
                    display: &e.display,
                    normalized: &e.normalized,
                })
            }),
            avatar_url: avatar_url.as_deref(),
        };
        if !self.store.update_profile(user_id, &update, now_millis()).await? {
            return Err(Error::UserNotFound);
        }
        self.me(user_id).await
    }

    /// Checks the password of a signed-in user, counting failures like sign-ins do.
    async fn check_own_password(
        &self,
        user: &UserRow,
        field: &'static str,
        password: &str,
        slot: &HashingSlot,
    ) -> Result<(), Error> {
        let key = own_password_key(user.id);
        self.reserve_attempt(&key, self.limits.per_login_and_address).await?;
        if !slot.verify(password, &user.password_hash).await? {
            return Err(Error::invalid(field, "is not the current password"));
        }
        self.store.clear_login_failures(&key).await?;
        Ok(())
    }

    /// Sets a new password and signs out every session but the one `keep` names.
    pub async fn change_password(
        &self,
        user_id: i64,
        old_password: &str,
        new_password: &str,
        keep: KeepSession<'_>,
    ) -> Result<(), Error> {
        check_password_given("old_password", old_password)?;
        account_fields::password("new_password", new_password)?;
        let keep_family =
            match keep.refresh_token.map(str::trim) {
                Some("") => return Err(Error::invalid("keep_refresh_token", "must not be empty when given")),
                Some(token) => Some(self.live_family(user_id, token).await?.ok_or_else(|| {
                    Error::invalid("keep_refresh_token", "is not a live refresh token of this account")
                })?),
                None => match keep.cookie {
                    Some(token) => self.live_family(user_id, token).await?,
                    None => None,
                },
            };
        let user = self.me(user_id).await?;
        let slot = self.passwords.slot().await?;
        self.check_own_password(&user, "old_password", old_password, &slot)
            .await?;
        let hash = slot.hash(new_password).await?;
        drop(slot);
        let now = now_millis();
        self.store.set_password(user_id, &hash, now).await?;
        let revoked = self
            .store
            .revoke_user_families(user_id, keep_family.as_deref(), now)
            .await?;
        tracing::info!(user_id, revoked, "password changed; other sessions signed out");
        Ok(())
    }

    pub async fn delete_account(&self, user_id: i64, password: &str) -> Result<(), Error> {
        check_password_given("password", password)?;
        let user = self.me(user_id).await?;
        let slot = self.passwords.slot().await?;
        self.check_own_password(&user, "password", password, &slot).await?;
        drop(slot);
        self.store.delete_user(user_id, now_millis()).await?;
        tracing::info!(user_id, "account deleted; its access tokens are revoked");
        Ok(())
    }
}
