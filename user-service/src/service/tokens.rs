//! What verifiers of access tokens need: the signing keys and the revocations in force.

use std::sync::Arc;
use std::time::Duration;

use parley_service_kit::access_token;
use parley_service_kit::database::now_millis;

use super::{AccountService, millis};
use crate::Error;
use crate::store::{RevocationRow, RevokedSubject};
use crate::token_signer::SigningKeys;

/// How long a revocation of access tokens is published: every token issued before it has
/// expired by then (lifetime, the verifiers' leeway, and a margin for clocks and a token
/// signed while its family was being revoked).
pub const REVOCATION_RETENTION: Duration = access_token::ACCESS_TOKEN_TTL
    .saturating_add(access_token::EXPIRY_LEEWAY)
    .saturating_add(Duration::from_secs(90));

impl AccountService {
    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// The revocations still in force: those of the last [`REVOCATION_RETENTION`].
    pub async fn revocations(&self) -> Result<Vec<RevocationRow>, Error> {
        let since = now_millis() - millis(REVOCATION_RETENTION);
        Ok(self.store.revocations_since(since).await?)
    }
}

/// A stored revocation as verifiers apply it; `None` for a kind this version does not know.
pub fn revocation(row: &RevocationRow) -> Option<access_token::Revocation> {
    match row.subject_kind.as_str() {
        RevokedSubject::SESSION => Some(access_token::Revocation::Session {
            session_id: row.subject_id.clone(),
        }),
        RevokedSubject::ACCOUNT => Some(access_token::Revocation::Account {
            account_id: row.subject_id.clone(),
            revoked_at_ms: row.revoked_at,
        }),
        _ => None,
    }
}

/// What this service publishes, read directly for its own verifier (no call to itself).
pub struct LocalKeySource(pub Arc<AccountService>);

#[tonic::async_trait]
impl access_token::PublicKeySource for LocalKeySource {
    async fn fetch(&self) -> Result<access_token::PublishedKeys, tonic::Status> {
        let revocations = self.0.revocations().await?;
        Ok(access_token::PublishedKeys {
            keys: self.0.keys.accepted.clone(),
            revocations: revocations.iter().filter_map(revocation).collect(),
        })
    }
}
