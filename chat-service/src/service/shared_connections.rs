//! Shared connections: API configs an administrator adds for every user or for chosen
//! accounts, with per-model prices and per-user token limits. Their config rows belong to the
//! reserved owner [`SHARED_OWNER_ACCOUNT`], so no user's own lookups ever find them; users
//! reach one only through [`ChatService::usable_config`], which checks the grant.

use parley_service_kit::access_token::AuthenticatedUser;
use parley_service_kit::database::now_millis;

use super::ChatService;
use super::api_configs::name_taken;
use crate::Error;
use crate::api_key::ApiKey;
use crate::ids::{ApiConfigId, OwnerId};
use crate::key_cipher::api_key_hint;
use crate::store::{ApiConfigRow, ConfigFields, SharedConnectionRow, SharedModelRow, SharingFields, TokensUsed};
use crate::usage::{self, Day, ModelPrice};
use crate::validation;

/// The account id of the owner that holds shared connections' config rows. Access tokens
/// carry UUIDs as account ids, so no caller can ever be this owner.
pub const SHARED_OWNER_ACCOUNT: &str = "system:shared-connections";
/// The token role claim of administrators.
pub(crate) const ADMIN_ROLE: &str = "admin";
/// Models one shared connection may offer.
const MAX_MODELS: usize = 50;
/// Highest price accepted: 1,000,000 units per million tokens (a typo guard, not a policy).
const MAX_PRICE_MICROS: i64 = 1_000_000_000_000;
/// Longest account id accepted (a UUID has 36 characters).
const MAX_ACCOUNT_ID_LEN: usize = 64;

/// Proof that the caller is an administrator: administration methods take one.
pub struct Administrator(());

/// A shared connection with its models (first = default) and the accounts granted it.
pub struct SharedConnection {
    pub row: SharedConnectionRow,
    pub models: Vec<SharedModelRow>,
    pub granted: Vec<String>,
}

/// A shared connection as a user may use it, with the user's tokens against its limits.
pub struct AvailableShared {
    pub row: SharedConnectionRow,
    pub models: Vec<SharedModelRow>,
    pub used: TokensUsed,
}

/// A model offered, with its prices (micro-units per 1,000,000 tokens).
#[derive(Debug, Clone)]
pub struct SharedModelInput {
    pub model: String,
    pub price: ModelPrice,
}

#[derive(Debug)]
pub struct NewSharedConnection {
    pub name: String,
    pub base_url: String,
    pub api_key: ApiKey,
    pub models: Vec<SharedModelInput>,
    pub currency: String,
    pub daily_token_limit: i64,
    pub monthly_token_limit: i64,
    pub everyone: bool,
}

/// Fields to change; `None` leaves one as it is.
#[derive(Debug, Default)]
pub struct SharedConnectionChange {
    pub name: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<ApiKey>,
    pub models: Option<Vec<SharedModelInput>>,
    pub currency: Option<String>,
    pub daily_token_limit: Option<i64>,
    pub monthly_token_limit: Option<i64>,
    pub everyone: Option<bool>,
}

/// Who a grant is for.
#[derive(Debug, Clone)]
pub enum Grantee {
    Account(String),
    Everyone,
}

/// A config a user may chat with: their own, or a shared connection granted to them (with
/// its terms).
pub struct UsableConfig {
    pub config: ApiConfigRow,
    pub shared: Option<SharedTerms>,
}

/// What a shared connection charges and allows.
pub struct SharedTerms {
    pub row: SharedConnectionRow,
    pub models: Vec<SharedModelRow>,
}

impl SharedTerms {
    /// The price of `model`, or FAILED_PRECONDITION when the connection does not offer it
    /// (the session names a model the administrator did not share).
    pub fn price_of(&self, model: &str) -> Result<ModelPrice, Error> {
        self.models
            .iter()
            .find(|m| m.model == model)
            .map(|m| ModelPrice {
                prompt_micros: m.prompt_price_micros,
                completion_micros: m.completion_price_micros,
            })
            .ok_or_else(|| {
                let offered: Vec<&str> = self.models.iter().map(|m| m.model.as_str()).collect();
                Error::FailedPrecondition(format!(
                    "model {model:?} is not offered by shared connection {:?} (offered: {}); choose one of those in the chat's settings",
                    self.row.name,
                    offered.join(", ")
                ))
            })
    }
}

impl ChatService {
    /// The caller as an administrator (the token's role claim), or PERMISSION_DENIED.
    pub fn administrator(caller: &AuthenticatedUser, what: &'static str) -> Result<Administrator, Error> {
        if caller.role == ADMIN_ROLE {
            Ok(Administrator(()))
        } else {
            Err(Error::AdminOnly(what))
        }
    }

    /// The owner id of shared connections' config rows (created on first use).
    async fn shared_owner(&self) -> Result<OwnerId, Error> {
        self.shared_owner
            .get_or_try_init(|| async {
                Ok::<_, Error>(self.store.insert_owner(SHARED_OWNER_ACCOUNT, now_millis()).await?.id)
            })
            .await
            .copied()
    }

    pub async fn create_shared_connection(
        &self,
        _: &Administrator,
        input: NewSharedConnection,
    ) -> Result<SharedConnection, Error> {
        let name = input.name.trim();
        validation::name("name", name)?;
        validation::base_url("base_url", &input.base_url)?;
        validation::api_key("api_key", input.api_key.expose())?;
        let models = shared_models(&input.models)?;
        let currency = currency(&input.currency, &models)?;
        limits(input.daily_token_limit, input.monthly_token_limit)?;
        let owner = self.shared_owner().await?;
        let fields = ConfigFields {
            name,
            base_url: &input.base_url,
            model: &models[0].model,
        };
        let sharing = SharingFields {
            currency: &currency,
            daily_token_limit: input.daily_token_limit,
            monthly_token_limit: input.monthly_token_limit,
            everyone: input.everyone,
            models: &models,
        };
        let id = self
            .store
            .insert_shared_connection(
                owner,
                &fields,
                &api_key_hint(input.api_key.expose()),
                |id| self.cipher.seal(id.0, input.api_key.expose()).map_err(Error::from),
                &sharing,
                now_millis(),
            )
            .await
            .map_err(name_taken)?;
        tracing::info!(config_id = id.0, "shared connection created");
        self.load_shared(id).await
    }

    pub async fn shared_connections(&self, _: &Administrator) -> Result<Vec<SharedConnection>, Error> {
        let rows = self.store.shared_connections().await?;
        let mut models = self.store.shared_models(None).await?;
        let mut grants = self.store.shared_grants(None).await?;
        Ok(rows
            .into_iter()
            .map(|row| SharedConnection {
                models: take_where(&mut models, |m| m.api_config_id == row.id),
                granted: take_where(&mut grants, |(id, _)| *id == row.id)
                    .into_iter()
                    .map(|(_, account)| account)
                    .collect(),
                row,
            })
            .collect())
    }

    pub async fn shared_connection(&self, _: &Administrator, id: ApiConfigId) -> Result<SharedConnection, Error> {
        self.load_shared(id).await
    }

    async fn load_shared(&self, id: ApiConfigId) -> Result<SharedConnection, Error> {
        let row = self
            .store
            .shared_connection(id)
            .await?
            .ok_or(Error::NotFound("shared connection"))?;
        let models = self.store.shared_models(Some(id)).await?;
        let granted = self
            .store
            .shared_grants(Some(id))
            .await?
            .into_iter()
            .map(|(_, account)| account)
            .collect();
        Ok(SharedConnection { row, models, granted })
    }

    pub async fn update_shared_connection(
        &self,
        _: &Administrator,
        id: ApiConfigId,
        change: SharedConnectionChange,
    ) -> Result<SharedConnection, Error> {
        let current = self.load_shared(id).await?;
        let name = change.name.as_deref().map(str::trim).unwrap_or(&current.row.name);
        let base_url = change.base_url.as_deref().unwrap_or(&current.row.base_url);
        validation::name("name", name)?;
        validation::base_url("base_url", base_url)?;
        // As for a user's own config: the stored key goes only to the host it was given for.
        if base_url != current.row.base_url && change.api_key.is_none() {
            return Err(Error::invalid(
                "api_key",
                "must be given again when base_url changes (the stored key is only sent to the URL it was given for)",
            ));
        }
        if let Some(key) = &change.api_key {
            validation::api_key("api_key", key.expose())?;
        }
        let models = match &change.models {
            Some(models) => shared_models(models)?,
            None => current.models.clone(),
        };
        let currency = currency(change.currency.as_deref().unwrap_or(&current.row.currency), &models)?;
        let daily = change.daily_token_limit.unwrap_or(current.row.daily_token_limit);
        let monthly = change.monthly_token_limit.unwrap_or(current.row.monthly_token_limit);
        limits(daily, monthly)?;
        let key = match &change.api_key {
            Some(key) => Some((self.cipher.seal(id.0, key.expose())?, api_key_hint(key.expose()))),
            None => None,
        };
        let fields = ConfigFields {
            name,
            base_url,
            model: &models[0].model,
        };
        let sharing = SharingFields {
            currency: &currency,
            daily_token_limit: daily,
            monthly_token_limit: monthly,
            everyone: change.everyone.unwrap_or(current.row.everyone != 0),
            models: &models,
        };
        let updated = self
            .store
            .update_shared_connection(
                self.shared_owner().await?,
                id,
                &fields,
                key.as_ref().map(|(sealed, hint)| (sealed.clone(), hint.as_str())),
                &sharing,
                now_millis(),
            )
            .await
            .map_err(|e| name_taken(e.into()))?;
        if !updated {
            return Err(Error::NotFound("shared connection"));
        }
        self.load_shared(id).await
    }

    pub async fn delete_shared_connection(&self, _: &Administrator, id: ApiConfigId) -> Result<(), Error> {
        let owner = self.shared_owner().await?;
        if !self.store.delete_shared_connection(owner, id, now_millis()).await? {
            return Err(Error::NotFound("shared connection"));
        }
        self.store.delete_favorites_of_config(id).await?;
        tracing::info!(config_id = id.0, "shared connection deleted");
        Ok(())
    }

    pub async fn grant_shared_connection(
        &self,
        _: &Administrator,
        id: ApiConfigId,
        grantee: Grantee,
    ) -> Result<SharedConnection, Error> {
        let found = match &grantee {
            Grantee::Account(account) => self.store.grant_shared(id, account_id(account)?, now_millis()).await?,
            Grantee::Everyone => self.store.share_with_everyone(id, true, now_millis()).await?,
        };
        if !found {
            return Err(Error::NotFound("shared connection"));
        }
        tracing::info!(config_id = id.0, ?grantee, "shared connection granted");
        self.load_shared(id).await
    }

    pub async fn revoke_shared_connection(
        &self,
        _: &Administrator,
        id: ApiConfigId,
        grantee: Grantee,
    ) -> Result<SharedConnection, Error> {
        self.load_shared(id).await?;
        match &grantee {
            Grantee::Account(account) => self.store.revoke_shared(id, account_id(account)?).await?,
            Grantee::Everyone => {
                self.store.share_with_everyone(id, false, now_millis()).await?;
            }
        }
        tracing::info!(config_id = id.0, ?grantee, "shared connection revoked");
        self.load_shared(id).await
    }

    /// The shared connections `owner` may chat with, with their tokens used today and this
    /// month (UTC).
    pub async fn available_shared_connections(&self, owner: OwnerId) -> Result<Vec<AvailableShared>, Error> {
        let rows = self.store.shared_connections_for(owner).await?;
        let mut models = self.store.shared_models(None).await?;
        let today = Day::of_millis(now_millis());
        let used = self
            .store
            .tokens_used_per_config(owner, today, today.month_start())
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| AvailableShared {
                models: take_where(&mut models, |m| m.api_config_id == row.id),
                used: used
                    .iter()
                    .find(|(id, _)| *id == row.id)
                    .map(|(_, used)| *used)
                    .unwrap_or_default(),
                row,
            })
            .collect())
    }

    /// A config `owner` may chat with: their own, or a shared connection granted to them.
    /// Anything else (someone else's, a shared one not granted, a missing one) is NOT_FOUND.
    pub async fn usable_config(&self, owner: OwnerId, id: ApiConfigId) -> Result<UsableConfig, Error> {
        if let Some(config) = self.store.api_config(owner, id).await? {
            return Ok(UsableConfig { config, shared: None });
        }
        let not_found = || Error::NotFound("api config");
        let row = self
            .store
            .shared_connection_for(owner, id)
            .await?
            .ok_or_else(not_found)?;
        let config = self
            .store
            .api_config(self.shared_owner().await?, id)
            .await?
            .ok_or_else(not_found)?;
        let models = self.store.shared_models(Some(id)).await?;
        Ok(UsableConfig {
            config,
            shared: Some(SharedTerms { row, models }),
        })
    }

    /// RESOURCE_EXHAUSTED when `owner` used up a limit of the shared connection, naming the
    /// limit and when it resets; checked before the provider is called.
    pub async fn check_token_limits(&self, owner: OwnerId, terms: &SharedTerms) -> Result<(), Error> {
        let row = &terms.row;
        if row.daily_token_limit == 0 && row.monthly_token_limit == 0 {
            return Ok(());
        }
        let now = now_millis();
        let today = Day::of_millis(now);
        let used = self
            .store
            .tokens_used(owner, row.id, today, today.month_start())
            .await?;
        usage::check_limits(
            row.daily_token_limit,
            row.monthly_token_limit,
            used.today,
            used.this_month,
            now,
        )
        .map_err(|reached| Error::TokenLimitReached {
            connection: row.name.clone(),
            period: reached.period,
            limit: reached.limit,
            resets_at: usage::iso_instant(reached.resets_at_millis),
            retry_after: reached.retry_after(now),
        })
    }
}

/// Removes and answers the items matching `pick`, keeping the rest in order.
fn take_where<T>(items: &mut Vec<T>, pick: impl Fn(&T) -> bool) -> Vec<T> {
    let (taken, rest) = std::mem::take(items).into_iter().partition(|item| pick(item));
    *items = rest;
    taken
}

/// The models checked: at least one, each a valid name once, prices within range.
fn shared_models(models: &[SharedModelInput]) -> Result<Vec<SharedModelRow>, Error> {
    if models.is_empty() {
        return Err(Error::invalid("models", "must name at least one model"));
    }
    if models.len() > MAX_MODELS {
        return Err(Error::invalid(
            "models",
            format!("must name at most {MAX_MODELS} models"),
        ));
    }
    let mut rows: Vec<SharedModelRow> = Vec::with_capacity(models.len());
    for input in models {
        let model = input.model.trim();
        validation::model("models.model", model, true)?;
        if rows.iter().any(|r| r.model == model) {
            return Err(Error::invalid("models.model", format!("{model:?} is listed twice")));
        }
        for (field, price) in [
            ("models.prompt_price_micros", input.price.prompt_micros),
            ("models.completion_price_micros", input.price.completion_micros),
        ] {
            if !(0..=MAX_PRICE_MICROS).contains(&price) {
                return Err(Error::invalid(
                    field,
                    format!("must be between 0 and {MAX_PRICE_MICROS}"),
                ));
            }
        }
        rows.push(SharedModelRow {
            api_config_id: ApiConfigId(0),
            model: model.to_owned(),
            prompt_price_micros: input.price.prompt_micros,
            completion_price_micros: input.price.completion_micros,
        });
    }
    Ok(rows)
}

/// An ISO 4217 code (three letters, stored upper case); required once a price is set.
fn currency(code: &str, models: &[SharedModelRow]) -> Result<String, Error> {
    let code = code.trim().to_ascii_uppercase();
    if !code.is_empty() && (code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(Error::invalid(
            "currency",
            "must be a three-letter ISO 4217 code such as USD",
        ));
    }
    let priced = models
        .iter()
        .any(|m| m.prompt_price_micros > 0 || m.completion_price_micros > 0);
    if priced && code.is_empty() {
        return Err(Error::invalid("currency", "must be given when a model has a price"));
    }
    Ok(code)
}

fn limits(daily: i64, monthly: i64) -> Result<(), Error> {
    if daily < 0 {
        return Err(Error::invalid(
            "daily_token_limit",
            "must not be negative (0: no limit)",
        ));
    }
    if monthly < 0 {
        return Err(Error::invalid(
            "monthly_token_limit",
            "must not be negative (0: no limit)",
        ));
    }
    Ok(())
}

fn account_id(account: &str) -> Result<&str, Error> {
    let account = account.trim();
    if account.is_empty() {
        return Err(Error::invalid("account_id", "must not be empty"));
    }
    if account.len() > MAX_ACCOUNT_ID_LEN || account == SHARED_OWNER_ACCOUNT {
        return Err(Error::invalid("account_id", "is not an account id"));
    }
    Ok(account)
}
