//! Share links over gRPC on both backends: a snapshot frozen when the link is made, read
//! without signing in and without anything private, listed and revoked by its owner only,
//! and gone with its chat and with its owner's account.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Stack, User};
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::share_service_client::ShareServiceClient;
use parley_proto::chat::v1::shared_chat_service_client::SharedChatServiceClient;
use parley_proto::user::v1 as user_pb;
use parley_testkit::{on_every_backend, wait};
use prost::Message as _;
use tonic::Code;
use tonic::transport::Channel;

async fn shares(stack: &Stack) -> ShareServiceClient<Channel> {
    ShareServiceClient::new(wait::channel(stack.chat_address()).await)
}

/// A client that sends no access token at all.
async fn public(stack: &Stack) -> SharedChatServiceClient<Channel> {
    SharedChatServiceClient::new(wait::channel(stack.chat_address()).await)
}

async fn answered(user: &User, session_id: i64, question: &str) {
    let mut events = user.send(session_id, question).await;
    while events.message().await.unwrap().is_some() {}
}

async fn create(
    client: &mut ShareServiceClient<Channel>,
    user: &User,
    session_id: i64,
) -> Result<pb::ShareLink, tonic::Status> {
    Ok(client
        .create_share_link(user.req(pb::CreateShareLinkRequest { session_id }))
        .await?
        .into_inner()
        .link
        .unwrap())
}

async fn list(
    client: &mut ShareServiceClient<Channel>,
    user: &User,
    session_id: Option<i64>,
) -> Result<Vec<pb::ShareLink>, tonic::Status> {
    Ok(client
        .list_share_links(user.req(pb::ListShareLinksRequest {
            session_id,
            ..Default::default()
        }))
        .await?
        .into_inner()
        .links)
}

async fn open(client: &mut SharedChatServiceClient<Channel>, token: &str) -> Result<pb::SharedChat, tonic::Status> {
    Ok(client
        .get_shared_chat(pb::GetSharedChatRequest {
            share_token: token.to_owned(),
        })
        .await?
        .into_inner()
        .chat
        .unwrap())
}

/// Alice's chat with a persona, a config and one answered question.
async fn alices_chat(stack: &Stack, alice: &User) -> (pb::Session, pb::ApiConfig) {
    let config = stack.fake_config(alice, "Alice's private config").await;
    let persona = alice
        .personas()
        .create_persona(alice.req(pb::CreatePersonaRequest {
            name: "Travel guide".into(),
            description: "Private description".into(),
            system_prompt: "Private persona prompt".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .persona
        .unwrap();
    let session = alice
        .create_session(pb::CreateSessionRequest {
            title: Some("Kyoto in May".into()),
            persona_id: Some(persona.id),
            system_prompt: Some("Alice's private system prompt".into()),
            api_config_id: Some(config.id),
            ..Default::default()
        })
        .await;
    answered(alice, session.id, "Where should I stay?").await;
    (session, config)
}

on_every_backend!(
    a_snapshot_is_frozen_and_public_without_private_fields,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = stack.user("alice").await;
        let (session, config) = alices_chat(&stack, &alice).await;
        let mut client = shares(&stack).await;
        let link = create(&mut client, &alice, session.id).await.unwrap();
        assert_eq!(link.session_id, session.id);
        assert_eq!(link.title, "Kyoto in May");
        assert_eq!(link.message_count, 2);
        assert_eq!(link.share_token.len(), 43, "256 random bits");
        let second = create(&mut client, &alice, session.id).await.unwrap();
        assert_ne!(second.share_token, link.share_token);

        // Later messages and edits do not reach the snapshot.
        let before = alice.list_messages(session.id).await;
        answered(&alice, session.id, "And what should I eat?").await;
        alice
            .messages()
            .update_message(alice.req(pb::UpdateMessageRequest {
                id: before[1].id,
                content: "edited afterwards".into(),
            }))
            .await
            .unwrap();
        let mut anyone = public(&stack).await;
        let shared = open(&mut anyone, &link.share_token).await.unwrap();
        assert_eq!(shared.title, "Kyoto in May");
        assert_eq!(shared.persona_name, "Travel guide");
        let texts: Vec<(i32, &str)> = shared.messages.iter().map(|m| (m.role, m.content.as_str())).collect();
        assert_eq!(
            texts,
            [
                (pb::MessageRole::User as i32, "Where should I stay?"),
                (pb::MessageRole::Assistant as i32, before[1].content.as_str()),
            ]
        );
        assert_eq!(shared.messages[1].model, "fake-model");
        assert_eq!(shared.messages[0].created_at, before[0].created_at);

        // Nothing private in what anyone receives: no ids, account, config, key or prompts.
        let account_id = stack.account_id(&alice).await;
        let bytes = String::from_utf8_lossy(&shared.encode_to_vec()).into_owned();
        for private in [
            account_id.as_str(),
            "alice",
            "Alice's private config",
            config.base_url.as_str(),
            stack.fake.api_key().as_str(),
            "Alice's private system prompt",
            "Private persona prompt",
            "Private description",
            "edited afterwards",
            "what should I eat",
        ] {
            assert!(!bytes.contains(private), "the snapshot leaks {private:?}");
        }
        // A token is not an access token: a signed-in caller reads the same snapshot.
        let signed_in = SharedChatServiceClient::new(wait::channel(stack.chat_address()).await)
            .get_shared_chat(alice.req(pb::GetSharedChatRequest {
                share_token: link.share_token.clone(),
            }))
            .await
            .unwrap()
            .into_inner()
            .chat
            .unwrap();
        assert_eq!(signed_in, shared);
        stack.stop().await;
    }
);

on_every_backend!(
    links_are_listed_and_revoked_by_their_owner_only,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = stack.user("alice").await;
        let bob = stack.user("bob").await;
        let (session, _) = alices_chat(&stack, &alice).await;
        let other = alice.create_session(pb::CreateSessionRequest::default()).await;
        answered(&alice, other.id, "another chat").await;
        let mut client = shares(&stack).await;
        let first = create(&mut client, &alice, session.id).await.unwrap();
        let second = create(&mut client, &alice, other.id).await.unwrap();

        let ids = |links: Vec<pb::ShareLink>| links.into_iter().map(|l| l.id).collect::<Vec<_>>();
        assert_eq!(
            ids(list(&mut client, &alice, None).await.unwrap()),
            [second.id, first.id]
        );
        assert_eq!(
            ids(list(&mut client, &alice, Some(session.id)).await.unwrap()),
            [first.id]
        );
        assert!(list(&mut client, &bob, None).await.unwrap().is_empty());
        // Bob can neither list, link nor revoke anything of Alice's.
        assert_eq!(
            list(&mut client, &bob, Some(session.id)).await.unwrap_err().code(),
            Code::NotFound
        );
        assert_eq!(
            create(&mut client, &bob, session.id).await.unwrap_err().code(),
            Code::NotFound
        );
        let status = client
            .revoke_share_link(bob.req(pb::RevokeShareLinkRequest { id: first.id }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        let mut anyone = public(&stack).await;
        open(&mut anyone, &first.share_token).await.unwrap();

        // Paged.
        let page = client
            .list_share_links(alice.req(pb::ListShareLinksRequest {
                page_size: 1,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ids(page.links), [second.id]);
        let rest = client
            .list_share_links(alice.req(pb::ListShareLinksRequest {
                page_size: 1,
                page_token: page.next_page_token,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ids(rest.links), [first.id]);
        assert!(rest.next_page_token.is_empty());

        // Revoked: NOT_FOUND, like a token never issued; a second revoke is NOT_FOUND too.
        client
            .revoke_share_link(alice.req(pb::RevokeShareLinkRequest { id: first.id }))
            .await
            .unwrap();
        assert_eq!(
            open(&mut anyone, &first.share_token).await.unwrap_err().code(),
            Code::NotFound
        );
        let status = client
            .revoke_share_link(alice.req(pb::RevokeShareLinkRequest { id: first.id }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(ids(list(&mut client, &alice, None).await.unwrap()), [second.id]);
        for token in ["A".repeat(43), "short".to_owned(), "../../etc/passwd".to_owned()] {
            assert_eq!(
                open(&mut anyone, &token).await.unwrap_err().code(),
                Code::NotFound,
                "{token}"
            );
        }
        assert_eq!(open(&mut anyone, "").await.unwrap_err().code(), Code::InvalidArgument);

        // A chat with nothing finished yet cannot be shared.
        let empty = alice.create_session(pb::CreateSessionRequest::default()).await;
        assert_eq!(
            create(&mut client, &alice, empty.id).await.unwrap_err().code(),
            Code::FailedPrecondition
        );
        // Every other method still needs a token.
        let status = client
            .list_share_links(pb::ListShareLinksRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        stack.stop().await;
    }
);

on_every_backend!(
    links_go_with_their_chat_and_their_account,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = stack.user("alice").await;
        let (session, _) = alices_chat(&stack, &alice).await;
        let other = alice.create_session(pb::CreateSessionRequest::default()).await;
        answered(&alice, other.id, "kept until the account goes").await;
        let mut client = shares(&stack).await;
        let link = create(&mut client, &alice, session.id).await.unwrap();
        let kept = create(&mut client, &alice, other.id).await.unwrap();
        let mut anyone = public(&stack).await;
        let db = stack.database().await;
        let rows = |db: sqlx::AnyPool| async move {
            let (links,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM chat_share_links")
                .fetch_one(&db)
                .await
                .unwrap();
            let (messages,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM chat_share_messages")
                .fetch_one(&db)
                .await
                .unwrap();
            (links, messages)
        };
        assert_eq!(rows(db.clone()).await, (2, 4));

        alice
            .sessions()
            .delete_session(alice.req(pb::DeleteSessionRequest { id: session.id }))
            .await
            .unwrap();
        assert_eq!(
            open(&mut anyone, &link.share_token).await.unwrap_err().code(),
            Code::NotFound
        );
        assert_eq!(rows(db.clone()).await, (1, 2));
        open(&mut anyone, &kept.share_token).await.unwrap();

        stack
            .users()
            .await
            .delete_account(alice.req(user_pb::DeleteAccountRequest {
                password: "password of alice".into(),
            }))
            .await
            .unwrap();
        wait::eventually("the account's links to go", Duration::from_secs(10), || {
            let mut anyone = anyone.clone();
            let token = kept.share_token.clone();
            async move { (open(&mut anyone, &token).await.err()?.code() == Code::NotFound).then_some(()) }
        })
        .await;
        assert_eq!(rows(db).await, (0, 0));
        stack.stop().await;
    }
);
