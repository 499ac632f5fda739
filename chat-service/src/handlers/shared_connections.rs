//! `parley.chat.v1.SharedConnectionService`: administration (the token's role claim says who
//! may) and the list a user may chat with.

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::shared_connection_service_server::SharedConnectionService;
use parley_service_kit::access_token::AuthenticatedUser;
use tonic::{Request, Response, Status};

use super::{ChatApi, UpdateMask};
use crate::Error;
use crate::api_key::ApiKey;
use crate::convert;
use crate::ids::ApiConfigId;
use crate::service::{
    Administrator, ChatService, Grantee, NewSharedConnection, SharedConnection, SharedConnectionChange,
    SharedModelInput,
};
use crate::usage::ModelPrice;

fn administrator<T>(request: &Request<T>) -> Result<Administrator, Status> {
    Ok(ChatService::administrator(
        &AuthenticatedUser::from_request(request)?,
        "manage shared connections",
    )?)
}

fn models(models: Vec<pb::SharedModel>) -> Vec<SharedModelInput> {
    models
        .into_iter()
        .map(|m| SharedModelInput {
            model: m.model,
            price: ModelPrice {
                prompt_micros: m.prompt_price_micros,
                completion_micros: m.completion_price_micros,
            },
        })
        .collect()
}

fn reply(shared: &SharedConnection) -> Option<pb::SharedConnection> {
    Some(convert::shared_connection(&shared.row, &shared.models, &shared.granted))
}

/// The grant and revoke requests' `grantee` oneofs are distinct generated types with the
/// same two arms; this reads either into the service's [`Grantee`].
macro_rules! grantee {
    ($oneof:ty, $grantee:expr) => {{
        type G = $oneof;
        match $grantee {
            Some(G::AccountId(account)) => Ok(Grantee::Account(account)),
            Some(G::Everyone(true)) => Ok(Grantee::Everyone),
            _ => Err(Error::invalid("grantee", "give an account_id, or everyone = true")),
        }
    }};
}

#[tonic::async_trait]
impl SharedConnectionService for ChatApi {
    async fn create_shared_connection(
        &self,
        request: Request<pb::CreateSharedConnectionRequest>,
    ) -> Result<Response<pb::CreateSharedConnectionResponse>, Status> {
        let admin = administrator(&request)?;
        let r = request.into_inner();
        let created = self
            .chat
            .create_shared_connection(
                &admin,
                NewSharedConnection {
                    name: r.name,
                    base_url: r.base_url,
                    api_key: ApiKey::new(r.api_key),
                    models: models(r.models),
                    currency: r.currency,
                    daily_token_limit: r.daily_token_limit,
                    monthly_token_limit: r.monthly_token_limit,
                    everyone: r.everyone,
                },
            )
            .await?;
        Ok(Response::new(pb::CreateSharedConnectionResponse {
            shared_connection: reply(&created),
        }))
    }

    async fn list_shared_connections(
        &self,
        request: Request<pb::ListSharedConnectionsRequest>,
    ) -> Result<Response<pb::ListSharedConnectionsResponse>, Status> {
        let admin = administrator(&request)?;
        let all = self.chat.shared_connections(&admin).await?;
        Ok(Response::new(pb::ListSharedConnectionsResponse {
            shared_connections: all.iter().filter_map(reply).collect(),
        }))
    }

    async fn get_shared_connection(
        &self,
        request: Request<pb::GetSharedConnectionRequest>,
    ) -> Result<Response<pb::GetSharedConnectionResponse>, Status> {
        let admin = administrator(&request)?;
        let shared = self
            .chat
            .shared_connection(&admin, ApiConfigId(request.get_ref().id))
            .await?;
        Ok(Response::new(pb::GetSharedConnectionResponse {
            shared_connection: reply(&shared),
        }))
    }

    async fn update_shared_connection(
        &self,
        request: Request<pb::UpdateSharedConnectionRequest>,
    ) -> Result<Response<pb::UpdateSharedConnectionResponse>, Status> {
        let admin = administrator(&request)?;
        let r = request.into_inner();
        let mask = UpdateMask::new(
            r.update_mask,
            &[
                "name",
                "base_url",
                "api_key",
                "models",
                "currency",
                "daily_token_limit",
                "monthly_token_limit",
                "everyone",
            ],
        )?;
        let change = SharedConnectionChange {
            name: mask.pick("name", r.name),
            base_url: mask.pick("base_url", r.base_url),
            api_key: mask.pick("api_key", r.api_key).map(ApiKey::new),
            // A repeated field cannot be "unset": without a mask, an empty list changes nothing.
            models: mask
                .pick("models", (!r.models.is_empty()).then_some(r.models))
                .map(models),
            currency: mask.pick("currency", r.currency),
            daily_token_limit: mask.pick("daily_token_limit", r.daily_token_limit),
            monthly_token_limit: mask.pick("monthly_token_limit", r.monthly_token_limit),
            everyone: mask.pick("everyone", r.everyone),
        };
        let updated = self
            .chat
            .update_shared_connection(&admin, ApiConfigId(r.id), change)
            .await?;
        Ok(Response::new(pb::UpdateSharedConnectionResponse {
            shared_connection: reply(&updated),
        }))
    }

    async fn delete_shared_connection(
        &self,
        request: Request<pb::DeleteSharedConnectionRequest>,
    ) -> Result<Response<pb::DeleteSharedConnectionResponse>, Status> {
        let admin = administrator(&request)?;
        self.chat
            .delete_shared_connection(&admin, ApiConfigId(request.get_ref().id))
            .await?;
        Ok(Response::new(pb::DeleteSharedConnectionResponse {}))
    }

    async fn grant_shared_connection(
        &self,
        request: Request<pb::GrantSharedConnectionRequest>,
    ) -> Result<Response<pb::GrantSharedConnectionResponse>, Status> {
        let admin = administrator(&request)?;
        let r = request.into_inner();
        let grantee = grantee!(pb::grant_shared_connection_request::Grantee, r.grantee)?;
        let shared = self
            .chat
            .grant_shared_connection(&admin, ApiConfigId(r.id), grantee)
            .await?;
        Ok(Response::new(pb::GrantSharedConnectionResponse {
            shared_connection: reply(&shared),
        }))
    }

    async fn revoke_shared_connection(
        &self,
        request: Request<pb::RevokeSharedConnectionRequest>,
    ) -> Result<Response<pb::RevokeSharedConnectionResponse>, Status> {
        let admin = administrator(&request)?;
        let r = request.into_inner();
        let grantee = grantee!(pb::revoke_shared_connection_request::Grantee, r.grantee)?;
        let shared = self
            .chat
            .revoke_shared_connection(&admin, ApiConfigId(r.id), grantee)
            .await?;
        Ok(Response::new(pb::RevokeSharedConnectionResponse {
            shared_connection: reply(&shared),
        }))
    }

    async fn list_available_shared_connections(
        &self,
        request: Request<pb::ListAvailableSharedConnectionsRequest>,
    ) -> Result<Response<pb::ListAvailableSharedConnectionsResponse>, Status> {
        let user = self.caller(&request).await?;
        let available = self.chat.available_shared_connections(user).await?;
        Ok(Response::new(pb::ListAvailableSharedConnectionsResponse {
            shared_connections: available
                .iter()
                .map(|a| convert::available_shared_connection(&a.row, &a.models, a.used))
                .collect(),
        }))
    }
}
