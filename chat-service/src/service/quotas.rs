//! Quotas: the checked opening of every write that counts toward one (`within_quota`), a
//! user's own quota, and the administrators' views and overrides of every account's.

use parley_service_kit::access_token::AuthenticatedUser;
use parley_service_kit::database::now_millis;

use super::ChatService;
use crate::Error;
use crate::ids::OwnerId;
use crate::page_token::AccountCursor;
use crate::quota::{self, Quota, QuotaLimits};
use crate::store::{AccountUsageRow, OwnerUsage, QuotaOverrides, QuotaWrite};
use crate::validation;

/// The access token role of administrators.
/// Accounts one ListAccountUsage may name.
const MAX_ACCOUNT_IDS: usize = 200;

/// An account's quotas and usage, as the API shows them.
#[derive(Debug, Clone)]
pub struct AccountQuota {
    pub account_id: String,
    pub usage: OwnerUsage,
    pub overrides: QuotaOverrides,
    pub defaults: QuotaLimits,
    /// In force: the overrides over the defaults.
    pub limits: QuotaLimits,
    /// Unix milliseconds: when `usage.messages_today` starts from 0 again.
    pub messages_reset_at: i64,
}

/// Overrides to change: `Some(None)` clears one (back to the default), `None` leaves it.
#[derive(Debug, Default)]
pub struct QuotaChange {
    pub stored_bytes: Option<Option<i64>>,
    pub sessions: Option<Option<i64>>,
    pub personas: Option<Option<i64>>,
    pub api_configs: Option<Option<i64>>,
    pub messages_per_day: Option<Option<i64>>,
}

impl ChatService {
    /// The operator's default limits (chat-service's `--quota-*` flags).
    pub fn with_quota_defaults(mut self, defaults: QuotaLimits) -> Self {
        self.quota_defaults = defaults;
        self
    }

    /// Opens a write for `owner` once each `(quota, adding)` fits within its limit; the
    /// owner stays locked until the write commits or is dropped, so nothing else of the
    /// account's can take the same room meanwhile.
    pub(super) async fn within_quota(&self, owner: OwnerId, wants: &[(Quota, i64)]) -> Result<QuotaWrite, Error> {
        let now = now_millis();
        let defaults = self.quota_defaults;
        self.store
            .begin_within_quota(owner, quota::day_number(now), |usage, overrides| {
                let limits = defaults.overridden_by(overrides);
                wants
                    .iter()
                    .try_for_each(|&(quota, adding)| limits.check(quota, usage, adding, now))
            })
            .await
    }

    /// The caller's own limits and usage.
    pub async fn my_quota(&self, caller: &AuthenticatedUser) -> Result<AccountQuota, Error> {
        self.owner(caller).await?;
        self.account_quota_of(&caller.account_id).await
    }

    /// Every account's usage a page at a time (owner order), or only the accounts named.
    pub async fn list_account_usage(
        &self,
        caller: &AuthenticatedUser,
        page_size: i32,
        page_token: &str,
        account_ids: &[String],
    ) -> Result<(Vec<AccountQuota>, String), Error> {
        require_admin(caller, "see other accounts' usage")?;
        if !account_ids.is_empty() {
            if account_ids.len() > MAX_ACCOUNT_IDS {
                return Err(Error::invalid(
                    "account_ids",
                    format!("at most {MAX_ACCOUNT_IDS} accounts at once"),
                ));
            }
            for id in account_ids {
                validate_account_id("account_ids", id)?;
            }
            let mut accounts = Vec::with_capacity(account_ids.len());
            for id in account_ids {
                accounts.push(self.account_quota_of(id).await?);
            }
            return Ok((accounts, String::new()));
        }
        let size = validation::page_size("page_size", page_size)?;
        let after = if page_token.is_empty() {
            OwnerId(0)
        } else {
            AccountCursor::decode(page_token)
                .ok_or_else(|| Error::invalid("page_token", "is not a valid page token"))?
                .owner
        };
        let now = now_millis();
        let mut rows = self
            .store
            .account_usage_page(after, i64::from(size) + 1, quota::day_number(now))
            .await?;
        let next = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last()
                .map(|last| AccountCursor { owner: last.owner_id }.encode())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let accounts = rows.into_iter().map(|row| self.account_quota(row, now)).collect();
        Ok((accounts, next))
    }

    /// Another account's quotas (an administrator's view).
    pub async fn get_account_quota(&self, caller: &AuthenticatedUser, account_id: &str) -> Result<AccountQuota, Error> {
        require_admin(caller, "see other accounts' quotas")?;
        validate_account_id("account_id", account_id)?;
        self.account_quota_of(account_id).await
    }

    /// Sets or clears an account's overrides. An account that never used chat-service gets
    /// its owner now, so the overrides hold from its first request.
    pub async fn update_account_quota(
        &self,
        caller: &AuthenticatedUser,
        account_id: &str,
        change: QuotaChange,
    ) -> Result<AccountQuota, Error> {
        require_admin(caller, "change quotas")?;
        validate_account_id("account_id", account_id)?;
        for (field, value) in [
            ("stored_bytes", change.stored_bytes),
            ("sessions", change.sessions),
            ("personas", change.personas),
            ("api_configs", change.api_configs),
            ("messages_per_day", change.messages_per_day),
        ] {
            if let Some(Some(limit)) = value
                && limit < 0
            {
                return Err(Error::invalid(field, "must be at least 0 (0: unlimited)"));
            }
        }
        let now = now_millis();
        let owner = match self.store.owner_by_account(account_id).await? {
            Some(row) => row,
            None => self.store.insert_owner(account_id, now).await?,
        };
        if owner.erased_at.is_some() {
            return Err(Error::NotFound("account"));
        }
        let current = self
            .store
            .account_usage(account_id, quota::day_number(now))
            .await?
            .map(|row| row.overrides)
            .unwrap_or_default();
        let overrides = QuotaOverrides {
            stored_bytes: change.stored_bytes.unwrap_or(current.stored_bytes),
            sessions: change.sessions.unwrap_or(current.sessions),
            personas: change.personas.unwrap_or(current.personas),
            api_configs: change.api_configs.unwrap_or(current.api_configs),
            messages_per_day: change.messages_per_day.unwrap_or(current.messages_per_day),
        };
        self.store.set_quota_overrides(owner.id, &overrides, now).await?;
        tracing::info!(
            admin_user_id = caller.user_id,
            owner_id = owner.id.0,
            ?overrides,
            "quota overrides changed"
        );
        self.account_quota_of(account_id).await
    }

    async fn account_quota_of(&self, account_id: &str) -> Result<AccountQuota, Error> {
        let now = now_millis();
        Ok(
            match self.store.account_usage(account_id, quota::day_number(now)).await? {
                Some(row) => self.account_quota(row, now),
                // Never used chat-service (or erased): nothing stored, the defaults apply.
                None => AccountQuota {
                    account_id: account_id.to_owned(),
                    usage: OwnerUsage::default(),
                    overrides: QuotaOverrides::default(),
                    defaults: self.quota_defaults,
                    limits: self.quota_defaults,
                    messages_reset_at: quota::next_day_start(now),
                },
            },
        )
    }

    fn account_quota(&self, row: AccountUsageRow, now: i64) -> AccountQuota {
        AccountQuota {
            account_id: row.account_id,
            usage: row.usage,
            overrides: row.overrides,
            defaults: self.quota_defaults,
            limits: self.quota_defaults.overridden_by(&row.overrides),
            messages_reset_at: quota::next_day_start(now),
        }
    }
}

/// The bytes a text adds to an account's stored bytes (what SQL's OCTET_LENGTH counts).
pub(super) fn bytes_of(text: &str) -> i64 {
    i64::try_from(text.len()).unwrap_or(i64::MAX)
}

fn require_admin(caller: &AuthenticatedUser, what: &'static str) -> Result<(), Error> {
    ChatService::administrator(caller, what).map(drop)
}

/// An account id as user-service issues them: a UUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
fn validate_account_id(field: &'static str, id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    let shaped = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if shaped {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{id:?} is not an account id (a UUID)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_uuids() {
        assert!(validate_account_id("account_id", "0b7f6c1e-3a9d-4c2b-8e5f-1a2b3c4d5e6f").is_ok());
        for bad in [
            "",
            "1",
            "0b7f6c1e-3a9d-4c2b-8e5f-1a2b3c4d5e6",
            "0b7f6c1e_3a9d-4c2b-8e5f-1a2b3c4d5e6f",
        ] {
            assert!(validate_account_id("account_id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_administrators_pass() {
        let user = |role: &str| AuthenticatedUser {
            user_id: 1,
            role: role.to_owned(),
            account_id: String::new(),
            session_id: String::new(),
        };
        assert!(require_admin(&user("admin"), "x").is_ok());
        assert!(matches!(require_admin(&user("user"), "x"), Err(Error::AdminOnly("x"))));
    }
}
