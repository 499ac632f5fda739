//! `parley.chat.v1.ModelService` and `parley.chat.v1.ChatDefaultsService`.

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::chat_defaults_service_server::ChatDefaultsService;
use parley_proto::chat::v1::model_service_server::ModelService;
use parley_service_kit::trace_context::TraceHeaders;
use tonic::{Request, Response, Status};

use super::{ChatApi, UpdateMask};
use crate::convert;
use crate::ids::{ApiConfigId, PersonaId};
use crate::service::ChatDefaultsChange;

#[tonic::async_trait]
impl ModelService for ChatApi {
    async fn list_chat_models(
        &self,
        request: Request<pb::ListChatModelsRequest>,
    ) -> Result<Response<pb::ListChatModelsResponse>, Status> {
        let user = self.caller(&request).await?;
        let trace = TraceHeaders::from_metadata(request.metadata());
        let (groups, favorites) = self.chat.chat_models(user, request.get_ref().refresh, &trace).await?;
        Ok(Response::new(pb::ListChatModelsResponse {
            groups: groups.iter().map(convert::model_group).collect(),
            favorites: favorites.iter().map(convert::favorite_model).collect(),
        }))
    }

    async fn list_favorite_models(
        &self,
        request: Request<pb::ListFavoriteModelsRequest>,
    ) -> Result<Response<pb::ListFavoriteModelsResponse>, Status> {
        let user = self.caller(&request).await?;
        let favorites = self.chat.favorite_models(user).await?;
        Ok(Response::new(pb::ListFavoriteModelsResponse {
            favorites: favorites.iter().map(convert::favorite_model).collect(),
        }))
    }

    async fn add_favorite_model(
        &self,
        request: Request<pb::AddFavoriteModelRequest>,
    ) -> Result<Response<pb::AddFavoriteModelResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let row = self
            .chat
            .add_favorite_model(user, ApiConfigId(r.api_config_id), &r.model)
            .await?;
        Ok(Response::new(pb::AddFavoriteModelResponse {
            favorite: Some(convert::favorite_model(&row)),
        }))
    }

    async fn remove_favorite_model(
        &self,
        request: Request<pb::RemoveFavoriteModelRequest>,
    ) -> Result<Response<pb::RemoveFavoriteModelResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        self.chat
            .remove_favorite_model(user, ApiConfigId(r.api_config_id), &r.model)
            .await?;
        Ok(Response::new(pb::RemoveFavoriteModelResponse {}))
    }
}

#[tonic::async_trait]
impl ChatDefaultsService for ChatApi {
    async fn get_chat_defaults(
        &self,
        request: Request<pb::GetChatDefaultsRequest>,
    ) -> Result<Response<pb::GetChatDefaultsResponse>, Status> {
        let user = self.caller(&request).await?;
        let row = self.chat.chat_defaults(user).await?;
        Ok(Response::new(pb::GetChatDefaultsResponse {
            defaults: Some(convert::chat_defaults(&row)),
        }))
    }

    async fn update_chat_defaults(
        &self,
        request: Request<pb::UpdateChatDefaultsRequest>,
    ) -> Result<Response<pb::UpdateChatDefaultsResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let mask = UpdateMask::new(
            r.update_mask,
            &["persona_id", "system_prompt", "temperature", "top_p", "max_tokens"],
        )?;
        let change = ChatDefaultsChange {
            // 0 clears it.
            persona_id: mask
                .pick("persona_id", r.persona_id)
                .map(|id| (id != 0).then_some(PersonaId(id))),
            system_prompt: mask.pick("system_prompt", r.system_prompt),
            temperature: mask.pick_optional("temperature", r.temperature),
            top_p: mask.pick_optional("top_p", r.top_p),
            max_tokens: mask.pick_optional("max_tokens", r.max_tokens).map(|n| n.map(i64::from)),
        };
        let row = self.chat.update_chat_defaults(user, change).await?;
        Ok(Response::new(pb::UpdateChatDefaultsResponse {
            defaults: Some(convert::chat_defaults(&row)),
        }))
    }
}
