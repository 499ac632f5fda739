//! Notifications over gRPC on both backends: invitations, role changes, removals and
//! administrators' announcements notify live on the per-user stream and are listed; settings
//! and per-room mutes decide what notifies; nobody sees or marks another account's; bad input
//! changes nothing; only the newest are kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_testkit::on_every_backend;
use tonic::Code;

/// How long a test waits for an event it expects.
const EVENT_WITHIN: Duration = Duration::from_secs(10);
/// How long a test listens for an event it expects never to come.
const QUIET_FOR: Duration = Duration::from_millis(700);

async fn create_room(owner: &Person, name: &str) -> pb::Room {
    owner
        .user
        .rooms()
        .create_room(owner.user.req(pb::CreateRoomRequest {
            name: name.into(),
            topic: String::new(),
            visibility: pb::RoomVisibility::Private as i32,
        }))
        .await
        .unwrap()
        .into_inner()
        .room
        .unwrap()
}

async fn invite(by: &Person, room: i64, who: &Person) -> pb::RoomInvitation {
    by.user
        .rooms()
        .invite_user(by.user.req(pb::InviteUserRequest {
            room_id: room,
            account_id: who.account.clone(),
            username: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap()
}

async fn invite_and_accept(by: &Person, room: i64, who: &Person) {
    let invitation = invite(by, room, who).await;
    who.user
        .rooms()
        .respond_to_invitation(who.user.req(pb::RespondToInvitationRequest {
            invitation_id: invitation.id,
            accept: true,
        }))
        .await
        .unwrap();
}

async fn set_role(by: &Person, room: i64, who: &Person, role: pb::RoomRole) {
    by.user
        .rooms()
        .set_member_role(by.user.req(pb::SetMemberRoleRequest {
            room_id: room,
            account_id: who.account.clone(),
            role: role as i32,
        }))
        .await
        .unwrap();
}

async fn watch(who: &Person) -> tonic::Streaming<pb::WatchRoomEventsResponse> {
    who.user
        .rooms()
        .watch_room_events(who.user.req(pb::WatchRoomEventsRequest { after_event_id: 0 }))
        .await
        .unwrap()
        .into_inner()
}

/// The next notification on the stream (room events in between are skipped).
async fn next_notification(stream: &mut tonic::Streaming<pb::WatchRoomEventsResponse>) -> pb::Notification {
    tokio::time::timeout(EVENT_WITHIN, async {
        loop {
            let event = stream
                .message()
                .await
                .unwrap()
                .expect("the stream ended")
                .event
                .unwrap();
            if let Some(Event::Notification(notification)) = event.event {
                return notification;
            }
        }
    })
    .await
    .expect("no notification in time")
}

/// Asserts no notification arrives for a while.
async fn no_notification(stream: &mut tonic::Streaming<pb::WatchRoomEventsResponse>) {
    let waited = tokio::time::timeout(QUIET_FOR, async {
        loop {
            match stream.message().await {
                Ok(Some(pb::WatchRoomEventsResponse {
                    event:
                        Some(pb::RoomEvent {
                            event: Some(Event::Notification(n)),
                            ..
                        }),
                })) => return n,
                Ok(Some(_)) => continue,
                other => panic!("the stream ended: {other:?}"),
            }
        }
    })
    .await;
    if let Ok(notification) = waited {
        panic!("unexpected notification {notification:?}");
    }
}

async fn list(who: &Person) -> pb::ListNotificationsResponse {
    who.user
        .notifications()
        .list_notifications(who.user.req(pb::ListNotificationsRequest::default()))
        .await
        .unwrap()
        .into_inner()
}

async fn mark(who: &Person, ids: Vec<i64>, all: bool) -> Result<i64, tonic::Status> {
    who.user
        .notifications()
        .mark_notifications_read(who.user.req(pb::MarkNotificationsReadRequest {
            notification_ids: ids,
            all,
        }))
        .await
        .map(|r| r.into_inner().unread_count)
}

async fn update_settings(
    who: &Person,
    settings: pb::NotificationSettings,
    paths: &[&str],
) -> Result<pb::NotificationSettings, tonic::Status> {
    who.user
        .notifications()
        .update_notification_settings(who.user.req(pb::UpdateNotificationSettingsRequest {
            settings: Some(settings),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
        }))
        .await
        .map(|r| r.into_inner().settings.unwrap())
}

async fn announce(who: &Person, text: &str) -> Result<pb::PostAnnouncementResponse, tonic::Status> {
    who.user
        .notifications()
        .post_announcement(who.user.req(pb::PostAnnouncementRequest { text: text.into() }))
        .await
        .map(|r| r.into_inner())
}

fn kinds(notifications: &[pb::Notification]) -> Vec<pb::NotificationKind> {
    notifications.iter().map(|n| n.kind()).collect()
}

on_every_backend!(
    invitations_roles_and_removals_notify_live_and_are_listed,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = person(&stack, "alice").await;
        let bob = person(&stack, "bob").await;
        let mut bobs = watch(&bob).await;
        let room = create_room(&alice, "garden").await;

        let invitation = invite(&alice, room.id, &bob).await;
        let invited = next_notification(&mut bobs).await;
        assert_eq!(invited.kind(), pb::NotificationKind::Invitation);
        assert_eq!(invited.room_id, room.id);
        assert_eq!(invited.room_name, "garden");
        assert_eq!(invited.actor_account_id, alice.account);
        assert_eq!(invited.invitation_id, invitation.id);
        assert!(invited.id > 0 && invited.read_at.is_none());

        bob.user
            .rooms()
            .respond_to_invitation(bob.user.req(pb::RespondToInvitationRequest {
                invitation_id: invitation.id,
                accept: true,
            }))
            .await
            .unwrap();
        set_role(&alice, room.id, &bob, pb::RoomRole::Admin).await;
        let promoted = next_notification(&mut bobs).await;
        assert_eq!(promoted.kind(), pb::NotificationKind::RoleChanged);
        assert_eq!(promoted.role(), pb::RoomRole::Admin);

        alice
            .user
            .rooms()
            .ban_member(alice.user.req(pb::BanMemberRequest {
                room_id: room.id,
                account_id: bob.account.clone(),
            }))
            .await
            .unwrap();
        let banned = next_notification(&mut bobs).await;
        assert_eq!(banned.kind(), pb::NotificationKind::Removed);
        assert!(banned.banned);
        assert_eq!(banned.room_id, room.id);

        let listed = list(&bob).await;
        assert_eq!(
            kinds(&listed.notifications),
            vec![
                pb::NotificationKind::Removed,
                pb::NotificationKind::RoleChanged,
                pb::NotificationKind::Invitation
            ],
            "newest first"
        );
        assert_eq!(listed.notifications[2], invited);
        assert_eq!(listed.unread_count, 3);
        // The one acting is not notified.
        assert!(list(&alice).await.notifications.is_empty());
        stack.stop().await;
    }
);

on_every_backend!(
    nobody_sees_or_marks_another_accounts_notifications,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = person(&stack, "alice").await;
        let bob = person(&stack, "bob").await;
        let carol = person(&stack, "carol").await;
        let room = create_room(&alice, "den").await;
        invite(&alice, room.id, &bob).await;
        invite(&alice, room.id, &carol).await;
        let bobs = list(&bob).await.notifications;
        let carols = list(&carol).await.notifications;
        assert_eq!(bobs.len(), 1);
        assert_eq!(carols.len(), 1);
        assert_ne!(bobs[0].id, carols[0].id);

        // Another's id is NOT_FOUND, alone or beside one's own, and marks nothing.
        assert_code(mark(&bob, vec![carols[0].id], false).await, Code::NotFound);
        assert_code(mark(&bob, vec![bobs[0].id, carols[0].id], false).await, Code::NotFound);
        assert_code(mark(&bob, vec![i64::MAX], false).await, Code::NotFound);
        assert_eq!(list(&bob).await.unread_count, 1);
        assert_eq!(list(&carol).await.unread_count, 1);
        // Marking one's own works, twice as well.
        assert_eq!(mark(&bob, vec![bobs[0].id, bobs[0].id], false).await.unwrap(), 0);
        assert_eq!(mark(&bob, vec![bobs[0].id], false).await.unwrap(), 0);
        assert!(list(&bob).await.notifications[0].read_at.is_some());
        // Bob's "mark all" leaves Carol's alone.
        mark(&bob, vec![], true).await.unwrap();
        assert_eq!(list(&carol).await.unread_count, 1);
        stack.stop().await;
    }
);

on_every_backend!(
    settings_and_room_mutes_decide_what_notifies,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = person(&stack, "alice").await;
        let bob = person(&stack, "bob").await;
        let db = stack.database().await;
        let quiet = create_room(&alice, "quiet").await;
        let loud = create_room(&alice, "loud").await;
        invite_and_accept(&alice, quiet.id, &bob).await;
        invite_and_accept(&alice, loud.id, &bob).await;
        mark(&bob, vec![], true).await.unwrap();

        let defaults = bob
            .user
            .notifications()
            .get_notification_settings(bob.user.req(pb::GetNotificationSettingsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .settings
            .unwrap();
        assert!(defaults.mentions && defaults.invitations && defaults.role_changes);
        assert!(defaults.removals && defaults.announcements && defaults.muted_room_ids.is_empty());

        // Bad changes are refused and change nothing.
        let before = count_rows(&db, "notification_settings").await;
        let no_mask = bob
            .user
            .notifications()
            .update_notification_settings(bob.user.req(pb::UpdateNotificationSettingsRequest {
                settings: Some(pb::NotificationSettings::default()),
                update_mask: None,
            }))
            .await;
        assert_invalid(no_mask, "update_mask");
        assert_invalid(
            update_settings(&bob, pb::NotificationSettings::default(), &["mentions", "email"]).await,
            "update_mask",
        );
        let others_room = create_room(&alice, "not bob's").await;
        let not_member = update_settings(
            &bob,
            pb::NotificationSettings {
                muted_room_ids: vec![quiet.id, others_room.id],
                ..Default::default()
            },
            &["muted_room_ids", "role_changes"],
        )
        .await;
        assert_code(not_member, Code::NotFound);
        assert_invalid(
            update_settings(
                &bob,
                pb::NotificationSettings {
                    muted_room_ids: vec![-1],
                    ..Default::default()
                },
                &["muted_room_ids"],
            )
            .await,
            "settings.muted_room_ids",
        );
        assert_eq!(count_rows(&db, "notification_settings").await, before);
        assert_eq!(count_rows(&db, "notification_room_mutes").await, 0);

        // Mute one room; turn removals off.
        let settings = update_settings(
            &bob,
            pb::NotificationSettings {
                removals: false,
                muted_room_ids: vec![quiet.id],
                ..Default::default()
            },
            &["removals", "muted_room_ids"],
        )
        .await
        .unwrap();
        assert_eq!(settings.muted_room_ids, vec![quiet.id]);
        assert!(!settings.removals && settings.role_changes && settings.mentions);

        let mut bobs = watch(&bob).await;
        set_role(&alice, quiet.id, &bob, pb::RoomRole::Admin).await;
        no_notification(&mut bobs).await;
        set_role(&alice, loud.id, &bob, pb::RoomRole::Admin).await;
        let promoted = next_notification(&mut bobs).await;
        assert_eq!(promoted.room_id, loud.id, "only the unmuted room notifies");
        alice
            .user
            .rooms()
            .kick_member(alice.user.req(pb::KickMemberRequest {
                room_id: loud.id,
                account_id: bob.account.clone(),
            }))
            .await
            .unwrap();
        no_notification(&mut bobs).await;
        assert_eq!(
            kinds(&list(&bob).await.notifications)
                .iter()
                .filter(|k| **k != pb::NotificationKind::Invitation)
                .count(),
            1
        );

        // Invitations off: an invitation still arrives as an invitation, but notifies nothing.
        update_settings(
            &bob,
            pb::NotificationSettings {
                invitations: false,
                ..Default::default()
            },
            &["invitations"],
        )
        .await
        .unwrap();
        invite(&alice, others_room.id, &bob).await;
        no_notification(&mut bobs).await;
        assert_eq!(list(&bob).await.unread_count, 1);
        stack.stop().await;
    }
);

on_every_backend!(
    only_administrators_announce_and_everyone_gets_one,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        // The first account administers the instance.
        let admin = person(&stack, "admin").await;
        let bob = person(&stack, "bob").await;
        let carol = person(&stack, "carol").await;
        let db = stack.database().await;

        let refused = announce(&bob, "free pizza").await;
        assert_code(refused, Code::PermissionDenied);
        assert_invalid(announce(&admin, "  ").await, "text");
        assert_invalid(announce(&admin, &"x".repeat(2_001)).await, "text");
        assert_invalid(announce(&admin, "nul\0").await, "text");
        assert_eq!(count_rows(&db, "notifications").await, 0);

        let mut bobs = watch(&bob).await;
        let mut carols = watch(&carol).await;
        let posted = announce(&admin, "Maintenance at noon").await.unwrap();
        assert_eq!(posted.recipients, 3);
        let own = posted.notification.unwrap();
        assert_eq!(own.kind(), pb::NotificationKind::Announcement);
        for stream in [&mut bobs, &mut carols] {
            let live = next_notification(stream).await;
            assert_eq!(live.kind(), pb::NotificationKind::Announcement);
            assert_eq!(live.text, "Maintenance at noon");
            assert_eq!(live.actor_account_id, admin.account);
            assert_eq!(live.room_id, 0);
            assert_ne!(live.id, own.id, "each account has its own copy");
        }
        for who in [&admin, &bob, &carol] {
            let listed = list(who).await;
            assert_eq!(listed.notifications.len(), 1);
            assert_eq!(listed.notifications[0].text, "Maintenance at noon");
        }

        // Carol turns announcements off: the next one reaches the others only.
        update_settings(
            &carol,
            pb::NotificationSettings {
                announcements: false,
                ..Default::default()
            },
            &["announcements"],
        )
        .await
        .unwrap();
        assert_eq!(announce(&admin, "Done").await.unwrap().recipients, 2);
        assert_eq!(next_notification(&mut bobs).await.text, "Done");
        no_notification(&mut carols).await;
        assert_eq!(list(&carol).await.notifications.len(), 1);
        stack.stop().await;
    }
);

on_every_backend!(pages_mark_all_read_and_bad_input, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let admin = person(&stack, "admin").await;
    let bob = person(&stack, "bob").await;
    // Announcements reach the accounts that have used chat-service.
    assert_eq!(list(&bob).await.unread_count, 0);
    for i in 0..5 {
        announce(&admin, &format!("news {i}")).await.unwrap();
    }
    let page = |token: String| {
        let bob = &bob;
        async move {
            bob.user
                .notifications()
                .list_notifications(bob.user.req(pb::ListNotificationsRequest {
                    page_size: 2,
                    page_token: token,
                    unread_only: false,
                }))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let mut texts = Vec::new();
    let mut token = String::new();
    loop {
        let listed = page(token).await;
        assert_eq!(listed.unread_count, 5);
        texts.extend(listed.notifications.iter().map(|n| n.text.clone()));
        token = listed.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(texts, ["news 4", "news 3", "news 2", "news 1", "news 0"]);

    // Bad input: named, nothing changed.
    assert_invalid(mark(&bob, vec![], false).await, "notification_ids");
    assert_invalid(mark(&bob, vec![0], false).await, "notification_ids");
    assert_invalid(mark(&bob, (1..=101).collect(), false).await, "notification_ids");
    let bad_page = bob
        .user
        .notifications()
        .list_notifications(bob.user.req(pb::ListNotificationsRequest {
            page_size: 101,
            ..Default::default()
        }))
        .await;
    assert_invalid(bad_page, "page_size");
    let bad_token = bob
        .user
        .notifications()
        .list_notifications(bob.user.req(pb::ListNotificationsRequest {
            page_token: "nonsense".into(),
            ..Default::default()
        }))
        .await;
    assert_invalid(bad_token, "page_token");
    assert_eq!(list(&bob).await.unread_count, 5);

    let newest = list(&bob).await.notifications[0].id;
    assert_eq!(mark(&bob, vec![newest], false).await.unwrap(), 4);
    let unread = bob
        .user
        .notifications()
        .list_notifications(bob.user.req(pb::ListNotificationsRequest {
            unread_only: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unread.notifications.len(), 4);
    assert!(unread.notifications.iter().all(|n| n.id != newest));
    assert_eq!(mark(&bob, vec![], true).await.unwrap(), 0);
    assert!(list(&bob).await.notifications.iter().all(|n| n.read_at.is_some()));
    // The administrator's own were not touched.
    assert_eq!(list(&admin).await.unread_count, 5);
    stack.stop().await;
});

on_every_backend!(only_the_newest_notifications_are_kept, |db_url: String| async move {
    let stack = Stack::start_with(&db_url, |config| config.notifications_kept = 3).await;
    let admin = person(&stack, "admin").await;
    let bob = person(&stack, "bob").await;
    let room = create_room(&admin, "churn").await;
    assert_eq!(list(&bob).await.unread_count, 0);
    for i in 0..4 {
        announce(&admin, &format!("news {i}")).await.unwrap();
    }
    // A single notification prunes too.
    invite(&admin, room.id, &bob).await;
    let listed = list(&bob).await;
    assert_eq!(
        kinds(&listed.notifications),
        vec![
            pb::NotificationKind::Invitation,
            pb::NotificationKind::Announcement,
            pb::NotificationKind::Announcement
        ]
    );
    assert_eq!(listed.notifications[1].text, "news 3");
    assert_eq!(listed.unread_count, 3);
    let texts: Vec<_> = list(&admin).await.notifications.into_iter().map(|n| n.text).collect();
    assert_eq!(texts, ["news 3", "news 2", "news 1"]);
    stack.stop().await;
});

async fn post(who: &Person, room: i64, content: &str) -> pb::RoomMessage {
    who.user
        .rooms()
        .post_room_message(who.user.req(pb::PostRoomMessageRequest {
            room_id: room,
            content: content.into(),
            reply_to_id: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap()
}

on_every_backend!(
    mentions_notify_the_members_named_and_only_them,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = person(&stack, "alice").await;
        let bob = person(&stack, "bob").await;
        let carol = person(&stack, "carol").await;
        let dave = person(&stack, "dave").await;
        let erin = person(&stack, "erin").await;
        let room = create_room(&alice, "plaza").await;
        for who in [&bob, &dave, &erin] {
            invite_and_accept(&alice, room.id, who).await;
        }
        // Carol is in another room only; Dave muted this one; Erin turned mentions off.
        create_room(&carol, "elsewhere").await;
        update_settings(
            &dave,
            pb::NotificationSettings {
                muted_room_ids: vec![room.id],
                ..Default::default()
            },
            &["muted_room_ids"],
        )
        .await
        .unwrap();
        update_settings(
            &erin,
            pb::NotificationSettings {
                mentions: false,
                ..Default::default()
            },
            &["mentions"],
        )
        .await
        .unwrap();
        for who in [&bob, &dave, &erin] {
            mark(who, vec![], true).await.unwrap();
        }
        let mut bobs = watch(&bob).await;
        let mut carols = watch(&carol).await;
        let mut alices = watch(&alice).await;
        let mut daves = watch(&dave).await;
        let mut erins = watch(&erin).await;

        let text = "Hi @BOB, @carol @alice @dave @erin @nobody and mail@bob.example";
        let message = post(&alice, room.id, text).await;
        let mention = next_notification(&mut bobs).await;
        assert_eq!(mention.kind(), pb::NotificationKind::Mention);
        assert_eq!(mention.room_id, room.id);
        assert_eq!(mention.room_name, "plaza");
        assert_eq!(mention.message_id, message.id);
        assert_eq!(mention.actor_account_id, alice.account);
        assert_eq!(mention.text, text);
        // Not a member, the author, a muted room, mentions turned off: nobody else is notified.
        for stream in [&mut carols, &mut alices, &mut daves, &mut erins] {
            no_notification(stream).await;
        }
        for who in [&carol, &alice, &dave, &erin] {
            assert_eq!(list(who).await.unread_count, 0);
        }
        assert_eq!(list(&bob).await.notifications[0], mention);

        // Bob says "thanks @alice." from the room: she is notified (the dot ends the sentence).
        post(&bob, room.id, "thanks @alice.").await;
        let back = next_notification(&mut alices).await;
        assert_eq!(back.kind(), pb::NotificationKind::Mention);
        assert_eq!(back.actor_account_id, bob.account);
        // Kicked, Bob is not notified of mentions in the room any more.
        alice
            .user
            .rooms()
            .kick_member(alice.user.req(pb::KickMemberRequest {
                room_id: room.id,
                account_id: bob.account.clone(),
            }))
            .await
            .unwrap();
        assert_eq!(next_notification(&mut bobs).await.kind(), pb::NotificationKind::Removed);
        post(&alice, room.id, "@bob are you there?").await;
        no_notification(&mut bobs).await;
        stack.stop().await;
    }
);

on_every_backend!(invitations_name_people_by_username, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let carol = person(&stack, "carol").await;
    let db = stack.database().await;
    let room = create_room(&alice, "by name").await;
    let invite_named = |who: &Person, account_id: &str, username: &str| {
        let request = who.user.req(pb::InviteUserRequest {
            room_id: room.id,
            account_id: account_id.into(),
            username: username.into(),
        });
        let mut client = who.user.rooms();
        async move {
            client
                .invite_user(request)
                .await
                .map(|r| r.into_inner().invitation.unwrap())
        }
    };

    // Bad input and unknown names change nothing.
    assert_invalid(invite_named(&alice, "", "").await, "account_id");
    assert_invalid(invite_named(&alice, &bob.account, "bob").await, "username");
    assert_code(invite_named(&alice, "", "nobody_here").await, Code::NotFound);
    // A non-member learns nothing, named either way.
    assert_code(invite_named(&carol, "", "bob").await, Code::NotFound);
    assert_eq!(count_rows(&db, "room_invites").await, 0);

    let mut bobs = watch(&bob).await;
    let invitation = invite_named(&alice, "", "@Bob").await.unwrap();
    assert_eq!(invitation.invitee_account_id, bob.account);
    let notified = next_notification(&mut bobs).await;
    assert_eq!(notified.kind(), pb::NotificationKind::Invitation);
    assert_eq!(notified.invitation_id, invitation.id);
    stack.stop().await;
});
