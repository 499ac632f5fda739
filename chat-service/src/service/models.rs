//! The model picker's data: every model the owner can chat with, grouped by config (own
//! configs from their providers, cached; shared connections from what their administrator
//! offers), and the owner's favourite models.

use futures::future::join_all;
use parley_proto::llm::v1 as llm;
use parley_service_kit::database::now_millis;
use parley_service_kit::grpc_status::{self, Reason};
use parley_service_kit::trace_context::TraceHeaders;

use super::ChatService;
use crate::Error;
use crate::ids::{ApiConfigId, OwnerId};
use crate::model_cache::{ModelList, model_choices};
use crate::store::{ApiConfigRow, FavoriteModelRow};
use crate::validation;

/// Favourites one account may keep.
pub const MAX_FAVORITE_MODELS: i64 = 200;

/// The models of one config, as the picker groups them.
#[derive(Debug, Clone)]
pub struct ModelGroup {
    pub config_id: ApiConfigId,
    pub config_name: String,
    pub shared: bool,
    pub default_model: String,
    pub models: Vec<String>,
    /// Why the provider's list could not be read, and its reason if known.
    pub error: Option<(String, Option<Reason>)>,
    /// When the provider's list was read (Unix milliseconds).
    pub fetched_at: Option<i64>,
}

impl ChatService {
    /// Every config `owner` can chat with and its models (own configs oldest first, then
    /// shared connections), and their favourites among them. `refresh` skips the cache.
    pub async fn chat_models(
        &self,
        owner: OwnerId,
        refresh: bool,
        trace: &TraceHeaders,
    ) -> Result<(Vec<ModelGroup>, Vec<FavoriteModelRow>), Error> {
        let own = self.store.api_configs(owner).await?;
        let mut groups = join_all(own.iter().map(|config| self.own_models(config, refresh, trace))).await;
        for shared in self.available_shared_connections(owner).await? {
            let offered: Vec<String> = shared.models.iter().map(|m| m.model.clone()).collect();
            groups.push(ModelGroup {
                config_id: shared.row.id,
                config_name: shared.row.name.clone(),
                shared: true,
                default_model: offered.first().cloned().unwrap_or_default(),
                // In the administrator's order: the first answers chats that name none.
                models: offered,
                error: None,
                fetched_at: None,
            });
        }
        let favorites = self
            .store
            .favorite_models(owner)
            .await?
            .into_iter()
            .filter(|f| groups.iter().any(|g| g.config_id == f.api_config_id))
            .collect();
        Ok((groups, favorites))
    }

    /// An own config's models: the cached list, or the provider's now. A provider that fails
    /// leaves the config's own model to choose, with why.
    async fn own_models(&self, config: &ApiConfigRow, refresh: bool, trace: &TraceHeaders) -> ModelGroup {
        let mut group = ModelGroup {
            config_id: config.id,
            config_name: config.name.clone(),
            shared: false,
            default_model: config.model.clone(),
            models: model_choices(Vec::new(), &config.model),
            error: None,
            fetched_at: None,
        };
        let cached = if refresh {
            None
        } else {
            self.models.get(config.id, config.updated_at)
        };
        let list = match cached {
            Some(list) => Ok(list),
            None => self.fetch_models(config, trace).await,
        };
        match list {
            Ok(list) => {
                group.models = model_choices(list.models, &config.model);
                group.fetched_at = Some(list.fetched_at);
            }
            Err(error) => {
                let status = tonic::Status::from(error);
                tracing::debug!(config_id = config.id.0, error = %status.message(), "model list unavailable");
                group.error = Some((status.message().to_owned(), grpc_status::reason(&status)));
            }
        }
        group
    }

    async fn fetch_models(&self, config: &ApiConfigRow, trace: &TraceHeaders) -> Result<ModelList, Error> {
        let provider = llm::Provider {
            base_url: config.base_url.clone(),
            api_key: self.open_key(config)?.into_exposed(),
            model: config.model.clone(),
        };
        let list = ModelList {
            models: self.llm.list_models(provider, trace).await?,
            fetched_at: now_millis(),
        };
        self.models.put(config.id, config.updated_at, list.clone());
        Ok(list)
    }

    pub async fn favorite_models(&self, owner: OwnerId) -> Result<Vec<FavoriteModelRow>, Error> {
        Ok(self.store.favorite_models(owner).await?)
    }

    /// Marks `model` of a config `owner` can chat with as a favourite (again: unchanged).
    pub async fn add_favorite_model(
        &self,
        owner: OwnerId,
        config_id: ApiConfigId,
        model: &str,
    ) -> Result<FavoriteModelRow, Error> {
        let model = model.trim();
        validation::model("model", model, true)?;
        self.usable_config(owner, config_id).await?;
        let existing = self.store.favorite_models(owner).await?;
        if let Some(found) = existing
            .iter()
            .find(|f| f.api_config_id == config_id && f.model == model)
        {
            return Ok(found.clone());
        }
        if existing.len() as i64 >= MAX_FAVORITE_MODELS {
            return Err(Error::LimitReached(format!(
                "you can keep at most {MAX_FAVORITE_MODELS} favourite models; remove one first"
            )));
        }
        Ok(self
            .store
            .add_favorite_model(owner, config_id, model, now_millis())
            .await?)
    }

    pub async fn remove_favorite_model(
        &self,
        owner: OwnerId,
        config_id: ApiConfigId,
        model: &str,
    ) -> Result<(), Error> {
        let model = model.trim();
        validation::model("model", model, true)?;
        Ok(self.store.remove_favorite_model(owner, config_id, model).await?)
    }
}
