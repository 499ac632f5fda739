//! Rooms over gRPC on both backends: roles and what each may do, invitations and invite codes
//! (expiry, use limit), kicks and bans cutting an open event stream, mutes, limits, resuming
//! the event stream, and that rooms stay invisible to non-members and to the private-chat API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::rooms::next_event;
use common::rooms::*;
use common::*;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_testkit::on_every_backend;
use tonic::Code;

on_every_backend!(roles_decide_what_members_may_do, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let carol = person(&stack, "carol").await;
    let room = create_room(&alice, "team", pb::RoomVisibility::Private).await;
    assert_eq!(room.my_role, pb::RoomRole::Owner as i32);
    assert_eq!(room.owner_account_id, alice.account);
    invite_and_accept(&alice, room.id, &bob).await;
    invite_and_accept(&alice, room.id, &carol).await;
    assert_eq!(room_of(&bob, room.id).await.unwrap().member_count, 3);

    // A member: may post and edit their own message, nothing an admin does.
    let carols = post(&carol, room.id, "hello from carol").await.unwrap();
    let b = bob.user.rooms();
    let denied = [
        b.clone()
            .update_room(bob.user.req(pb::UpdateRoomRequest {
                room_id: room.id,
                name: Some("mine now".into()),
                ..Default::default()
            }))
            .await
            .map(|_| ()),
        b.clone()
            .invite_user(bob.user.req(pb::InviteUserRequest {
                room_id: room.id,
                account_id: alice.account.clone(),
                username: String::new(),
            }))
            .await
            .map(|_| ()),
        b.clone()
            .kick_member(bob.user.req(pb::KickMemberRequest {
                room_id: room.id,
                account_id: carol.account.clone(),
            }))
            .await
            .map(|_| ()),
        b.clone()
            .mute_member(bob.user.req(pb::MuteMemberRequest {
                room_id: room.id,
                account_id: carol.account.clone(),
                duration_seconds: 60,
            }))
            .await
            .map(|_| ()),
        b.clone()
            .create_invite_code(bob.user.req(pb::CreateInviteCodeRequest {
                room_id: room.id,
                ..Default::default()
            }))
            .await
            .map(|_| ()),
        b.clone()
            .delete_room_message(bob.user.req(pb::DeleteRoomMessageRequest {
                room_id: room.id,
                message_id: carols.id,
            }))
            .await
            .map(|_| ()),
        b.clone()
            .edit_room_message(bob.user.req(pb::EditRoomMessageRequest {
                room_id: room.id,
                message_id: carols.id,
                content: "not yours".into(),
            }))
            .await
            .map(|_| ()),
        b.clone()
            .delete_room(bob.user.req(pb::DeleteRoomRequest { room_id: room.id }))
            .await
            .map(|_| ()),
    ];
    for (i, result) in denied.into_iter().enumerate() {
        let status = result.expect_err("a member was allowed an admin's action");
        assert_eq!(status.code(), Code::PermissionDenied, "action {i}: {status:?}");
    }
    let edited = carol
        .user
        .rooms()
        .edit_room_message(carol.user.req(pb::EditRoomMessageRequest {
            room_id: room.id,
            message_id: carols.id,
            content: "hello, edited".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(edited.content, "hello, edited");
    assert!(edited.edited_at.is_some());

    // The owner makes bob an admin: he may now moderate members and delete their messages,
    // but not touch the owner or set roles.
    let promoted = alice
        .user
        .rooms()
        .set_member_role(alice.user.req(pb::SetMemberRoleRequest {
            room_id: room.id,
            account_id: bob.account.clone(),
            role: pb::RoomRole::Admin as i32,
        }))
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(promoted.role, pb::RoomRole::Admin as i32);
    b.clone()
        .delete_room_message(bob.user.req(pb::DeleteRoomMessageRequest {
            room_id: room.id,
            message_id: carols.id,
        }))
        .await
        .unwrap();
    let listed = messages_of(&carol, room.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].deleted_at.is_some());
    assert_eq!(listed[0].content, "");
    assert_code(
        b.clone()
            .kick_member(bob.user.req(pb::KickMemberRequest {
                room_id: room.id,
                account_id: alice.account.clone(),
            }))
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        b.clone()
            .set_member_role(bob.user.req(pb::SetMemberRoleRequest {
                room_id: room.id,
                account_id: carol.account.clone(),
                role: pb::RoomRole::Admin as i32,
            }))
            .await,
        Code::PermissionDenied,
    );
    assert_invalid(
        alice
            .user
            .rooms()
            .set_member_role(alice.user.req(pb::SetMemberRoleRequest {
                room_id: room.id,
                account_id: carol.account.clone(),
                role: pb::RoomRole::Owner as i32,
            }))
            .await,
        "role",
    );
    b.clone()
        .update_room(bob.user.req(pb::UpdateRoomRequest {
            room_id: room.id,
            topic: Some("renamed by an admin".into()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["topic".into()],
            }),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(room_of(&carol, room.id).await.unwrap().topic, "renamed by an admin");

    // The owner cannot leave; ownership passes to bob, alice becomes an admin.
    assert_code(
        alice
            .user
            .rooms()
            .leave_room(alice.user.req(pb::LeaveRoomRequest { room_id: room.id }))
            .await,
        Code::FailedPrecondition,
    );
    let transferred = alice
        .user
        .rooms()
        .transfer_ownership(alice.user.req(pb::TransferOwnershipRequest {
            room_id: room.id,
            account_id: bob.account.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .room
        .unwrap();
    assert_eq!(transferred.owner_account_id, bob.account);
    assert_eq!(
        room_of(&alice, room.id).await.unwrap().my_role,
        pb::RoomRole::Admin as i32
    );
    assert_code(
        alice
            .user
            .rooms()
            .delete_room(alice.user.req(pb::DeleteRoomRequest { room_id: room.id }))
            .await,
        Code::PermissionDenied,
    );

    // Carol leaves, and sees nothing of it any more.
    carol
        .user
        .rooms()
        .leave_room(carol.user.req(pb::LeaveRoomRequest { room_id: room.id }))
        .await
        .unwrap();
    assert_code(room_of(&carol, room.id).await, Code::NotFound);

    // The new owner deletes it: gone for everyone.
    b.clone()
        .delete_room(bob.user.req(pb::DeleteRoomRequest { room_id: room.id }))
        .await
        .unwrap();
    assert_code(room_of(&alice, room.id).await, Code::NotFound);
    assert_code(room_of(&bob, room.id).await, Code::NotFound);
    stack.stop().await;
});

on_every_backend!(non_members_see_nothing_of_a_room, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = person(&stack, "alice").await;
    let mallory = person(&stack, "mallory").await;
    let room = create_room(&alice, "private", pb::RoomVisibility::Private).await;
    let message = post(&alice, room.id, "for members only").await.unwrap();
    let m = mallory.user.rooms();
    assert_code(room_of(&mallory, room.id).await, Code::NotFound);
    assert_code(messages_of(&mallory, room.id).await, Code::NotFound);
    assert_code(post(&mallory, room.id, "let me in").await, Code::NotFound);
    assert_code(
        m.clone()
            .list_members(mallory.user.req(pb::ListMembersRequest { room_id: room.id }))
            .await,
        Code::NotFound,
    );
    assert_code(
        m.clone()
            .join_room(mallory.user.req(pb::JoinRoomRequest { room_id: room.id }))
            .await,
        Code::NotFound,
    );
    assert_code(
        m.clone()
            .delete_room_message(mallory.user.req(pb::DeleteRoomMessageRequest {
                room_id: room.id,
                message_id: message.id,
            }))
            .await,
        Code::NotFound,
    );
    // Not found by search while private either, nor through the private-chat API.
    let found = m
        .clone()
        .search_public_rooms(mallory.user.req(pb::SearchPublicRoomsRequest {
            query: "private".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .rooms;
    assert!(found.is_empty(), "{found:?}");
    assert_code(
        alice
            .user
            .messages()
            .get_message(alice.user.req(pb::GetMessageRequest { id: message.id }))
            .await,
        Code::NotFound,
    );
    let sessions = alice
        .user
        .sessions()
        .list_sessions(alice.user.req(pb::ListSessionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert!(sessions.is_empty(), "a room showed up as a chat: {sessions:?}");

    // Mallory's own stream carries nothing of the room.
    let mut mallorys = watch(&mallory, 0).await;
    post(&alice, room.id, "still private").await.unwrap();
    let mine = create_room(&mallory, "mallory's", pb::RoomVisibility::Public).await;
    post(&mallory, mine.id, "my own").await.unwrap();
    let event = next_message_event(&mut mallorys).await;
    assert_eq!(posted_text(&event), "my own");
    stack.stop().await;
});

on_every_backend!(public_rooms_are_found_and_joined, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let public = create_room(&alice, "Rust lovers", pb::RoomVisibility::Public).await;
    create_room(&alice, "Rust secrets", pb::RoomVisibility::Private).await;
    let found = bob
        .user
        .rooms()
        .search_public_rooms(bob.user.req(pb::SearchPublicRoomsRequest {
            query: "rust".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .rooms;
    assert_eq!(found.iter().map(|r| r.id).collect::<Vec<_>>(), [public.id]);
    assert_eq!(found[0].my_role, pb::RoomRole::Unspecified as i32);
    let joined = bob
        .user
        .rooms()
        .join_room(bob.user.req(pb::JoinRoomRequest { room_id: public.id }))
        .await
        .unwrap()
        .into_inner()
        .room
        .unwrap();
    assert_eq!(joined.my_role, pb::RoomRole::Member as i32);
    assert_eq!(joined.member_count, 2);
    let mine = bob
        .user
        .rooms()
        .list_my_rooms(bob.user.req(pb::ListMyRoomsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .rooms;
    assert_eq!(mine.iter().map(|r| r.id).collect::<Vec<_>>(), [public.id]);
    post(&bob, public.id, "hi all").await.unwrap();
    stack.stop().await;
});

on_every_backend!(invitations_are_accepted_or_declined, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let room = create_room(&alice, "invite only", pb::RoomVisibility::Private).await;
    let mut bobs = watch(&bob, 0).await;
    let invitation = alice
        .user
        .rooms()
        .invite_user(alice.user.req(pb::InviteUserRequest {
            room_id: room.id,
            account_id: bob.account.clone(),
            username: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    // The invitee hears of it live, and finds it in their list.
    match next_event(&mut bobs).await.event {
        Some(Event::Invited(invited)) => assert_eq!(invited.id, invitation.id),
        other => panic!("expected the invitation, got {other:?}"),
    }
    let pending = bob
        .user
        .rooms()
        .list_my_invitations(bob.user.req(pb::ListMyInvitationsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].room_name, "invite only");
    assert_eq!(pending[0].inviter_account_id, alice.account);
    // Only the invitee can answer it.
    assert_code(
        alice
            .user
            .rooms()
            .respond_to_invitation(alice.user.req(pb::RespondToInvitationRequest {
                invitation_id: invitation.id,
                accept: true,
            }))
            .await,
        Code::NotFound,
    );
    let declined = bob
        .user
        .rooms()
        .respond_to_invitation(bob.user.req(pb::RespondToInvitationRequest {
            invitation_id: invitation.id,
            accept: false,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(declined.room.is_none());
    assert_code(room_of(&bob, room.id).await, Code::NotFound);
    // Answered once only.
    assert_code(
        bob.user
            .rooms()
            .respond_to_invitation(bob.user.req(pb::RespondToInvitationRequest {
                invitation_id: invitation.id,
                accept: true,
            }))
            .await,
        Code::NotFound,
    );
    // Bad account ids are refused by name.
    assert_invalid(
        alice
            .user
            .rooms()
            .invite_user(alice.user.req(pb::InviteUserRequest {
                room_id: room.id,
                account_id: "bob".into(),
                username: String::new(),
            }))
            .await,
        "account_id",
    );
    invite_and_accept(&alice, room.id, &bob).await;
    assert_eq!(
        room_of(&bob, room.id).await.unwrap().my_role,
        pb::RoomRole::Member as i32
    );
    assert_code(
        alice
            .user
            .rooms()
            .invite_user(alice.user.req(pb::InviteUserRequest {
                room_id: room.id,
                account_id: bob.account.clone(),
                username: String::new(),
            }))
            .await,
        Code::AlreadyExists,
    );
    stack.stop().await;
});

on_every_backend!(invite_codes_expire_and_run_out, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let carol = person(&stack, "carol").await;
    let room = create_room(&alice, "coded", pb::RoomVisibility::Private).await;
    let code = |expires_in_seconds, max_uses| {
        let alice = &alice;
        async move {
            alice
                .user
                .rooms()
                .create_invite_code(alice.user.req(pb::CreateInviteCodeRequest {
                    room_id: room.id,
                    expires_in_seconds,
                    max_uses,
                }))
                .await
        }
    };
    let join = |who: &Person, code: String| {
        let user = who.user.clone();
        async move {
            user.rooms()
                .join_by_invite_code(user.req(pb::JoinByInviteCodeRequest { code }))
                .await
        }
    };
    assert_invalid(code(-1, 0).await, "expires_in_seconds");
    assert_invalid(code(0, -1).await, "max_uses");

    // One use: bob joins, carol finds it used up.
    let once = code(3600, 1).await.unwrap().into_inner();
    assert_eq!(once.max_uses, 1);
    let joined = join(&bob, once.code.clone()).await.unwrap().into_inner().room.unwrap();
    assert_eq!(joined.id, room.id);
    // Joining again as a member spends nothing and changes nothing.
    join(&bob, once.code.clone()).await.unwrap();
    let status = join(&carol, once.code.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("used up"), "{status:?}");

    // Expired: refused even with uses left.
    let short = code(1, 0).await.unwrap().into_inner();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let status = join(&carol, short.code).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("expired"), "{status:?}");
    assert_code(room_of(&carol, room.id).await, Code::NotFound);

    assert_code(join(&carol, "no-such-code".into()).await, Code::NotFound);
    assert_invalid(join(&carol, String::new()).await, "code");

    // A banned member cannot come back with a code.
    let open = code(3600, 0).await.unwrap().into_inner();
    alice
        .user
        .rooms()
        .ban_member(alice.user.req(pb::BanMemberRequest {
            room_id: room.id,
            account_id: bob.account.clone(),
        }))
        .await
        .unwrap();
    assert_code(join(&bob, open.code.clone()).await, Code::PermissionDenied);
    join(&carol, open.code.clone()).await.unwrap();
    // Unbanned, he may.
    alice
        .user
        .rooms()
        .unban_member(alice.user.req(pb::UnbanMemberRequest {
            room_id: room.id,
            account_id: bob.account.clone(),
        }))
        .await
        .unwrap();
    join(&bob, open.code).await.unwrap();
    assert_eq!(room_of(&alice, room.id).await.unwrap().member_count, 3);
    stack.stop().await;
});

on_every_backend!(kicks_and_bans_cut_an_open_stream, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let room = create_room(&alice, "moderated", pb::RoomVisibility::Public).await;
    invite_and_accept(&alice, room.id, &bob).await;
    let mut bobs = watch(&bob, 0).await;
    post(&alice, room.id, "before").await.unwrap();
    assert_eq!(posted_text(&next_message_event(&mut bobs).await), "before");

    alice
        .user
        .rooms()
        .kick_member(alice.user.req(pb::KickMemberRequest {
            room_id: room.id,
            account_id: bob.account.clone(),
        }))
        .await
        .unwrap();
    match next_message_event(&mut bobs).await.event {
        Some(Event::MemberRemoved(removed)) => {
            assert_eq!(removed.account_id, bob.account);
            assert_eq!(removed.by_account_id, alice.account);
            assert!(!removed.banned);
        }
        other => panic!("expected bob's removal, got {other:?}"),
    }
    // At once: nothing of the room reaches him, live or by asking.
    post(&alice, room.id, "after the kick").await.unwrap();
    assert_code(messages_of(&bob, room.id).await, Code::NotFound);
    assert_code(post(&bob, room.id, "am I still here?").await, Code::NotFound);
    // The next thing his stream carries is his own new room, not the message he may not see.
    let his = create_room(&bob, "bob's", pb::RoomVisibility::Private).await;
    post(&bob, his.id, "mine").await.unwrap();
    assert_eq!(posted_text(&next_message_event(&mut bobs).await), "mine");

    // Kicked, he may come back to a public room; banned, he may not.
    bob.user
        .rooms()
        .join_room(bob.user.req(pb::JoinRoomRequest { room_id: room.id }))
        .await
        .unwrap();
    post(&alice, room.id, "welcome back").await.unwrap();
    assert_eq!(posted_text(&next_message_event(&mut bobs).await), "welcome back");
    alice
        .user
        .rooms()
        .ban_member(alice.user.req(pb::BanMemberRequest {
            room_id: room.id,
            account_id: bob.account.clone(),
        }))
        .await
        .unwrap();
    match next_message_event(&mut bobs).await.event {
        Some(Event::MemberRemoved(removed)) => assert!(removed.banned),
        other => panic!("expected bob's ban, got {other:?}"),
    }
    post(&alice, room.id, "after the ban").await.unwrap();
    post(&bob, his.id, "mine again").await.unwrap();
    assert_eq!(posted_text(&next_message_event(&mut bobs).await), "mine again");
    assert_code(
        bob.user
            .rooms()
            .join_room(bob.user.req(pb::JoinRoomRequest { room_id: room.id }))
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        alice
            .user
            .rooms()
            .invite_user(alice.user.req(pb::InviteUserRequest {
                room_id: room.id,
                account_id: bob.account.clone(),
                username: String::new(),
            }))
            .await,
        Code::FailedPrecondition,
    );
    // Banned members are not listed.
    let members = alice
        .user
        .rooms()
        .list_members(alice.user.req(pb::ListMembersRequest { room_id: room.id }))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(
        members.iter().map(|m| m.account_id.as_str()).collect::<Vec<_>>(),
        [alice.account.as_str()]
    );
    stack.stop().await;
});

on_every_backend!(muted_members_read_but_cannot_post, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let room = create_room(&alice, "quiet", pb::RoomVisibility::Private).await;
    invite_and_accept(&alice, room.id, &bob).await;
    let mute = |duration_seconds| {
        let alice = &alice;
        let bob = &bob;
        async move {
            alice
                .user
                .rooms()
                .mute_member(alice.user.req(pb::MuteMemberRequest {
                    room_id: room.id,
                    account_id: bob.account.clone(),
                    duration_seconds,
                }))
                .await
                .unwrap()
                .into_inner()
                .member
                .unwrap()
        }
    };
    let muted = mute(600).await;
    assert!(muted.muted_until.is_some());
    let status = post(&bob, room.id, "can I speak?").await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let until = muted.muted_until.unwrap().to_string();
    assert!(status.message().contains(&until), "{status:?} should name {until}");
    // Reading still works.
    post(&alice, room.id, "you can read this").await.unwrap();
    assert_eq!(messages_of(&bob, room.id).await.unwrap().len(), 1);

    mute(0).await;
    let status = post(&bob, room.id, "now?").await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("until an admin unmutes you"), "{status:?}");

    // A member cannot unmute themselves; the owner can.
    assert_code(
        bob.user
            .rooms()
            .unmute_member(bob.user.req(pb::UnmuteMemberRequest {
                room_id: room.id,
                account_id: bob.account.clone(),
            }))
            .await,
        Code::PermissionDenied,
    );
    let unmuted = alice
        .user
        .rooms()
        .unmute_member(alice.user.req(pb::UnmuteMemberRequest {
            room_id: room.id,
            account_id: bob.account.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert!(unmuted.muted_until.is_none());
    post(&bob, room.id, "thanks").await.unwrap();

    // A mute that has run out no longer counts.
    mute(1).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    post(&bob, room.id, "free again").await.unwrap();
    stack.stop().await;
});

on_every_backend!(
    the_stream_resumes_without_gaps_or_doubles,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = person(&stack, "alice").await;
        let bob = person(&stack, "bob").await;
        let room = create_room(&alice, "history", pb::RoomVisibility::Private).await;
        invite_and_accept(&alice, room.id, &bob).await;
        let mut bobs = watch(&bob, 0).await;
        post(&alice, room.id, "one").await.unwrap();
        let first = next_message_event(&mut bobs).await;
        assert_eq!(posted_text(&first), "one");
        drop(bobs);

        // Missed while away: three posts and an edit.
        let two = post(&alice, room.id, "two").await.unwrap();
        post(&alice, room.id, "three").await.unwrap();
        alice
            .user
            .rooms()
            .edit_room_message(alice.user.req(pb::EditRoomMessageRequest {
                room_id: room.id,
                message_id: two.id,
                content: "two, edited".into(),
            }))
            .await
            .unwrap();
        let mut resumed = watch(&bob, first.id).await;
        let mut ids = vec![first.id];
        let mut seen = Vec::new();
        for _ in 0..3 {
            let event = next_event(&mut resumed).await;
            ids.push(event.id);
            seen.push(match event.event {
                Some(Event::MessagePosted(m)) => m.content,
                Some(Event::MessageEdited(m)) => format!("edited: {}", m.content),
                other => panic!("unexpected {other:?}"),
            });
        }
        assert_eq!(seen, ["two", "three", "edited: two, edited"]);
        // Then live, with nothing repeated.
        post(&alice, room.id, "four").await.unwrap();
        let four = next_event(&mut resumed).await;
        assert_eq!(posted_text(&four), "four");
        ids.push(four.id);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert_invalid(
            bob.user
                .rooms()
                .watch_room_events(bob.user.req(pb::WatchRoomEventsRequest { after_event_id: -1 }))
                .await,
            "after_event_id",
        );
        stack.stop().await;
    }
);

on_every_backend!(room_limits_hold, |db_url: String| async move {
    let stack = Stack::start_with(&db_url, |config| {
        config.room_limits = chat_service::RoomLimits {
            max_members: 2,
            max_rooms_per_user: 2,
            max_message_bytes: 10,
            messages_per_minute: 3,
            ..Default::default()
        };
    })
    .await;
    let db = stack.database().await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let carol = person(&stack, "carol").await;
    let room = create_room(&alice, "small", pb::RoomVisibility::Public).await;
    create_room(&alice, "second", pb::RoomVisibility::Public).await;
    // Rooms per account.
    let status = alice
        .user
        .rooms()
        .create_room(alice.user.req(pb::CreateRoomRequest {
            name: "third".into(),
            visibility: pb::RoomVisibility::Public as i32,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // Members per room.
    bob.user
        .rooms()
        .join_room(bob.user.req(pb::JoinRoomRequest { room_id: room.id }))
        .await
        .unwrap();
    assert_code(
        carol
            .user
            .rooms()
            .join_room(carol.user.req(pb::JoinRoomRequest { room_id: room.id }))
            .await,
        Code::ResourceExhausted,
    );
    // Message size, then rate; refused messages are not stored.
    let before = count_rows(&db, "chat_messages").await;
    assert_invalid(post(&bob, room.id, "eleven byte").await, "content");
    assert_invalid(post(&bob, room.id, "   ").await, "content");
    assert_eq!(count_rows(&db, "chat_messages").await, before);
    for i in 0..3 {
        post(&bob, room.id, &format!("msg {i}")).await.unwrap();
    }
    let status = post(&bob, room.id, "one more").await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(parley_service_kit::grpc_status::retry_delay(&status).is_some());
    // The rate is per member: alice still may.
    post(&alice, room.id, "mine").await.unwrap();
    // Bad input names its field.
    assert_invalid(
        alice
            .user
            .rooms()
            .update_room(alice.user.req(pb::UpdateRoomRequest {
                room_id: room.id,
                name: Some("  ".into()),
                ..Default::default()
            }))
            .await,
        "name",
    );
    assert_invalid(
        alice
            .user
            .rooms()
            .update_room(alice.user.req(pb::UpdateRoomRequest {
                room_id: room.id,
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["visibility".into()],
                }),
                ..Default::default()
            }))
            .await,
        "visibility",
    );
    stack.stop().await;
});

on_every_backend!(read_status_counts_what_is_unread, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let room = create_room(&alice, "news", pb::RoomVisibility::Private).await;
    invite_and_accept(&alice, room.id, &bob).await;
    let first = post(&alice, room.id, "first").await.unwrap();
    let second = post(&alice, room.id, "second").await.unwrap();
    post(&bob, room.id, "my own does not count").await.unwrap();
    assert_eq!(room_of(&bob, room.id).await.unwrap().unread_count, 2);
    let mark = |id: i64| {
        let bob = &bob;
        async move {
            bob.user
                .rooms()
                .mark_room_read(bob.user.req(pb::MarkRoomReadRequest {
                    room_id: room.id,
                    message_id: id,
                }))
                .await
                .map(|r| r.into_inner().room.unwrap())
        }
    };
    assert_eq!(mark(first.id).await.unwrap().unread_count, 1);
    assert_eq!(mark(second.id).await.unwrap().unread_count, 0);
    // Never backwards.
    assert_eq!(mark(first.id).await.unwrap().unread_count, 0);
    assert_code(mark(second.id + 1_000).await, Code::NotFound);
    let members = bob
        .user
        .rooms()
        .list_members(bob.user.req(pb::ListMembersRequest { room_id: room.id }))
        .await
        .unwrap()
        .into_inner()
        .members;
    let bobs = members.iter().find(|m| m.account_id == bob.account).unwrap();
    assert_eq!(bobs.last_read_message_id, Some(second.id));
    let mine = alice
        .user
        .rooms()
        .list_my_rooms(alice.user.req(pb::ListMyRoomsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .rooms;
    assert_eq!(mine[0].unread_count, 1, "bob's message is unread for alice");
    stack.stop().await;
});

on_every_backend!(the_ai_member_answers_a_mention_live, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let room = create_room(&alice, "with ai", pb::RoomVisibility::Private).await;
    invite_and_accept(&alice, room.id, &bob).await;
    let config = stack.fake_config(&alice.user, "fake").await;
    let set_ai = |who: &Person, api_config_id: Option<i64>| {
        let user = who.user.clone();
        async move {
            user.rooms()
                .set_room_ai(user.req(pb::SetRoomAiRequest {
                    room_id: room.id,
                    api_config_id,
                    persona_id: None,
                }))
                .await
                .map(|r| r.into_inner().room.unwrap())
        }
    };
    // Only the owner picks it, and only from their own configs.
    assert_code(set_ai(&bob, Some(config.id)).await, Code::PermissionDenied);
    let bobs_config = stack.fake_config(&bob.user, "bob's").await;
    assert_code(set_ai(&alice, Some(bobs_config.id)).await, Code::NotFound);
    assert!(set_ai(&alice, Some(config.id)).await.unwrap().ai_enabled);
    assert!(room_of(&bob, room.id).await.unwrap().ai_enabled);

    stack.fake.push_reply(Reply::text("Four, of course.").chunk_size(4));
    let mut bobs = watch(&bob, 0).await;
    post(&alice, room.id, "no mention, no answer").await.unwrap();
    post(&bob, room.id, "@ai what is 2+2?").await.unwrap();
    assert_eq!(
        posted_text(&next_message_event(&mut bobs).await),
        "no mention, no answer"
    );
    assert_eq!(posted_text(&next_message_event(&mut bobs).await), "@ai what is 2+2?");
    let answer = match next_message_event(&mut bobs).await.event {
        Some(Event::MessagePosted(m)) => m,
        other => panic!("expected the AI's message, got {other:?}"),
    };
    assert_eq!(answer.author_kind, pb::AuthorKind::Ai as i32);
    assert_eq!(answer.r#type, pb::RoomMessageType::AiAnswer as i32);
    assert!(answer.author_account_id.is_empty());
    let mut streamed = String::new();
    let completed = loop {
        match next_event(&mut bobs).await.event {
            Some(Event::AiAnswerDelta(delta)) => {
                assert_eq!(delta.message_id, answer.id);
                streamed.push_str(&delta.text);
            }
            Some(Event::MessageCompleted(m)) => break m,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(streamed, "Four, of course.");
    assert_eq!(completed.content, "Four, of course.");
    assert_eq!(completed.id, answer.id);
    // The model saw the room's messages with their authors.
    let body = stack.fake.chat_requests().pop().unwrap().body.to_string();
    assert!(body.contains("what is 2+2?"), "{body}");
    assert!(body.contains(&alice.account[..8]), "{body}");
    let stored = messages_of(&alice, room.id).await.unwrap();
    assert_eq!(stored[0].content, "Four, of course.");
    assert_eq!(stored[0].author_kind, pb::AuthorKind::Ai as i32);

    // Turned off: mentions go unanswered.
    assert!(!set_ai(&alice, None).await.unwrap().ai_enabled);
    stack.stop().await;
});

on_every_backend!(
    a_deleted_account_leaves_no_trace_in_rooms,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = person(&stack, "alice").await;
        let carol = person(&stack, "carol").await;
        let alices = create_room(&alice, "alice's", pb::RoomVisibility::Private).await;
        let carols = create_room(&carol, "carol's", pb::RoomVisibility::Private).await;
        invite_and_accept(&alice, alices.id, &carol).await;
        invite_and_accept(&carol, carols.id, &alice).await;
        post(&carol, alices.id, "carol was here").await.unwrap();
        post(&alice, alices.id, "alice stays").await.unwrap();

        stack
            .users()
            .await
            .delete_account(carol.user.req(parley_proto::user::v1::DeleteAccountRequest {
                password: "password of carol".into(),
            }))
            .await
            .unwrap();
        parley_testkit::wait::until("carol's rooms to be erased", Duration::from_secs(20), || async {
            room_of(&alice, carols.id).await.is_err()
        })
        .await;
        assert_code(room_of(&alice, carols.id).await, Code::NotFound);
        let room = room_of(&alice, alices.id).await.unwrap();
        assert_eq!(room.member_count, 1);
        let messages = messages_of(&alice, alices.id).await.unwrap();
        let texts: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["alice stays", ""]);
        assert!(messages[1].deleted_at.is_some());
        stack.stop().await;
    }
);

on_every_backend!(retention_deletes_only_what_is_too_old, |db_url: String| async move {
    // Batches of 4, so the sweep needs several for one room.
    let stack = Stack::start_with(&db_url, |config| {
        config.room_limits.messages_per_minute = 1_000;
        config.room_retention = chat_service::RetentionSweep {
            interval: Duration::from_millis(100),
            batch: 4,
            pause: Duration::from_millis(1),
            ..Default::default()
        };
    })
    .await;
    let db = stack.database().await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let kept = create_room(&alice, "kept", pb::RoomVisibility::Private).await;
    let expiring = create_room(&alice, "expiring", pb::RoomVisibility::Private).await;
    assert_eq!(expiring.retention_days, 0);
    invite_and_accept(&alice, expiring.id, &bob).await;

    // Only the owner and admins set it, within bounds; a refused change changes nothing.
    assert_code(set_retention(&bob, expiring.id, 7).await, Code::PermissionDenied);
    assert_invalid(set_retention(&alice, expiring.id, -1).await, "retention_days");
    assert_invalid(set_retention(&alice, expiring.id, 36_501).await, "retention_days");
    assert_eq!(room_of(&bob, expiring.id).await.unwrap().retention_days, 0);
    let set = set_retention(&alice, expiring.id, 7).await.unwrap();
    assert_eq!(set.retention_days, 7);
    assert_eq!(set.name, "expiring", "a masked update leaves the rest");
    assert_eq!(room_of(&bob, expiring.id).await.unwrap().retention_days, 7);

    let mut last_old = 0;
    for i in 0..11 {
        last_old = post(&bob, expiring.id, &format!("old {i}")).await.unwrap().id;
    }
    let mut last_kept = 0;
    for i in 0..6 {
        last_kept = post(&alice, kept.id, &format!("kept {i}")).await.unwrap().id;
    }
    age_room(&db, expiring.id, last_old, 8).await;
    age_room(&db, kept.id, last_kept, 400).await;
    post(&alice, expiring.id, "recent").await.unwrap();
    post(&bob, expiring.id, "also recent").await.unwrap();

    // The sweeper runs every 100 ms.
    let deadline = tokio::time::Instant::now() + EVENT_WITHIN;
    loop {
        let left = messages_of(&bob, expiring.id).await.unwrap();
        if left.len() == 2 {
            let texts: Vec<_> = left.iter().map(|m| m.content.as_str()).collect();
            assert_eq!(texts, ["also recent", "recent"]);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "old messages still there: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The events that carried the old messages went with them.
    let (old_events,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM room_events WHERE room_id = $1 AND created_at < $2")
            .bind(expiring.id)
            .bind(unix_millis_now() - 86_400_000)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(old_events, 0);
    // A room without retention keeps everything, however old.
    let kept_messages = messages_of(&alice, kept.id).await.unwrap();
    assert_eq!(kept_messages.len(), 6, "{kept_messages:?}");

    // Back to forever: nothing more goes.
    assert_eq!(set_retention(&alice, expiring.id, 0).await.unwrap().retention_days, 0);
    age_room(&db, expiring.id, i64::MAX, 30).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(messages_of(&bob, expiring.id).await.unwrap().len(), 2);
    stack.stop().await;
});

async fn set_typing(who: &Person, room: i64) -> Result<pb::SetTypingResponse, tonic::Status> {
    who.user
        .rooms()
        .set_typing(who.user.req(pb::SetTypingRequest { room_id: room }))
        .await
        .map(|r| r.into_inner())
}

on_every_backend!(typing_reaches_the_others_live_only, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let carol = person(&stack, "carol").await;
    let room = create_room(&alice, "typists", pb::RoomVisibility::Private).await;
    invite_and_accept(&alice, room.id, &bob).await;
    let mut bobs = watch(&bob, 0).await;
    let mut alices = watch(&alice, 0).await;
    post(&alice, room.id, "before").await.unwrap();
    let before = next_message_event(&mut bobs).await;
    assert_eq!(posted_text(&before), "before");
    assert_eq!(posted_text(&next_message_event(&mut alices).await), "before");

    let answered = set_typing(&alice, room.id).await.unwrap();
    let typing = next_message_event(&mut bobs).await;
    let Some(Event::Typing(mark)) = &typing.event else {
        panic!("expected typing, got {typing:?}");
    };
    assert_eq!(mark.account_id, alice.account);
    assert_eq!(typing.room_id, room.id);
    assert_eq!(typing.id, 0, "typing is not stored");
    assert_eq!(mark.until, answered.until);
    let shown_for = mark.until.unwrap().seconds - typing.occurred_at.unwrap().seconds;
    assert!((5..=7).contains(&shown_for), "shown for {shown_for} s");
    // Again at once: accepted, not passed on. And the typist is not told they type.
    set_typing(&alice, room.id).await.unwrap();
    post(&alice, room.id, "after").await.unwrap();
    assert_eq!(posted_text(&next_message_event(&mut bobs).await), "after");
    assert_eq!(posted_text(&next_message_event(&mut alices).await), "after");

    // Not a member: as if the room did not exist.
    assert_code(set_typing(&carol, room.id).await, Code::NotFound);
    assert_code(set_typing(&bob, room.id + 1_000).await, Code::NotFound);

    // Resuming replays what was stored, and typing never was.
    let mut resumed = watch(&bob, before.id).await;
    assert_eq!(posted_text(&next_message_event(&mut resumed).await), "after");

    // A muted member may not type either.
    alice
        .user
        .rooms()
        .mute_member(alice.user.req(pb::MuteMemberRequest {
            room_id: room.id,
            account_id: bob.account.clone(),
            duration_seconds: 60,
        }))
        .await
        .unwrap();
    assert_code(set_typing(&bob, room.id).await, Code::PermissionDenied);
    stack.stop().await;
});
