//! Sessions: refresh-token families, their rotation, the grace for a lost answer, and reuse
//! detection.
//!
//! A family is one sign-in. Each rotation moves it to the next generation; only tokens of the
//! current generation are live. A token of the generation just before may be presented again
//! for [`REFRESH_REUSE_GRACE`] after the rotation (the client lost the answer: a tab closed
//! or reloaded mid-refresh), as long as no token of the current generation has been used; it
//! gets another token of the current generation. Any other old token is reuse: a copy is
//! loose, so the whole family is revoked.

use std::time::Duration;

use parley_service_kit::database::now_millis;

use super::{AccountService, SignedIn, millis};
use crate::Error;
use crate::store::{FamilyRow, NewRefreshToken, RefreshTokenRow, UserRow};
use crate::token_signer::TokenSubject;
use crate::verification;

/// How long a refresh token lives unused.
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// How long a sign-in lasts however often it is refreshed; then the user signs in again.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// How long after a rotation its predecessor may be presented again without counting as reuse.
pub const REFRESH_REUSE_GRACE: Duration = Duration::from_secs(30);

/// Rotations that can race with this one before it gives up.
const ROTATION_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenState {
    /// Of the current generation: rotates.
    Live,
    /// Of the generation just before, within the grace: gets another current token.
    JustRotated,
    /// Older, or past the grace: reuse.
    Reused,
    /// Its family is revoked or over, or it expired.
    Dead,
}

fn token_state(token: &RefreshTokenRow, family: &FamilyRow, now: i64) -> TokenState {
    if family.revoked_at.is_some() || family.expires_at <= now || token.expires_at <= now {
        TokenState::Dead
    } else if token.generation == family.generation {
        TokenState::Live
    } else if token.generation + 1 == family.generation
        && family
            .rotated_at
            .is_some_and(|rotated_at| now - rotated_at <= millis(REFRESH_REUSE_GRACE))
    {
        TokenState::JustRotated
    } else {
        TokenState::Reused
    }
}

/// A new token's secret and its stored form.
struct FreshToken {
    secret: String,
    hash: String,
    expires_at: i64,
}

impl FreshToken {
    /// Lives [`REFRESH_TOKEN_TTL`], but never past the end of its family.
    fn new(now: i64, family_expires_at: i64) -> Result<Self, Error> {
        let secret = verification::new_refresh_token()?;
        Ok(Self {
            hash: verification::token_hash(&secret),
            secret,
            expires_at: (now + millis(REFRESH_TOKEN_TTL)).min(family_expires_at),
        })
    }

    fn row(&self) -> NewRefreshToken<'_> {
        NewRefreshToken {
            token_hash: &self.hash,
            expires_at: self.expires_at,
        }
    }
}

impl AccountService {
    /// Signs a user in: a new family, its first token and an access token.
    pub(super) async fn start_session(&self, mut user: UserRow) -> Result<SignedIn, Error> {
        let now = now_millis();
        self.store.set_last_login(user.id, now).await?;
        user.last_login_at = Some(now);
        let family_id = uuid::Uuid::new_v4().to_string();
        let family_expires_at = now + millis(SESSION_LIFETIME);
        let token = FreshToken::new(now, family_expires_at)?;
        self.store
            .insert_family(user.id, &family_id, family_expires_at, token.row(), now)
            .await?;
        self.signed_in(user, &family_id, token, now)
    }

    fn signed_in(&self, user: UserRow, family_id: &str, token: FreshToken, now: i64) -> Result<SignedIn, Error> {
        let subject = TokenSubject {
            user_id: user.id,
            account_id: &user.account_id,
            session_id: family_id,
            role: user.role,
        };
        let access = self.keys.signer.sign(&subject, now / 1000)?;
        Ok(SignedIn {
            user,
            access,
            refresh_expires_in: Duration::from_millis((token.expires_at - now).max(0) as u64),
            refresh_token: token.secret,
        })
    }

    /// Exchanges a refresh token for a new pair (see the module docs).
    pub async fn refresh(&self, refresh_token: &str) -> Result<SignedIn, Error> {
        let Some(token) = self
            .store
            .refresh_token(&verification::token_hash(refresh_token))
            .await?
        else {
            return Err(Error::BadRefreshToken);
        };
        for _ in 0..ROTATION_ATTEMPTS {
            let now = now_millis();
            let Some(family) = self.store.family(&token.family_id).await? else {
                return Err(Error::BadRefreshToken);
            };
            let state = token_state(&token, &family, now);
            if state == TokenState::Dead {
                return Err(Error::BadRefreshToken);
            }
            if state == TokenState::Reused {
                return Err(self.reuse_detected(&family.id, token.user_id, now).await);
            }
            let user = match self.store.user_by_id(token.user_id).await? {
                Some(user) if user.is_active() => user,
                _ => {
                    self.store.revoke_family(&family.id, now).await?;
                    return Err(Error::BadRefreshToken);
                }
            };
            let fresh = FreshToken::new(now, family.expires_at)?;
            let written = if state == TokenState::Live {
                self.store
                    .rotate(user.id, &family.id, family.generation, fresh.row(), now)
                    .await?
            } else {
                let reissued = self
                    .store
                    .reissue(user.id, &family.id, family.generation, fresh.row(), now)
                    .await?;
                if reissued {
                    tracing::info!(
                        user_id = user.id,
                        "a just-rotated refresh token came back; issued another"
                    );
                }
                reissued
            };
            if written {
                return self.signed_in(user, &family.id, fresh, now);
            }
            // The family moved on between the read and the write: judge the token again.
        }
        Err(Error::BadRefreshToken)
    }

    async fn reuse_detected(&self, family_id: &str, user_id: i64, now: i64) -> Error {
        match self.store.revoke_family(family_id, now).await {
            Ok(revoked) => {
                if revoked {
                    tracing::warn!(user_id, "a rotated refresh token was reused; revoked its whole family");
                }
                Error::BadRefreshToken
            }
            Err(e) => e.into(),
        }
    }

    /// Revokes the token's whole family (that device's session). Unknown tokens are fine.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), Error> {
        if let Some(token) = self
            .store
            .refresh_token(&verification::token_hash(refresh_token))
            .await?
        {
            self.store.revoke_family(&token.family_id, now_millis()).await?;
        }
        Ok(())
    }

    /// The family of a refresh token if it belongs to `user_id` and RefreshToken would take it.
    pub(super) async fn live_family(&self, user_id: i64, refresh_token: &str) -> Result<Option<String>, Error> {
        let Some(token) = self
            .store
            .refresh_token(&verification::token_hash(refresh_token))
            .await?
            .filter(|t| t.user_id == user_id)
        else {
            return Ok(None);
        };
        let Some(family) = self.store.family(&token.family_id).await? else {
            return Ok(None);
        };
        Ok(matches!(
            token_state(&token, &family, now_millis()),
            TokenState::Live | TokenState::JustRotated
        )
        .then_some(family.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(generation: i64) -> RefreshTokenRow {
        RefreshTokenRow {
            user_id: 1,
            family_id: "f".into(),
            generation,
            expires_at: 1_000_000,
        }
    }

    fn family(generation: i64, rotated_at: Option<i64>) -> FamilyRow {
        FamilyRow {
            id: "f".into(),
            generation,
            rotated_at,
            expires_at: 2_000_000,
            revoked_at: None,
        }
    }

    #[test]
    fn only_the_predecessor_within_the_grace_is_not_reuse() {
        let grace = millis(REFRESH_REUSE_GRACE);
        assert_eq!(token_state(&token(3), &family(3, Some(0)), 10), TokenState::Live);
        assert_eq!(
            token_state(&token(2), &family(3, Some(0)), grace),
            TokenState::JustRotated
        );
        assert_eq!(
            token_state(&token(2), &family(3, Some(0)), grace + 1),
            TokenState::Reused
        );
        assert_eq!(token_state(&token(1), &family(3, Some(0)), 10), TokenState::Reused);
        assert_eq!(token_state(&token(3), &family(3, None), 1_000_000), TokenState::Dead);
        let mut revoked = family(3, Some(0));
        revoked.revoked_at = Some(5);
        assert_eq!(token_state(&token(3), &revoked, 10), TokenState::Dead);
    }
}
