//! API configs: a user's provider settings, the key sealed at rest; testing a provider and
//! listing its models, for a stored config or settings not saved yet.

use parley_proto::llm::v1 as llm;
use parley_service_kit::database::{is_unique_violation, now_millis};
use parley_service_kit::trace_context::TraceHeaders;

use super::ChatService;
use crate::Error;
use crate::api_key::ApiKey;
use crate::ids::{ApiConfigId, OwnerId};
use crate::key_cipher::api_key_hint;
use crate::quota::Quota;
use crate::store::{ApiConfigRow, ConfigFields, DeletedConfig};
use crate::validation;

/// Config fields to change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ConfigChange {
    pub name: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<ApiKey>,
    pub model: Option<String>,
}

/// A provider to test or list models of: a stored config, or settings not yet saved.
#[derive(Debug)]
pub enum ProviderTarget {
    Stored(ApiConfigId),
    Inline {
        base_url: String,
        api_key: ApiKey,
        model: String,
    },
}

impl ChatService {
    pub async fn create_api_config(
        &self,
        user_id: OwnerId,
        name: &str,
        base_url: &str,
        api_key: &ApiKey,
        model: &str,
    ) -> Result<ApiConfigRow, Error> {
        let name = name.trim();
        validation::name("name", name)?;
        validation::base_url("base_url", base_url)?;
        validation::api_key("api_key", api_key.expose())?;
        validation::model("model", model, true)?;
        let fields = ConfigFields { name, base_url, model };
        let hint = api_key_hint(api_key.expose());
        let mut write = self.within_quota(user_id, &[(Quota::ApiConfigs, 1)]).await?;
        let id = write
            .insert_api_config(
                &fields,
                &hint,
                |id| self.cipher.seal(id.0, api_key.expose()).map_err(Error::from),
                now_millis(),
            )
            .await
            .map_err(name_taken)?;
        write.commit().await.map_err(|e| name_taken(e.into()))?;
        tracing::info!(config_id = id.0, "API config created");
        self.get_api_config(user_id, id).await
    }

    /// Oldest first, each with how many of the user's chats use it.
    pub async fn list_api_configs(&self, user_id: OwnerId) -> Result<Vec<ApiConfigRow>, Error> {
        let mut rows = self.store.api_configs(user_id).await?;
        self.count_sessions(user_id, &mut rows).await?;
        Ok(rows)
    }

    /// The user's config with how many of their chats use it.
    pub async fn get_api_config(&self, user_id: OwnerId, id: ApiConfigId) -> Result<ApiConfigRow, Error> {
        let mut row = self.api_config(user_id, id).await?;
        self.count_sessions(user_id, std::slice::from_mut(&mut row)).await?;
        Ok(row)
    }

    pub async fn api_config_by_name(&self, user_id: OwnerId, name: &str) -> Result<ApiConfigRow, Error> {
        let name = name.trim();
        validation::name("name", name)?;
        let mut row = self
            .store
            .api_config_by_name(user_id, name)
            .await?
            .ok_or(Error::NotFound("api config"))?;
        self.count_sessions(user_id, std::slice::from_mut(&mut row)).await?;
        Ok(row)
    }

    pub async fn default_api_config(&self, user_id: OwnerId) -> Result<ApiConfigRow, Error> {
        let mut row = self
            .store
            .default_api_config(user_id)
            .await?
            .ok_or(Error::NotFound("api config"))?;
        self.count_sessions(user_id, std::slice::from_mut(&mut row)).await?;
        Ok(row)
    }

    /// Fills `session_count`: the chats naming each config, and for the default config also
    /// those naming none (it answers them).
    async fn count_sessions(&self, user_id: OwnerId, rows: &mut [ApiConfigRow]) -> Result<(), Error> {
        let counts = self.store.sessions_per_config(user_id).await?;
        for row in rows {
            let named = counts.get(&Some(row.id)).copied().unwrap_or(0);
            let unnamed = if row.is_default != 0 {
                counts.get(&None).copied().unwrap_or(0)
            } else {
                0
            };
            row.session_count = named + unnamed;
        }
        Ok(())
    }

    pub async fn update_api_config(
        &self,
        user_id: OwnerId,
        id: ApiConfigId,
        change: ConfigChange,
    ) -> Result<ApiConfigRow, Error> {
        let current = self.api_config(user_id, id).await?;
        let name = change.name.as_deref().map(str::trim).unwrap_or(&current.name);
        let base_url = change.base_url.as_deref().unwrap_or(&current.base_url);
        let model = change.model.as_deref().unwrap_or(&current.model);
        validation::name("name", name)?;
        validation::base_url("base_url", base_url)?;
        // The stored key goes only to the host it was given for. Were a new base URL enough,
        // an access token alone could have the key sent (by TestApiConfig, ListModels or a
        // chat) to a host of the token holder's choosing.
        if base_url != current.base_url && change.api_key.is_none() {
            return Err(Error::invalid(
                "api_key",
                "must be given again when base_url changes (the stored key is only sent to the URL it was given for)",
            ));
        }
        if let Some(key) = &change.api_key {
            validation::api_key("api_key", key.expose())?;
        }
        validation::model("model", model, true)?;
        let fields = ConfigFields { name, base_url, model };
        let key = match &change.api_key {
            Some(key) => Some((self.cipher.seal(id.0, key.expose())?, api_key_hint(key.expose()))),
            None => None,
        };
        let updated = self
            .store
            .update_api_config(
                user_id,
                id,
                &fields,
                key.as_ref().map(|(sealed, hint)| (sealed.clone(), hint.as_str())),
                now_millis(),
            )
            .await
            .map_err(|e| name_taken(e.into()))?;
        if !updated {
            return Err(Error::NotFound("api config"));
        }
        self.get_api_config(user_id, id).await
    }

    /// Deletes the config; the chats that used it move to the default config that remains.
    pub async fn delete_api_config(&self, user_id: OwnerId, id: ApiConfigId) -> Result<DeletedConfig, Error> {
        let deleted = self
            .store
            .delete_api_config(user_id, id, now_millis())
            .await?
            .ok_or(Error::NotFound("api config"))?;
        self.models.forget(id);
        self.store.delete_favorites_of_config(id).await?;
        Ok(deleted)
    }

    pub async fn test_api_config(
        &self,
        user_id: OwnerId,
        target: ProviderTarget,
        trace: &TraceHeaders,
    ) -> Result<llm::CheckProviderResponse, Error> {
        let provider = self.provider_of(user_id, target, true).await?;
        self.llm.check_provider(provider, trace).await
    }

    pub async fn list_models(
        &self,
        user_id: OwnerId,
        target: ProviderTarget,
        trace: &TraceHeaders,
    ) -> Result<Vec<String>, Error> {
        let provider = self.provider_of(user_id, target, false).await?;
        self.llm.list_models(provider, trace).await
    }

    async fn provider_of(
        &self,
        user_id: OwnerId,
        target: ProviderTarget,
        model_required: bool,
    ) -> Result<llm::Provider, Error> {
        match target {
            ProviderTarget::Stored(id) => {
                let config = self.api_config(user_id, id).await?;
                let api_key = self.open_key(&config)?;
                Ok(llm::Provider {
                    base_url: config.base_url,
                    api_key: api_key.into_exposed(),
                    model: config.model,
                })
            }
            ProviderTarget::Inline {
                base_url,
                api_key,
                model,
            } => {
                validation::base_url("settings.base_url", &base_url)?;
                validation::api_key("settings.api_key", api_key.expose())?;
                validation::model("settings.model", &model, model_required)?;
                Ok(llm::Provider {
                    base_url,
                    api_key: api_key.into_exposed(),
                    model,
                })
            }
        }
    }
}

pub(super) fn name_taken(error: Error) -> Error {
    match error {
        Error::Database(e) if is_unique_violation(&e) => Error::AlreadyExists {
            field: "name",
            reason: "you already have an API config with this name".to_owned(),
        },
        other => other,
    }
}
