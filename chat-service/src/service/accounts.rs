//! Accounts: which owner id a caller's rows are stored under (found by the token's `aid`,
//! never by the reusable integer user id), and erasing a deleted account's data.

use std::time::Duration;

use parley_service_kit::access_token::AuthenticatedUser;
use parley_service_kit::database::now_millis;

use super::{ChatService, STOP_WAIT};
use crate::Error;
use crate::ids::OwnerId;
use crate::store::OwnerRow;

/// Rows one erasing statement deletes at most, so none holds its locks for long.
const ERASE_BATCH: i64 = 500;
/// Erased owners the sweep takes per pass.
const SWEEP_BATCH: i64 = 20;
/// How often the sweep looks for erased accounts that still have rows.
pub const ERASED_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Longest account id accepted (a UUID has 36 characters).
const MAX_ACCOUNT_ID_LEN: usize = 64;

/// What erasing an account deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    pub messages: u64,
    pub sessions: u64,
    pub personas: u64,
    pub api_configs: u64,
}

impl ChatService {
    /// The owner id of the caller's account: looked up by `aid` (cached), adopted from the
    /// rows of before owners existed when allowed, or created. An erased account's tokens
    /// (still valid for a few seconds after its deletion) are refused.
    pub async fn owner(&self, caller: &AuthenticatedUser) -> Result<OwnerId, Error> {
        if let Some(owner) = self.owners.get(&caller.account_id) {
            return Ok(owner);
        }
        let row = match self.store.owner_by_account(&caller.account_id).await? {
            Some(row) => row,
            None => self.new_owner(caller).await?,
        };
        if row.erased_at.is_some() {
            return Err(Error::AccountErased);
        }
        self.owners.insert(&caller.account_id, row.id);
        Ok(row.id)
    }

    async fn new_owner(&self, caller: &AuthenticatedUser) -> Result<OwnerRow, Error> {
        let adopted = if self.adopt_legacy_owners {
            self.store
                .adopt_legacy_owner(caller.user_id, &caller.account_id)
                .await?
        } else {
            None
        };
        if let Some(id) = adopted {
            tracing::info!(
                user_id = caller.user_id,
                owner_id = id.0,
                "rows from before account ids adopted by the account with their user id"
            );
            return Ok(OwnerRow { id, erased_at: None });
        }
        Ok(self.store.insert_owner(&caller.account_id, now_millis()).await?)
    }

    /// Erases everything held for the account: marks it erased (its tokens are refused from
    /// then on), stops its generations, then deletes its messages, sessions, personas and API
    /// configs in batches. Erasing again, or an account never seen, succeeds.
    pub async fn erase_account(&self, user_id: i64, account_id: &str) -> Result<Erased, Error> {
        if account_id.is_empty() {
            return Err(Error::invalid("account_id", "must not be empty"));
        }
        if account_id.len() > MAX_ACCOUNT_ID_LEN {
            return Err(Error::invalid(
                "account_id",
                format!("must be at most {MAX_ACCOUNT_ID_LEN} characters"),
            ));
        }
        let owner = self.store.mark_owner_erased(account_id, now_millis()).await?;
        self.owners.remove(account_id);
        self.store.delete_grants_of(account_id).await?;
        let erased = self.erase_owner(owner).await?;
        tracing::info!(
            user_id,
            owner_id = owner.0,
            messages = erased.messages,
            sessions = erased.sessions,
            personas = erased.personas,
            api_configs = erased.api_configs,
            "deleted account's chat data erased"
        );
        Ok(erased)
    }

    /// Deletes every row of `owner`, generations stopped first.
    async fn erase_owner(&self, owner: OwnerId) -> Result<Erased, Error> {
        for generation in self.registry.stop_owner(owner) {
            let _ = tokio::time::timeout(STOP_WAIT, generation.finished()).await;
        }
        let mut erased = Erased::default();
        // Its rooms go whole (members are not told live: the room answers NOT_FOUND from
        // then on); in others' rooms it leaves no membership and no text.
        loop {
            let rooms = self.store.rooms_owned_by(owner, ERASE_BATCH).await?;
            if rooms.is_empty() {
                break;
            }
            for room in &rooms {
                self.store.delete_room(room).await?;
            }
        }
        self.store.erase_room_presence(owner, now_millis()).await?;
        self.store.erase_notifications(owner).await?;
        loop {
            let sessions = self.store.session_ids_of(owner, ERASE_BATCH).await?;
            if sessions.is_empty() {
                break;
            }
            for session_id in sessions {
                self.stop_generations_in(session_id).await?;
                loop {
                    let deleted = self.store.delete_messages_batch(session_id, ERASE_BATCH).await?;
                    erased.messages += deleted;
                    if deleted < ERASE_BATCH as u64 {
                        break;
                    }
                }
                // Messages written meanwhile (none should be: the account is refused) go
                // with the session.
                if self.store.delete_session(owner, session_id).await? {
                    erased.sessions += 1;
                }
            }
        }
        loop {
            let deleted = self.store.delete_personas_batch(owner, ERASE_BATCH).await?;
            erased.personas += deleted;
            if deleted < ERASE_BATCH as u64 {
                break;
            }
        }
        self.store.delete_usage_of(owner).await?;
        self.store.delete_preferences_of(owner).await?;
        self.store.delete_library_of(owner).await?;
        loop {
            let deleted = self.store.delete_api_configs_batch(owner, ERASE_BATCH).await?;
            erased.api_configs += deleted;
            if deleted < ERASE_BATCH as u64 {
                break;
            }
        }
        self.store.delete_quota_rows(owner).await?;
        Ok(erased)
    }

    /// Erases what is left of erased accounts: an erasure a crash cut short, or a row another
    /// instance wrote for a token it still accepted. Answers how many accounts it swept.
    pub async fn sweep_erased(&self) -> Result<usize, Error> {
        let owners = self.store.erased_owners_with_rows(SWEEP_BATCH).await?;
        for &owner in &owners {
            let erased = self.erase_owner(owner).await?;
            tracing::info!(owner_id = owner.0, ?erased, "rows left by an erased account swept");
        }
        Ok(owners.len())
    }
}
