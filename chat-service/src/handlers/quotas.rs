//! `parley.chat.v1.QuotaService`.

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::quota_service_server::QuotaService;
use parley_service_kit::access_token::AuthenticatedUser;
use tonic::{Request, Response, Status};

use super::{ChatApi, UpdateMask};
use crate::convert;
use crate::service::QuotaChange;

#[tonic::async_trait]
impl QuotaService for ChatApi {
    async fn get_my_quota(
        &self,
        request: Request<pb::GetMyQuotaRequest>,
    ) -> Result<Response<pb::GetMyQuotaResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let quota = self.chat.my_quota(&caller).await?;
        Ok(Response::new(pb::GetMyQuotaResponse {
            quota: Some(convert::account_quota(&quota)),
        }))
    }

    async fn list_account_usage(
        &self,
        request: Request<pb::ListAccountUsageRequest>,
    ) -> Result<Response<pb::ListAccountUsageResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let r = request.into_inner();
        let (accounts, next_page_token) = self
            .chat
            .list_account_usage(&caller, r.page_size, &r.page_token, &r.account_ids)
            .await?;
        Ok(Response::new(pb::ListAccountUsageResponse {
            accounts: accounts.iter().map(convert::account_quota).collect(),
            next_page_token,
        }))
    }

    async fn get_account_quota(
        &self,
        request: Request<pb::GetAccountQuotaRequest>,
    ) -> Result<Response<pb::GetAccountQuotaResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let quota = self
            .chat
            .get_account_quota(&caller, &request.get_ref().account_id)
            .await?;
        Ok(Response::new(pb::GetAccountQuotaResponse {
            quota: Some(convert::account_quota(&quota)),
        }))
    }

    async fn update_account_quota(
        &self,
        request: Request<pb::UpdateAccountQuotaRequest>,
    ) -> Result<Response<pb::UpdateAccountQuotaResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let r = request.into_inner();
        let mask = UpdateMask::new(
            r.update_mask,
            &[
                "stored_bytes",
                "sessions",
                "personas",
                "api_configs",
                "messages_per_day",
            ],
        )?;
        let change = QuotaChange {
            stored_bytes: mask.pick_optional("stored_bytes", r.stored_bytes),
            sessions: mask.pick_optional("sessions", r.sessions),
            personas: mask.pick_optional("personas", r.personas),
            api_configs: mask.pick_optional("api_configs", r.api_configs),
            messages_per_day: mask.pick_optional("messages_per_day", r.messages_per_day),
        };
        let quota = self.chat.update_account_quota(&caller, &r.account_id, change).await?;
        Ok(Response::new(pb::UpdateAccountQuotaResponse {
            quota: Some(convert::account_quota(&quota)),
        }))
    }
}
