//! `parley.chat.v1.SessionService`.

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::session_service_server::SessionService;
use tonic::{Request, Response, Status};

use super::ChatApi;
use super::UpdateMask;
use crate::convert;
use crate::ids::{ApiConfigId, FolderId, PersonaId, SessionId};
use crate::service::{ArchiveFilter, NewSessionInput, SessionChange};

#[tonic::async_trait]
impl SessionService for ChatApi {
    async fn create_session(
        &self,
        request: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::CreateSessionResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let row = self
            .chat
            .create_session(
                user,
                NewSessionInput {
                    title: r.title,
                    persona_id: r.persona_id.map(PersonaId),
                    system_prompt: r.system_prompt,
                    api_config_id: r.api_config_id.map(ApiConfigId),
                    model: r.model,
                    temperature: r.temperature,
                    top_p: r.top_p,
                    max_tokens: r.max_tokens.map(i64::from),
                },
            )
            .await?;
        Ok(Response::new(pb::CreateSessionResponse {
            session: Some(convert::session(&row)),
        }))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let (rows, next_page_token) = self
            .chat
            .list_sessions(user, r.page_size, &r.page_token, archive_filter(&r))
            .await?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: rows.iter().map(convert::session).collect(),
            next_page_token,
        }))
    }

    async fn get_session(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::GetSessionResponse>, Status> {
        let user = self.caller(&request).await?;
        let row = self.chat.session(user, SessionId(request.get_ref().id)).await?;
        Ok(Response::new(pb::GetSessionResponse {
            session: Some(convert::session(&row)),
        }))
    }

    async fn update_session(
        &self,
        request: Request<pb::UpdateSessionRequest>,
    ) -> Result<Response<pb::UpdateSessionResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let mask = UpdateMask::new(
            r.update_mask,
            &[
                "title",
                "system_prompt",
                "api_config_id",
                "model",
                "temperature",
                "top_p",
                "max_tokens",
                "persona_id",
                "pinned",
                "archived",
                "ended",
                "folder_id",
            ],
        )?;
        let change = SessionChange {
            title: mask.pick("title", r.title),
            system_prompt: mask.pick("system_prompt", r.system_prompt),
            // 0 clears it: the default config answers.
            api_config_id: mask
                .pick("api_config_id", r.api_config_id)
                .map(|id| (id != 0).then_some(ApiConfigId(id))),
            model: mask.pick("model", r.model),
            temperature: mask.pick_optional("temperature", r.temperature),
            top_p: mask.pick_optional("top_p", r.top_p),
            max_tokens: mask.pick_optional("max_tokens", r.max_tokens).map(|n| n.map(i64::from)),
            // 0 clears it.
            persona_id: mask
                .pick("persona_id", r.persona_id)
                .map(|id| (id != 0).then_some(PersonaId(id))),
            pinned: mask.pick("pinned", r.pinned),
            archived: mask.pick("archived", r.archived),
            ended: mask.pick("ended", r.ended),
            // 0 takes it out of its folder.
            folder_id: mask
                .pick("folder_id", r.folder_id)
                .map(|id| (id != 0).then_some(FolderId(id))),
        };
        let row = self.chat.update_session(user, SessionId(r.id), change).await?;
        Ok(Response::new(pb::UpdateSessionResponse {
            session: Some(convert::session(&row)),
        }))
    }

    async fn delete_session(
        &self,
        request: Request<pb::DeleteSessionRequest>,
    ) -> Result<Response<pb::DeleteSessionResponse>, Status> {
        let user = self.caller(&request).await?;
        self.chat.delete_session(user, SessionId(request.get_ref().id)).await?;
        Ok(Response::new(pb::DeleteSessionResponse {}))
    }
}

fn archive_filter(request: &pb::ListSessionsRequest) -> ArchiveFilter {
    match (request.only_archived, request.include_archived) {
        (true, _) => ArchiveFilter::Archived,
        (false, true) => ArchiveFilter::All,
        (false, false) => ArchiveFilter::Active,
    }
}
