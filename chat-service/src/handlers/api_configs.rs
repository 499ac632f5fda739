//! `parley.chat.v1.ApiConfigService`.

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::api_config_service_server::ApiConfigService;
use parley_service_kit::trace_context::TraceHeaders;
use tonic::{Request, Response, Status};

use super::ChatApi;
use super::UpdateMask;
use crate::Error;
use crate::api_key::ApiKey;
use crate::convert;
use crate::ids::ApiConfigId;
use crate::service::{ConfigChange, ProviderTarget};

fn target(id: Option<i64>, settings: Option<pb::ProviderSettings>) -> Result<ProviderTarget, Error> {
    match (id, settings) {
        (Some(id), _) => Ok(ProviderTarget::Stored(ApiConfigId(id))),
        (None, Some(s)) => Ok(ProviderTarget::Inline {
            base_url: s.base_url,
            api_key: ApiKey::new(s.api_key),
            model: s.model,
        }),
        (None, None) => Err(Error::invalid("target", "give a config id or provider settings")),
    }
}

#[tonic::async_trait]
impl ApiConfigService for ChatApi {
    async fn create_api_config(
        &self,
        request: Request<pb::CreateApiConfigRequest>,
    ) -> Result<Response<pb::CreateApiConfigResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let row = self
            .chat
            .create_api_config(user, &r.name, &r.base_url, &ApiKey::new(r.api_key), &r.model)
            .await?;
        Ok(Response::new(pb::CreateApiConfigResponse {
            api_config: Some(convert::api_config(&row)),
        }))
    }

    async fn list_api_configs(
        &self,
        request: Request<pb::ListApiConfigsRequest>,
    ) -> Result<Response<pb::ListApiConfigsResponse>, Status> {
        let user = self.caller(&request).await?;
        let rows = self.chat.list_api_configs(user).await?;
        Ok(Response::new(pb::ListApiConfigsResponse {
            api_configs: rows.iter().map(convert::api_config).collect(),
        }))
    }

    async fn get_api_config(
        &self,
        request: Request<pb::GetApiConfigRequest>,
    ) -> Result<Response<pb::GetApiConfigResponse>, Status> {
        let user = self.caller(&request).await?;
        let row = self
            .chat
            .get_api_config(user, ApiConfigId(request.get_ref().id))
            .await?;
        Ok(Response::new(pb::GetApiConfigResponse {
            api_config: Some(convert::api_config(&row)),
        }))
    }

    async fn get_api_config_by_name(
        &self,
        request: Request<pb::GetApiConfigByNameRequest>,
    ) -> Result<Response<pb::GetApiConfigByNameResponse>, Status> {
        let user = self.caller(&request).await?;
        let row = self.chat.api_config_by_name(user, &request.get_ref().name).await?;
        Ok(Response::new(pb::GetApiConfigByNameResponse {
            api_config: Some(convert::api_config(&row)),
        }))
    }

    async fn get_default_api_config(
        &self,
        request: Request<pb::GetDefaultApiConfigRequest>,
    ) -> Result<Response<pb::GetDefaultApiConfigResponse>, Status> {
        let user = self.caller(&request).await?;
        let row = self.chat.default_api_config(user).await?;
        Ok(Response::new(pb::GetDefaultApiConfigResponse {
            api_config: Some(convert::api_config(&row)),
        }))
    }

    async fn update_api_config(
        &self,
        request: Request<pb::UpdateApiConfigRequest>,
    ) -> Result<Response<pb::UpdateApiConfigResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let mask = UpdateMask::new(r.update_mask, &["name", "base_url", "api_key", "model"])?;
        let change = ConfigChange {
            name: mask.pick("name", r.name),
            base_url: mask.pick("base_url", r.base_url),
            api_key: mask.pick("api_key", r.api_key).map(ApiKey::new),
            model: mask.pick("model", r.model),
        };
        let row = self.chat.update_api_config(user, ApiConfigId(r.id), change).await?;
        Ok(Response::new(pb::UpdateApiConfigResponse {
            api_config: Some(convert::api_config(&row)),
        }))
    }

    async fn delete_api_config(
        &self,
        request: Request<pb::DeleteApiConfigRequest>,
    ) -> Result<Response<pb::DeleteApiConfigResponse>, Status> {
        let user = self.caller(&request).await?;
        let deleted = self
            .chat
            .delete_api_config(user, ApiConfigId(request.get_ref().id))
            .await?;
        let (replacement_id, replacement_name) = deleted.replacement.unzip();
        Ok(Response::new(pb::DeleteApiConfigResponse {
            sessions_moved: i32::try_from(deleted.sessions_moved).unwrap_or(i32::MAX),
            replacement_id: replacement_id.map(|id| id.0),
            replacement_name: replacement_name.unwrap_or_default(),
        }))
    }

    async fn test_api_config(
        &self,
        request: Request<pb::TestApiConfigRequest>,
    ) -> Result<Response<pb::TestApiConfigResponse>, Status> {
        let user = self.caller(&request).await?;
        let trace = TraceHeaders::from_metadata(request.metadata());
        let (id, settings) = match request.into_inner().target {
            Some(pb::test_api_config_request::Target::Id(id)) => (Some(id), None),
            Some(pb::test_api_config_request::Target::Settings(s)) => (None, Some(s)),
            None => (None, None),
        };
        let checked = self.chat.test_api_config(user, target(id, settings)?, &trace).await?;
        Ok(Response::new(pb::TestApiConfigResponse {
            ok: checked.ok,
            latency_ms: checked.latency_ms,
            model_available: checked.model_available,
            message: checked.message,
        }))
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let user = self.caller(&request).await?;
        let trace = TraceHeaders::from_metadata(request.metadata());
        let (id, settings) = match request.into_inner().target {
            Some(pb::list_models_request::Target::Id(id)) => (Some(id), None),
            Some(pb::list_models_request::Target::Settings(s)) => (None, Some(s)),
            None => (None, None),
        };
        let model_ids = self.chat.list_models(user, target(id, settings)?, &trace).await?;
        Ok(Response::new(pb::ListModelsResponse { model_ids }))
    }
}
