//! `parley.chat.v1.RoomService`.

use std::sync::Arc;

use futures::StreamExt;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_service_server::RoomService;
use parley_proto::timestamp::from_unix_millis;
use parley_service_kit::access_token::AuthenticatedUser;
use tonic::{Request, Response, Status};

use super::{EventStream, UpdateMask};
use crate::ids::{ApiConfigId, MessageId, OwnerId, PersonaId, RoomEventId, RoomId, RoomInviteId};
use crate::service::{ChatService, RoomChange, Rooms};
use crate::user_directory::CallerToken;

/// The room service: callers are found through the chat service's accounts.
#[derive(Clone)]
pub struct RoomApi {
    chat: Arc<ChatService>,
    pub(super) rooms: Arc<Rooms>,
}

impl RoomApi {
    pub fn new(chat: Arc<ChatService>, rooms: Arc<Rooms>) -> Self {
        Self { chat, rooms }
    }

    pub(super) async fn caller<T>(&self, request: &Request<T>) -> Result<OwnerId, Status> {
        Ok(self.chat.owner(&AuthenticatedUser::from_request(request)?).await?)
    }
}

#[tonic::async_trait]
impl RoomService for RoomApi {
    async fn create_room(
        &self,
        request: Request<pb::CreateRoomRequest>,
    ) -> Result<Response<pb::CreateRoomResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let room = self.rooms.create_room(me, &r.name, &r.topic, r.visibility).await?;
        Ok(Response::new(pb::CreateRoomResponse { room: Some(room) }))
    }

    async fn get_room(&self, request: Request<pb::GetRoomRequest>) -> Result<Response<pb::GetRoomResponse>, Status> {
        let me = self.caller(&request).await?;
        let room = self.rooms.get_room(me, RoomId(request.get_ref().room_id)).await?;
        Ok(Response::new(pb::GetRoomResponse { room: Some(room) }))
    }

    async fn update_room(
        &self,
        request: Request<pb::UpdateRoomRequest>,
    ) -> Result<Response<pb::UpdateRoomResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let mask = UpdateMask::new(r.update_mask, &["name", "topic", "visibility", "retention_days"])?;
        let visibility = (r.visibility != pb::RoomVisibility::Unspecified as i32).then_some(r.visibility);
        let change = RoomChange {
            name: mask.pick("name", r.name),
            topic: mask.pick("topic", r.topic),
            visibility: mask.pick("visibility", visibility),
            retention_days: mask.pick("retention_days", r.retention_days),
        };
        let room = self.rooms.update_room(me, RoomId(r.room_id), change).await?;
        Ok(Response::new(pb::UpdateRoomResponse { room: Some(room) }))
    }

    async fn delete_room(
        &self,
        request: Request<pb::DeleteRoomRequest>,
    ) -> Result<Response<pb::DeleteRoomResponse>, Status> {
        let me = self.caller(&request).await?;
        self.rooms.delete_room(me, RoomId(request.get_ref().room_id)).await?;
        Ok(Response::new(pb::DeleteRoomResponse {}))
    }

    async fn list_my_rooms(
        &self,
        request: Request<pb::ListMyRoomsRequest>,
    ) -> Result<Response<pb::ListMyRoomsResponse>, Status> {
        let me = self.caller(&request).await?;
        let rooms = self.rooms.my_rooms(me).await?;
        Ok(Response::new(pb::ListMyRoomsResponse { rooms }))
    }

    async fn search_public_rooms(
        &self,
        request: Request<pb::SearchPublicRoomsRequest>,
    ) -> Result<Response<pb::SearchPublicRoomsResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let (rooms, next_page_token) = self
            .rooms
            .search_public_rooms(me, &r.query, r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::SearchPublicRoomsResponse { rooms, next_page_token }))
    }

    async fn join_room(&self, request: Request<pb::JoinRoomRequest>) -> Result<Response<pb::JoinRoomResponse>, Status> {
        let me = self.caller(&request).await?;
        let room = self
            .rooms
            .join_public_room(me, RoomId(request.get_ref().room_id))
            .await?;
        Ok(Response::new(pb::JoinRoomResponse { room: Some(room) }))
    }

    async fn leave_room(
        &self,
        request: Request<pb::LeaveRoomRequest>,
    ) -> Result<Response<pb::LeaveRoomResponse>, Status> {
        let me = self.caller(&request).await?;
        self.rooms.leave_room(me, RoomId(request.get_ref().room_id)).await?;
        Ok(Response::new(pb::LeaveRoomResponse {}))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let me = self.caller(&request).await?;
        let members = self.rooms.members(me, RoomId(request.get_ref().room_id)).await?;
        Ok(Response::new(pb::ListMembersResponse { members }))
    }

    async fn set_member_role(
        &self,
        request: Request<pb::SetMemberRoleRequest>,
    ) -> Result<Response<pb::SetMemberRoleResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let member = self
            .rooms
            .set_member_role(me, RoomId(r.room_id), &r.account_id, r.role)
            .await?;
        Ok(Response::new(pb::SetMemberRoleResponse { member: Some(member) }))
    }

    async fn transfer_ownership(
        &self,
        request: Request<pb::TransferOwnershipRequest>,
    ) -> Result<Response<pb::TransferOwnershipResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let room = self
            .rooms
            .transfer_ownership(me, RoomId(r.room_id), &r.account_id)
            .await?;
        Ok(Response::new(pb::TransferOwnershipResponse { room: Some(room) }))
    }

    async fn invite_user(
        &self,
        request: Request<pb::InviteUserRequest>,
    ) -> Result<Response<pb::InviteUserResponse>, Status> {
        let me = self.caller(&request).await?;
        let token = CallerToken::from_request(&request);
        let r = request.into_inner();
        let invitation = self
            .rooms
            .invite(me, RoomId(r.room_id), &r.account_id, &r.username, token)
            .await?;
        Ok(Response::new(pb::InviteUserResponse {
            invitation: Some(invitation),
        }))
    }

    async fn list_my_invitations(
        &self,
        request: Request<pb::ListMyInvitationsRequest>,
    ) -> Result<Response<pb::ListMyInvitationsResponse>, Status> {
        let me = self.caller(&request).await?;
        let invitations = self.rooms.my_invitations(me).await?;
        Ok(Response::new(pb::ListMyInvitationsResponse { invitations }))
    }

    async fn respond_to_invitation(
        &self,
        request: Request<pb::RespondToInvitationRequest>,
    ) -> Result<Response<pb::RespondToInvitationResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let room = self
            .rooms
            .respond_to_invitation(me, RoomInviteId(r.invitation_id), r.accept)
            .await?;
        Ok(Response::new(pb::RespondToInvitationResponse { room }))
    }

    async fn create_invite_code(
        &self,
        request: Request<pb::CreateInviteCodeRequest>,
    ) -> Result<Response<pb::CreateInviteCodeResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let code = self
            .rooms
            .create_invite_code(me, RoomId(r.room_id), r.expires_in_seconds, r.max_uses)
            .await?;
        Ok(Response::new(pb::CreateInviteCodeResponse {
            code: code.code,
            expires_at: Some(from_unix_millis(code.expires_at)),
            max_uses: code.max_uses.unwrap_or_default() as i32,
        }))
    }

    async fn join_by_invite_code(
        &self,
        request: Request<pb::JoinByInviteCodeRequest>,
    ) -> Result<Response<pb::JoinByInviteCodeResponse>, Status> {
        let me = self.caller(&request).await?;
        let room = self.rooms.join_by_code(me, &request.get_ref().code).await?;
        Ok(Response::new(pb::JoinByInviteCodeResponse { room: Some(room) }))
    }

    async fn kick_member(
        &self,
        request: Request<pb::KickMemberRequest>,
    ) -> Result<Response<pb::KickMemberResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        self.rooms.kick(me, RoomId(r.room_id), &r.account_id).await?;
        Ok(Response::new(pb::KickMemberResponse {}))
    }

    async fn ban_member(
        &self,
        request: Request<pb::BanMemberRequest>,
    ) -> Result<Response<pb::BanMemberResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        self.rooms.ban(me, RoomId(r.room_id), &r.account_id).await?;
        Ok(Response::new(pb::BanMemberResponse {}))
    }

    async fn unban_member(
        &self,
        request: Request<pb::UnbanMemberRequest>,
    ) -> Result<Response<pb::UnbanMemberResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        self.rooms.unban(me, RoomId(r.room_id), &r.account_id).await?;
        Ok(Response::new(pb::UnbanMemberResponse {}))
    }

    async fn mute_member(
        &self,
        request: Request<pb::MuteMemberRequest>,
    ) -> Result<Response<pb::MuteMemberResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let member = self
            .rooms
            .mute(me, RoomId(r.room_id), &r.account_id, r.duration_seconds)
            .await?;
        Ok(Response::new(pb::MuteMemberResponse { member: Some(member) }))
    }

    async fn unmute_member(
        &self,
        request: Request<pb::UnmuteMemberRequest>,
    ) -> Result<Response<pb::UnmuteMemberResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let member = self.rooms.unmute(me, RoomId(r.room_id), &r.account_id).await?;
        Ok(Response::new(pb::UnmuteMemberResponse { member: Some(member) }))
    }

    async fn post_room_message(
        &self,
        request: Request<pb::PostRoomMessageRequest>,
    ) -> Result<Response<pb::PostRoomMessageResponse>, Status> {
        let me = self.caller(&request).await?;
        let token = CallerToken::from_request(&request);
        let r = request.into_inner();
        let message = self
            .rooms
            .post_message(me, RoomId(r.room_id), &r.content, r.reply_to_id.map(MessageId), token)
            .await?;
        Ok(Response::new(pb::PostRoomMessageResponse { message: Some(message) }))
    }

    async fn edit_room_message(
        &self,
        request: Request<pb::EditRoomMessageRequest>,
    ) -> Result<Response<pb::EditRoomMessageResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let message = self
            .rooms
            .edit_message(me, RoomId(r.room_id), MessageId(r.message_id), &r.content)
            .await?;
        Ok(Response::new(pb::EditRoomMessageResponse { message: Some(message) }))
    }

    async fn delete_room_message(
        &self,
        request: Request<pb::DeleteRoomMessageRequest>,
    ) -> Result<Response<pb::DeleteRoomMessageResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        self.rooms
            .delete_message(me, RoomId(r.room_id), MessageId(r.message_id))
            .await?;
        Ok(Response::new(pb::DeleteRoomMessageResponse {}))
    }

    async fn list_room_messages(
        &self,
        request: Request<pb::ListRoomMessagesRequest>,
    ) -> Result<Response<pb::ListRoomMessagesResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let (messages, next_page_token) = self
            .rooms
            .list_messages(me, RoomId(r.room_id), r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListRoomMessagesResponse {
            messages,
            next_page_token,
        }))
    }

    async fn set_room_ai(
        &self,
        request: Request<pb::SetRoomAiRequest>,
    ) -> Result<Response<pb::SetRoomAiResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let room = self
            .rooms
            .set_room_ai(
                me,
                RoomId(r.room_id),
                r.api_config_id.map(ApiConfigId),
                r.persona_id.map(PersonaId),
            )
            .await?;
        Ok(Response::new(pb::SetRoomAiResponse { room: Some(room) }))
    }

    async fn stop_room_answer(
        &self,
        request: Request<pb::StopRoomAnswerRequest>,
    ) -> Result<Response<pb::StopRoomAnswerResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let message = self
            .rooms
            .stop_answer(me, RoomId(r.room_id), MessageId(r.message_id))
            .await?;
        Ok(Response::new(pb::StopRoomAnswerResponse { message: Some(message) }))
    }

    async fn list_message_readers(
        &self,
        request: Request<pb::ListMessageReadersRequest>,
    ) -> Result<Response<pb::ListMessageReadersResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let account_ids = self
            .rooms
            .message_readers(me, RoomId(r.room_id), MessageId(r.message_id))
            .await?;
        Ok(Response::new(pb::ListMessageReadersResponse { account_ids }))
    }

    async fn mark_room_read(
        &self,
        request: Request<pb::MarkRoomReadRequest>,
    ) -> Result<Response<pb::MarkRoomReadResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let room = self
            .rooms
            .mark_read(me, RoomId(r.room_id), MessageId(r.message_id))
            .await?;
        Ok(Response::new(pb::MarkRoomReadResponse { room: Some(room) }))
    }

    async fn set_typing(
        &self,
        request: Request<pb::SetTypingRequest>,
    ) -> Result<Response<pb::SetTypingResponse>, Status> {
        let me = self.caller(&request).await?;
        let room = RoomId(request.get_ref().room_id);
        Ok(Response::new(self.rooms.set_typing(me, room).await?))
    }

    type WatchRoomEventsStream = EventStream<pb::WatchRoomEventsResponse>;

    async fn watch_room_events(
        &self,
        request: Request<pb::WatchRoomEventsRequest>,
    ) -> Result<Response<Self::WatchRoomEventsStream>, Status> {
        let me = self.caller(&request).await?;
        let after = request.get_ref().after_event_id;
        let after = (after != 0).then_some(RoomEventId(after));
        let events = self.rooms.watch(me, after).await?;
        Ok(Response::new(
            events
                .map(|event| event.map(|event| pb::WatchRoomEventsResponse { event: Some(event) }))
                .boxed(),
        ))
    }
}
