//! `parley.chat.internal.v1.AccountDataService`: what user-service asks of chat-service. The
//! auth layer lets only a service token with the method's scope through (no user's token).

use parley_proto::chat::internal::v1 as internal;
use parley_proto::chat::internal::v1::account_data_service_server::AccountDataService;
use parley_service_kit::access_token::AuthenticatedService;
use tonic::{Request, Response, Status};

use super::ChatApi;

#[tonic::async_trait]
impl AccountDataService for ChatApi {
    async fn erase_account_data(
        &self,
        request: Request<internal::EraseAccountDataRequest>,
    ) -> Result<Response<internal::EraseAccountDataResponse>, Status> {
        // Set only by the auth layer's service-token check: without it (a server wired
        // without that check) nothing is erased.
        let Some(caller) = request.extensions().get::<AuthenticatedService>().cloned() else {
            return Err(Status::unauthenticated("missing service token"));
        };
        let r = request.into_inner();
        tracing::info!(service = %caller.service, user_id = r.user_id, "erasing a deleted account's chat data");
        let erased = self.chat.erase_account(r.user_id, &r.account_id).await?;
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(Response::new(internal::EraseAccountDataResponse {
            deleted_messages: count(erased.messages),
            deleted_sessions: count(erased.sessions),
            deleted_personas: count(erased.personas),
            deleted_api_configs: count(erased.api_configs),
        }))
    }
}
