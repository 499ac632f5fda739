//! `parley.chat.v1.ShareService` (the owner's links) and `SharedChatService` (the public
//! snapshot: the one chat method that needs no access token; its credential is the link).

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::share_service_server::ShareService;
use parley_proto::chat::v1::shared_chat_service_server::SharedChatService;
use tonic::{Request, Response, Status};

use super::ChatApi;
use crate::convert;
use crate::ids::{SessionId, ShareLinkId};

#[tonic::async_trait]
impl ShareService for ChatApi {
    async fn create_share_link(
        &self,
        request: Request<pb::CreateShareLinkRequest>,
    ) -> Result<Response<pb::CreateShareLinkResponse>, Status> {
        let user = self.caller(&request).await?;
        let row = self
            .chat
            .create_share_link(user, SessionId(request.get_ref().session_id))
            .await?;
        Ok(Response::new(pb::CreateShareLinkResponse {
            link: Some(convert::share_link(&row)),
        }))
    }

    async fn list_share_links(
        &self,
        request: Request<pb::ListShareLinksRequest>,
    ) -> Result<Response<pb::ListShareLinksResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let (rows, next_page_token) = self
            .chat
            .list_share_links(user, r.session_id.map(SessionId), r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListShareLinksResponse {
            links: rows.iter().map(convert::share_link).collect(),
            next_page_token,
        }))
    }

    async fn revoke_share_link(
        &self,
        request: Request<pb::RevokeShareLinkRequest>,
    ) -> Result<Response<pb::RevokeShareLinkResponse>, Status> {
        let user = self.caller(&request).await?;
        self.chat
            .revoke_share_link(user, ShareLinkId(request.get_ref().id))
            .await?;
        Ok(Response::new(pb::RevokeShareLinkResponse {}))
    }
}

#[tonic::async_trait]
impl SharedChatService for ChatApi {
    async fn get_shared_chat(
        &self,
        request: Request<pb::GetSharedChatRequest>,
    ) -> Result<Response<pb::GetSharedChatResponse>, Status> {
        let (link, messages) = self.chat.shared_chat(&request.get_ref().share_token).await?;
        Ok(Response::new(pb::GetSharedChatResponse {
            chat: Some(convert::shared_chat(&link, &messages)),
        }))
    }
}
