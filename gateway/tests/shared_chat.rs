//! GetSharedChat, the one public chat method: it passes the gateway's edge auth without a
//! token and has its own rate limit per client address; the owner's ShareService does not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use parley_proto::chat::v1 as chat;
use parley_proto::chat::v1::share_service_client::ShareServiceClient;
use parley_proto::chat::v1::shared_chat_service_client::SharedChatServiceClient;
use parley_service_kit::grpc_status::retry_delay;
use support::*;
use tonic::Code;

#[tokio::test]
async fn a_shared_chat_needs_no_token_and_is_limited_per_address() {
    let stack = Stack::start_with(|config| {
        config.shared_chat_rate_limit = Some(gateway::RateLimit {
            burst: 2,
            period: Duration::from_secs(60),
        });
    })
    .await;
    let mut shared = SharedChatServiceClient::connect(stack.url()).await.unwrap();
    let request = || chat::GetSharedChatRequest {
        share_token: "A".repeat(43),
    };
    for _ in 0..2 {
        let status = shared.get_shared_chat(request()).await.unwrap_err();
        // Through edge auth without a token, to the in-test upstream (which does not serve it).
        assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    }
    let status = shared.get_shared_chat(request()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(retry_delay(&status).is_some(), "a retry delay");

    // The owner's methods still need an access token.
    let mut links = ShareServiceClient::connect(stack.url()).await.unwrap();
    let status = links
        .list_share_links(chat::ListShareLinksRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    stack.shutdown().await;
}
