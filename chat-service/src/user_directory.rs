//! user-service's directory of accounts (`LookupUsers`). chat-service keeps no usernames
//! (people are account ids here), so `@username` mentions and invitations by username are
//! resolved there, asked with the caller's own access token: user-service answers signed-in
//! users only, and chat-service holds no credential of its own for it.

use parley_proto::user::v1 as user_pb;
use parley_proto::user::v1::user_service_client::UserServiceClient;
use parley_service_kit::balanced_channel::BalancedChannel;
use tonic::metadata::MetadataValue;

use crate::Error;

/// The caller's `authorization` header, passed on to user-service.
#[derive(Clone)]
pub struct CallerToken(MetadataValue<tonic::metadata::Ascii>);

impl std::fmt::Debug for CallerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerToken([redacted])")
    }
}

impl CallerToken {
    /// The request's credential (the auth layer already checked it); None without one.
    pub fn from_request<T>(request: &tonic::Request<T>) -> Option<Self> {
        request.metadata().get("authorization").cloned().map(Self)
    }
}

#[derive(Clone)]
pub struct UserDirectory {
    client: UserServiceClient<BalancedChannel>,
}

impl UserDirectory {
    /// Over the channel chat-service already keeps to user-service (for its public keys).
    pub fn new(channel: BalancedChannel) -> Self {
        Self {
            client: UserServiceClient::new(channel),
        }
    }

    /// The account ids of the active accounts named (by username, ignoring case); unknown
    /// names are left out.
    pub async fn accounts_named(&self, caller: &CallerToken, usernames: Vec<String>) -> Result<Vec<String>, Error> {
        if usernames.is_empty() {
            return Ok(Vec::new());
        }
        let mut request = tonic::Request::new(user_pb::LookupUsersRequest {
            usernames,
            account_ids: Vec::new(),
        });
        request.metadata_mut().insert("authorization", caller.0.clone());
        let answer = self
            .client
            .clone()
            .lookup_users(request)
            .await
            .map_err(Error::UserDirectory)?;
        Ok(answer.into_inner().users.into_iter().map(|u| u.account_id).collect())
    }
}
