//! `parley.chat.v1.MessageService`: messages as stored, and the turns that write them.

use futures::StreamExt;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::message_service_server::MessageService;
use parley_service_kit::trace_context::TraceHeaders;
use tonic::{Request, Response, Status};

use super::ChatApi;
use super::{EventStream, events};
use crate::convert;
use crate::ids::{ApiConfigId, MessageId, SessionId};
use crate::service::MessagePage;

#[tonic::async_trait]
impl MessageService for ChatApi {
    type SendMessageStream = EventStream<pb::SendMessageResponse>;
    type WatchGenerationStream = EventStream<pb::WatchGenerationResponse>;
    type RegenerateMessageStream = EventStream<pb::RegenerateMessageResponse>;

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<Self::SendMessageStream>, Status> {
        let user = self.caller(&request).await?;
        let trace = TraceHeaders::from_metadata(request.metadata());
        let r = request.into_inner();
        let (question, generation) = self
            .chat
            .send_message(
                user,
                SessionId(r.session_id),
                &r.content,
                r.api_config_id.map(ApiConfigId),
                r.version_of_id.map(MessageId),
                trace,
            )
            .await?;
        let first = futures::stream::iter([pb::chat_event::Event::UserMessage(convert::message(&question))]);
        let stream = first.chain(generation.follow()).boxed();
        Ok(Response::new(events(stream, |event| pb::SendMessageResponse {
            event: Some(event),
        })))
    }

    async fn watch_generation(
        &self,
        request: Request<pb::WatchGenerationRequest>,
    ) -> Result<Response<Self::WatchGenerationStream>, Status> {
        let user = self.caller(&request).await?;
        let stream = self.chat.watch(user, MessageId(request.get_ref().message_id)).await?;
        Ok(Response::new(events(stream, |event| pb::WatchGenerationResponse {
            event: Some(event),
        })))
    }

    async fn stop_generation(
        &self,
        request: Request<pb::StopGenerationRequest>,
    ) -> Result<Response<pb::StopGenerationResponse>, Status> {
        let user = self.caller(&request).await?;
        let row = self.chat.stop(user, MessageId(request.get_ref().message_id)).await?;
        Ok(Response::new(pb::StopGenerationResponse {
            message: Some(convert::message(&row)),
        }))
    }

    async fn regenerate_message(
        &self,
        request: Request<pb::RegenerateMessageRequest>,
    ) -> Result<Response<Self::RegenerateMessageStream>, Status> {
        let user = self.caller(&request).await?;
        let trace = TraceHeaders::from_metadata(request.metadata());
        let r = request.into_inner();
        let generation = self
            .chat
            .regenerate(user, MessageId(r.message_id), r.api_config_id.map(ApiConfigId), trace)
            .await?;
        Ok(Response::new(events(generation.follow(), |event| {
            pb::RegenerateMessageResponse { event: Some(event) }
        })))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let page = self
            .chat
            .list_messages(
                user,
                SessionId(r.session_id),
                r.page_size,
                &r.page_token,
                r.all_branches,
            )
            .await?;
        let (messages, next_page_token, current_message_id) = page_parts(page);
        Ok(Response::new(pb::ListMessagesResponse {
            messages,
            next_page_token,
            current_message_id,
        }))
    }

    async fn switch_branch(
        &self,
        request: Request<pb::SwitchBranchRequest>,
    ) -> Result<Response<pb::SwitchBranchResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let page = self
            .chat
            .switch_branch(user, MessageId(r.message_id), r.page_size)
            .await?;
        let (messages, next_page_token, current_message_id) = page_parts(page);
        Ok(Response::new(pb::SwitchBranchResponse {
            messages,
            next_page_token,
            current_message_id,
        }))
    }

    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::GetMessageResponse>, Status> {
        let user = self.caller(&request).await?;
        let row = self.chat.message(user, MessageId(request.get_ref().id)).await?;
        Ok(Response::new(pb::GetMessageResponse {
            message: Some(convert::message(&row)),
        }))
    }

    async fn update_message(
        &self,
        request: Request<pb::UpdateMessageRequest>,
    ) -> Result<Response<pb::UpdateMessageResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let row = self.chat.update_message(user, MessageId(r.id), &r.content).await?;
        Ok(Response::new(pb::UpdateMessageResponse {
            message: Some(convert::message(&row)),
        }))
    }

    async fn delete_message(
        &self,
        request: Request<pb::DeleteMessageRequest>,
    ) -> Result<Response<pb::DeleteMessageResponse>, Status> {
        let user = self.caller(&request).await?;
        self.chat.delete_message(user, MessageId(request.get_ref().id)).await?;
        Ok(Response::new(pb::DeleteMessageResponse {}))
    }
}

/// A page of messages as both ListMessages and SwitchBranch answer it.
fn page_parts(page: MessagePage) -> (Vec<pb::Message>, String, i64) {
    (
        page.messages
            .iter()
            .map(|m| convert::message_with_versions(&m.row, &m.siblings))
            .collect(),
        page.next_page_token,
        page.current_message_id.map_or(0, |id| id.0),
    )
}
