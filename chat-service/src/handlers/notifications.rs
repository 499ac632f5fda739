//! `parley.chat.v1.NotificationService`, served by the rooms' wing (notifications travel on
//! the rooms' per-user stream).

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::notification_service_server::NotificationService;
use parley_service_kit::access_token::AuthenticatedUser;
use tonic::{Request, Response, Status};

use super::{RoomApi, UpdateMask};
use crate::Error;
use crate::service::{ChatService, NotificationSettingsChange};

const SETTINGS_PATHS: [&str; 6] = [
    "mentions",
    "invitations",
    "role_changes",
    "removals",
    "announcements",
    "muted_room_ids",
];

#[tonic::async_trait]
impl NotificationService for RoomApi {
    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let (notifications, next_page_token, unread_count) = self
            .rooms
            .list_notifications(me, r.page_size, &r.page_token, r.unread_only)
            .await?;
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications,
            next_page_token,
            unread_count,
        }))
    }

    async fn mark_notifications_read(
        &self,
        request: Request<pb::MarkNotificationsReadRequest>,
    ) -> Result<Response<pb::MarkNotificationsReadResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        let unread_count = self
            .rooms
            .mark_notifications_read(me, &r.notification_ids, r.all)
            .await?;
        Ok(Response::new(pb::MarkNotificationsReadResponse { unread_count }))
    }

    async fn get_notification_settings(
        &self,
        request: Request<pb::GetNotificationSettingsRequest>,
    ) -> Result<Response<pb::GetNotificationSettingsResponse>, Status> {
        let me = self.caller(&request).await?;
        let settings = self.rooms.notification_settings(me).await?;
        Ok(Response::new(pb::GetNotificationSettingsResponse {
            settings: Some(settings),
        }))
    }

    async fn update_notification_settings(
        &self,
        request: Request<pb::UpdateNotificationSettingsRequest>,
    ) -> Result<Response<pb::UpdateNotificationSettingsResponse>, Status> {
        let me = self.caller(&request).await?;
        let r = request.into_inner();
        // Booleans cannot say "unset": the mask names what changes.
        if r.update_mask.as_ref().is_none_or(|m| m.paths.is_empty()) {
            return Err(Error::invalid(
                "update_mask",
                format!("name the settings to change: {}", SETTINGS_PATHS.join(", ")),
            )
            .into());
        }
        let mask = UpdateMask::new(r.update_mask, &SETTINGS_PATHS)?;
        let s = r.settings.unwrap_or_default();
        let change = NotificationSettingsChange {
            mentions: mask.pick("mentions", Some(s.mentions)),
            invitations: mask.pick("invitations", Some(s.invitations)),
            role_changes: mask.pick("role_changes", Some(s.role_changes)),
            removals: mask.pick("removals", Some(s.removals)),
            announcements: mask.pick("announcements", Some(s.announcements)),
            muted_room_ids: mask.pick("muted_room_ids", Some(s.muted_room_ids)),
        };
        let settings = self.rooms.update_notification_settings(me, change).await?;
        Ok(Response::new(pb::UpdateNotificationSettingsResponse {
            settings: Some(settings),
        }))
    }

    async fn post_announcement(
        &self,
        request: Request<pb::PostAnnouncementRequest>,
    ) -> Result<Response<pb::PostAnnouncementResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let admin = ChatService::administrator(&caller, "post announcements")?;
        let me = self.caller(&request).await?;
        let (notification, recipients) = self
            .rooms
            .post_announcement(&admin, me, &caller.account_id, &request.get_ref().text)
            .await?;
        Ok(Response::new(pb::PostAnnouncementResponse {
            notification,
            recipients,
        }))
    }
}
