//! What administrators may do: list and look up accounts, disable, enable, approve and delete
//! them. Every call first checks that the caller is, right now, an active administrator.

use parley_service_kit::database::now_millis;

use super::AccountService;
use crate::Error;
use crate::store::{AccountStatus, Role, UserFilter, UserRow};

/// Accounts a listing page holds when the request names no size, and at most.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;
/// The longest search text.
const MAX_SEARCH_CHARS: usize = 200;

/// A ListUsers request as it came.
#[derive(Debug, Default)]
pub struct UserListing {
    pub search: String,
    pub status: Option<AccountStatus>,
    pub page_size: i32,
    pub page_token: String,
}

/// One page of accounts and the token of the next (empty on the last).
pub struct UserPage {
    pub users: Vec<UserRow>,
    pub next_page_token: String,
}

impl AccountService {
    /// The caller's account if it is an active administrator; PERMISSION_DENIED otherwise
    /// (also for an account deleted since its token was issued).
    pub(super) async fn administrator(&self, caller_id: i64) -> Result<UserRow, Error> {
        match self.store.user_by_id(caller_id).await? {
            Some(user) if user.role == Role::Admin && user.is_active() => Ok(user),
            _ => Err(Error::NotAdministrator),
        }
    }

    /// Another account by id, for an administrator.
    async fn other_account(&self, caller_id: i64, id: i64, action: &'static str) -> Result<UserRow, Error> {
        let admin = self.administrator(caller_id).await?;
        if id == admin.id {
            return Err(Error::Precondition(format!(
                "administrators cannot {action} their own account here"
            )));
        }
        self.user_for_admin(id).await
    }

    async fn user_for_admin(&self, id: i64) -> Result<UserRow, Error> {
        if id <= 0 {
            return Err(Error::invalid("id", "must be a positive account id"));
        }
        self.store.user_by_id(id).await?.ok_or(Error::UserNotFound)
    }

    pub async fn list_users(&self, caller_id: i64, listing: UserListing) -> Result<UserPage, Error> {
        self.administrator(caller_id).await?;
        let search = listing.search.trim().to_lowercase();
        if search.chars().count() > MAX_SEARCH_CHARS {
            return Err(Error::invalid(
                "search",
                format!("must be at most {MAX_SEARCH_CHARS} characters"),
            ));
        }
        let limit = match i64::from(listing.page_size) {
            0 => DEFAULT_PAGE_SIZE,
            size if (1..=MAX_PAGE_SIZE).contains(&size) => size,
            _ => {
                return Err(Error::invalid(
                    "page_size",
                    format!("must be between 1 and {MAX_PAGE_SIZE} (0 for {DEFAULT_PAGE_SIZE})"),
                ));
            }
        };
        let after_id = match listing.page_token.trim() {
            "" => 0,
            token => token
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| Error::invalid("page_token", "is not a token from a previous page"))?,
        };
        // One more than the page, to know whether another follows.
        let mut users = self
            .store
            .list_users(UserFilter {
                search: Some(search.as_str()).filter(|s| !s.is_empty()),
                status: listing.status,
                after_id,
                limit: limit + 1,
            })
            .await?;
        let next_page_token = if users.len() as i64 > limit {
            users.truncate(limit as usize);
            users.last().map(|u| u.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(UserPage { users, next_page_token })
    }

    pub async fn get_user(&self, caller_id: i64, id: i64) -> Result<UserRow, Error> {
        self.administrator(caller_id).await?;
        self.user_for_admin(id).await
    }

    /// Disables the account and ends every session it has. Disabling a disabled account
    /// changes nothing.
    pub async fn disable_user(&self, caller_id: i64, id: i64) -> Result<UserRow, Error> {
        let user = self.other_account(caller_id, id, "disable").await?;
        let now = now_millis();
        self.store
            .set_status(
                id,
                &[AccountStatus::Active, AccountStatus::Pending],
                AccountStatus::Disabled,
                now,
            )
            .await?;
        let revoked = self.store.revoke_user_families(user.id, None, now).await?;
        tracing::info!(user_id = id, by = caller_id, revoked, "account disabled");
        self.user_for_admin(id).await
    }

    /// Lets a disabled account sign in again; an active one is left as it is.
    pub async fn enable_user(&self, caller_id: i64, id: i64) -> Result<UserRow, Error> {
        let user = self.other_account(caller_id, id, "enable").await?;
        if user.status == AccountStatus::Pending {
            return Err(Error::Precondition(
                "the account is awaiting approval; approve it instead".to_string(),
            ));
        }
        if self
            .store
            .set_status(id, &[AccountStatus::Disabled], AccountStatus::Active, now_millis())
            .await?
        {
            tracing::info!(user_id = id, by = caller_id, "account enabled");
        }
        self.user_for_admin(id).await
    }

    pub async fn approve_user(&self, caller_id: i64, id: i64) -> Result<UserRow, Error> {
        self.administrator(caller_id).await?;
        self.user_for_admin(id).await?;
        if !self
            .store
            .set_status(id, &[AccountStatus::Pending], AccountStatus::Active, now_millis())
            .await?
        {
            return Err(Error::Precondition("the account is not awaiting approval".to_string()));
        }
        tracing::info!(user_id = id, by = caller_id, "account approved");
        self.user_for_admin(id).await
    }

    pub async fn delete_user(&self, caller_id: i64, id: i64) -> Result<(), Error> {
        self.other_account(caller_id, id, "delete").await?;
        self.store.delete_user(id).await?;
        tracing::info!(user_id = id, by = caller_id, "account deleted by an administrator");
        Ok(())
    }
}
