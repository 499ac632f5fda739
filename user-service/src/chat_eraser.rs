//! The [`AccountDataEraser`] for chat-service: its internal `EraseAccountData`, called with a
//! one-minute service token user-service signs for it (audience chat-service, scope
//! `chat.erase-account`), as chat-service's auth layer accepts on that method only.

use std::sync::Arc;
use std::time::Duration;

use parley_proto::chat::internal::v1::account_data_service_client::AccountDataServiceClient;
use parley_proto::chat::internal::v1::{ERASE_ACCOUNT_SCOPE, EraseAccountDataRequest, SERVICE_TOKEN_AUDIENCE};
use parley_service_kit::balanced_channel::{BalancedChannel, ChannelOptions};
use parley_service_kit::database::now_millis;

use crate::account_deletion::{AccountDataEraser, AccountDeletion};
use crate::token_signer::SigningKeys;

/// A call that takes longer has failed (the outbox retries it; erasing is idempotent).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub struct ChatServiceEraser {
    client: AccountDataServiceClient<BalancedChannel>,
    keys: Arc<SigningKeys>,
}

impl ChatServiceEraser {
    /// Connects on first use, so user-service may start before chat-service (the all-in-one
    /// does); until chat-service answers, deliveries fail and are retried. Calls are balanced
    /// over chat-service's replicas.
    pub fn connect_lazy(url: &str, keys: Arc<SigningKeys>) -> Result<Self, String> {
        let channel =
            BalancedChannel::new(url, ChannelOptions::default()).map_err(|e| format!("chat-service URL: {e}"))?;
        Ok(Self {
            client: AccountDataServiceClient::new(channel),
            keys,
        })
    }
}

#[tonic::async_trait]
impl AccountDataEraser for ChatServiceEraser {
    fn name(&self) -> &str {
        "chat-service"
    }

    async fn erase(&self, deletion: &AccountDeletion) -> Result<(), tonic::Status> {
        let token = self
            .keys
            .signer
            .sign_service(SERVICE_TOKEN_AUDIENCE, ERASE_ACCOUNT_SCOPE, now_millis() / 1000)
            .map_err(|e| tonic::Status::internal(format!("signing a service token: {e}")))?;
        let mut request = tonic::Request::new(EraseAccountDataRequest {
            user_id: deletion.user_id,
            account_id: deletion.account_id.clone(),
        });
        request.set_timeout(CALL_TIMEOUT);
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| tonic::Status::internal("a service token that is no header value"))?;
        request.metadata_mut().insert("authorization", bearer);
        self.client.clone().erase_account_data(request).await?;
        Ok(())
    }
}
