//! The keys and revocations verifiers trust, and where they come from.

use parley_proto::user::v1::GetPublicKeysRequest;
use parley_proto::user::v1::revocation::Subject;
use parley_proto::user::v1::user_service_client::UserServiceClient;

/// A public key that verifies tokens whose header names `key_id`.
#[derive(Clone)]
pub struct VerificationKey {
    pub key_id: String,
    /// The raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
}

/// Access tokens to refuse although they have not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Every token whose `sid` is this sign-in.
    Session { session_id: String },
    /// Every token whose `aid` is this account and that was issued before `revoked_at_ms`
    /// (Unix milliseconds).
    Account { account_id: String, revoked_at_ms: i64 },
}

/// What user-service publishes for verifiers: the keys tokens are accepted with and the
/// revocations still in force.
#[derive(Clone, Default)]
pub struct PublishedKeys {
    pub keys: Vec<VerificationKey>,
    pub revocations: Vec<Revocation>,
}

/// Where a verifier gets the keys and revocations (user-service's `GetPublicKeys`, or
/// user-service's own store).
#[tonic::async_trait]
pub trait PublicKeySource: Send + Sync + 'static {
    async fn fetch(&self) -> Result<PublishedKeys, tonic::Status>;
}

/// Fetches keys and revocations from user-service's `GetPublicKeys`, over a
/// [`BalancedChannel`](crate::balanced_channel::BalancedChannel) in the services, or any
/// channel (tests pass a plain one).
pub struct UserServiceKeySource<T = crate::balanced_channel::BalancedChannel> {
    channel: T,
}

impl<T> UserServiceKeySource<T> {
    pub fn new(channel: T) -> Self {
        Self { channel }
    }
}

#[tonic::async_trait]
impl<T> PublicKeySource for UserServiceKeySource<T>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + Sync + 'static,
    T::Future: Send,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    async fn fetch(&self) -> Result<PublishedKeys, tonic::Status> {
        let response = UserServiceClient::new(self.channel.clone())
            .get_public_keys(GetPublicKeysRequest {})
            .await?
            .into_inner();
        let keys = response
            .keys
            .into_iter()
            .filter(|k| k.algorithm == "EdDSA")
            .map(|k| VerificationKey {
                key_id: k.key_id,
                public_key: k.public_key,
            })
            .collect();
        let revocations = response
            .revocations
            .into_iter()
            .filter_map(|r| match r.subject? {
                Subject::SessionId(session_id) => Some(Revocation::Session { session_id }),
                Subject::AccountId(account_id) => Some(Revocation::Account {
                    account_id,
                    // Without a time, every token of the account so far.
                    revoked_at_ms: r
                        .revoked_at
                        .as_ref()
                        .map_or(i64::MAX, parley_proto::timestamp::to_unix_millis),
                }),
            })
            .collect();
        Ok(PublishedKeys { keys, revocations })
    }
}
