//! `parley.user.v1.UserService`: sign-up, sign-in, sessions, the signed-in user, codes, keys.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parley_proto::timestamp::from_unix_millis;
use parley_proto::user::v1 as pb;
use parley_proto::user::v1::user_service_server::UserService;
use parley_service_kit::access_token::{self, AuthenticatedUser};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};

use super::{CLIENT_IP_HEADER, REFRESH_COOKIE, REFRESH_COOKIE_PATH, policy_to_proto, user_to_proto};
use crate::Error;
use crate::mailer::Purpose;
use crate::service::{self, AccountService, ClientAddress, KeepSession, ProfileRequest, Registration, SignedIn};
use crate::store::RevocationRow;

pub struct UserApi {
    accounts: Arc<AccountService>,
    secure_cookies: bool,
}

impl UserApi {
    pub fn new(accounts: Arc<AccountService>, secure_cookies: bool) -> Self {
        Self {
            accounts,
            secure_cookies,
        }
    }

    fn cookie(&self, value: &str, max_age: Duration) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        format!(
            "{REFRESH_COOKIE}={value}; Path={REFRESH_COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
            max_age.as_secs()
        )
    }

    fn set_cookie<T>(&self, response: &mut Response<T>, value: &str, max_age: Duration) {
        // A refresh token is URL-safe base64, always a valid header value.
        if let Ok(header) = MetadataValue::try_from(self.cookie(value, max_age)) {
            response.metadata_mut().insert("set-cookie", header);
        }
    }

    /// The answer to a sign-in: the refresh token always goes into the HttpOnly cookie, and
    /// into the body only when `delivery` says so.
    fn signed_in<T>(
        &self,
        signed_in: SignedIn,
        delivery: Delivery,
        build: impl FnOnce(pb::User, String, String, i64) -> T,
    ) -> Response<T> {
        let refresh = signed_in.refresh_token;
        let body_refresh = match delivery {
            Delivery::BodyAndCookie => refresh.clone(),
            Delivery::CookieOnly => String::new(),
        };
        let mut response = Response::new(build(
            user_to_proto(&signed_in.user),
            signed_in.access.token,
            body_refresh,
            signed_in.access.expires_in_secs,
        ));
        self.set_cookie(&mut response, &refresh, signed_in.refresh_expires_in);
        response
    }

    fn clear_cookie<T>(&self, response: &mut Response<T>) {
        self.set_cookie(response, "", Duration::ZERO);
    }
}

/// Where a new refresh token goes besides the HttpOnly cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    BodyAndCookie,
    /// Browsers: page scripts must never be able to read a refresh token.
    CookieOnly,
}

fn delivery(value: i32) -> Result<Delivery, Error> {
    match pb::RefreshTokenDelivery::try_from(value) {
        Ok(pb::RefreshTokenDelivery::Unspecified) => Ok(Delivery::BodyAndCookie),
        Ok(pb::RefreshTokenDelivery::Cookie) => Ok(Delivery::CookieOnly),
        Err(_) => Err(Error::invalid(
            "refresh_token_delivery",
            "must be REFRESH_TOKEN_DELIVERY_UNSPECIFIED or REFRESH_TOKEN_DELIVERY_COOKIE",
        )),
    }
}

/// The refresh token from the request body, or else from the browser's cookie.
fn refresh_token_of(body: &str, metadata: &MetadataMap) -> Option<String> {
    let body = body.trim();
    if !body.is_empty() {
        return Some(body.to_string());
    }
    cookie_token(metadata)
}

fn cookie_token(metadata: &MetadataMap) -> Option<String> {
    metadata
        .get_all("cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == REFRESH_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

/// Where the request came from: the gateway's header, or else (a direct call) the peer.
fn client_address<T>(request: &Request<T>) -> ClientAddress {
    let forwarded = request
        .metadata()
        .get(CLIENT_IP_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<IpAddr>().ok());
    match forwarded {
        Some(ip) => ClientAddress {
            ip: Some(ip),
            forwarded: true,
        },
        None => ClientAddress {
            ip: request.remote_addr().map(|peer| peer.ip()),
            forwarded: false,
        },
    }
}

fn purpose(value: i32) -> Result<Purpose, Error> {
    match pb::VerificationPurpose::try_from(value) {
        Ok(pb::VerificationPurpose::PasswordReset) => Ok(Purpose::PasswordReset),
        Ok(pb::VerificationPurpose::EmailVerify) => Ok(Purpose::EmailVerify),
        _ => Err(Error::invalid("purpose", "must be PASSWORD_RESET or EMAIL_VERIFY")),
    }
}

fn revocation_message(row: &RevocationRow) -> Option<pb::Revocation> {
    let subject = match service::revocation(row)? {
        access_token::Revocation::Session { session_id } => pb::revocation::Subject::SessionId(session_id),
        access_token::Revocation::Account { account_id, .. } => pb::revocation::Subject::AccountId(account_id),
    };
    Some(pb::Revocation {
        subject: Some(subject),
        revoked_at: Some(from_unix_millis(row.revoked_at)),
    })
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let r = request.into_inner();
        let delivery = delivery(r.refresh_token_delivery)?;
        let signed_in = self
            .accounts
            .register(Registration {
                username: &r.username,
                password: &r.password,
                email: r.email.as_deref(),
                display_name: r.display_name.as_deref(),
                invite_code: Some(r.invite_code.as_str()),
                accepted_terms: r.accepted_terms,
            })
            .await?;
        Ok(self.signed_in(
            signed_in,
            delivery,
            |user, access_token, refresh_token, access_expires_in| pb::RegisterResponse {
                user: Some(user),
                access_token,
                refresh_token,
                access_expires_in,
            },
        ))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        let client = client_address(&request);
        let r = request.into_inner();
        let delivery = delivery(r.refresh_token_delivery)?;
        let signed_in = self.accounts.login(&r.login, &r.password, client).await?;
        Ok(self.signed_in(
            signed_in,
            delivery,
            |user, access_token, refresh_token, access_expires_in| pb::LoginResponse {
                user: Some(user),
                access_token,
                refresh_token,
                access_expires_in,
            },
        ))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        let from_cookie = request.get_ref().refresh_token.trim().is_empty();
        let token = refresh_token_of(&request.get_ref().refresh_token, request.metadata())
            .ok_or_else(|| Error::invalid("refresh_token", "is required (or the parley_refresh cookie)"))?;
        let signed_in = match self.accounts.refresh(&token).await {
            Ok(signed_in) => signed_in,
            Err(error) => {
                let mut status = Status::from(error);
                // A dead cookie is dropped, so the browser stops sending it.
                if from_cookie
                    && status.code() == tonic::Code::Unauthenticated
                    && let Ok(header) = MetadataValue::try_from(self.cookie("", Duration::ZERO))
                {
                    status.metadata_mut().insert("set-cookie", header);
                }
                return Err(status);
            }
        };
        // A token that came from the cookie is answered in the cookie only: otherwise a script
        // injected into the page could call RefreshToken with an empty body and read the next
        // token from the answer.
        let delivery = if from_cookie {
            Delivery::CookieOnly
        } else {
            Delivery::BodyAndCookie
        };
        Ok(self.signed_in(
            signed_in,
            delivery,
            |user, access_token, refresh_token, access_expires_in| pb::RefreshTokenResponse {
                user: Some(user),
                access_token,
                refresh_token,
                access_expires_in,
            },
        ))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        let token = refresh_token_of(&request.get_ref().refresh_token, request.metadata());
        if let Some(token) = token {
            self.accounts.logout(&token).await?;
        }
        let mut response = Response::new(pb::LogoutResponse {});
        self.clear_cookie(&mut response);
        Ok(response)
    }

    async fn get_me(&self, request: Request<pb::GetMeRequest>) -> Result<Response<pb::GetMeResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let user = self.accounts.me(caller.user_id).await?;
        Ok(Response::new(pb::GetMeResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::UpdateProfileResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let r = request.into_inner();
        let profile = ProfileRequest {
            display_name: r.display_name,
            email: r.email,
            avatar_url: r.avatar_url,
            update_mask: r.update_mask.map(|mask| mask.paths),
            current_password: r.current_password,
        };
        let user = self.accounts.update_profile(caller.user_id, profile).await?;
        Ok(Response::new(pb::UpdateProfileResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let cookie = cookie_token(request.metadata());
        let r = request.into_inner();
        let keep = KeepSession {
            refresh_token: r.keep_refresh_token.as_deref(),
            cookie: cookie.as_deref(),
        };
        self.accounts
            .change_password(caller.user_id, &r.old_password, &r.new_password, keep)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    async fn send_verification_code(
        &self,
        request: Request<pb::SendVerificationCodeRequest>,
    ) -> Result<Response<pb::SendVerificationCodeResponse>, Status> {
        let r = request.into_inner();
        let purpose = purpose(r.purpose)?;
        let expires_in = self.accounts.send_code(&r.login, purpose).await?;
        Ok(Response::new(pb::SendVerificationCodeResponse {
            expires_in: expires_in.as_secs() as i64,
        }))
    }

    async fn verify_code(
        &self,
        request: Request<pb::VerifyCodeRequest>,
    ) -> Result<Response<pb::VerifyCodeResponse>, Status> {
        let r = request.into_inner();
        let purpose = purpose(r.purpose)?;
        let valid = self.accounts.verify_code(&r.login, &r.code, purpose).await?;
        Ok(Response::new(pb::VerifyCodeResponse { valid }))
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        let client = client_address(&request);
        let r = request.into_inner();
        self.accounts
            .reset_password(&r.login, &r.code, &r.new_password, client)
            .await?;
        Ok(Response::new(pb::ResetPasswordResponse {}))
    }

    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> Result<Response<pb::DeleteAccountResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        self.accounts
            .delete_account(caller.user_id, &request.get_ref().password)
            .await?;
        let mut response = Response::new(pb::DeleteAccountResponse {});
        self.clear_cookie(&mut response);
        Ok(response)
    }

    async fn get_public_keys(
        &self,
        _request: Request<pb::GetPublicKeysRequest>,
    ) -> Result<Response<pb::GetPublicKeysResponse>, Status> {
        let revocations = self.accounts.revocations().await?;
        Ok(Response::new(pb::GetPublicKeysResponse {
            keys: self
                .accounts
                .keys()
                .accepted
                .iter()
                .map(|key| pb::PublicKey {
                    key_id: key.key_id.clone(),
                    algorithm: "EdDSA".to_string(),
                    public_key: key.public_key.clone(),
                })
                .collect(),
            issuer: access_token::ISSUER.to_string(),
            audience: access_token::AUDIENCE.to_string(),
            revocations: revocations.iter().filter_map(revocation_message).collect(),
        }))
    }
    async fn get_signup_info(
        &self,
        _request: Request<pb::GetSignupInfoRequest>,
    ) -> Result<Response<pb::GetSignupInfoResponse>, Status> {
        let (policy, terms_url) = self.accounts.signup_info().await?;
        Ok(Response::new(pb::GetSignupInfoResponse {
            policy: policy_to_proto(policy),
            terms_url: terms_url.unwrap_or_default().to_string(),
        }))
    }

    async fn lookup_users(
        &self,
        request: Request<pb::LookupUsersRequest>,
    ) -> Result<Response<pb::LookupUsersResponse>, Status> {
        AuthenticatedUser::from_request(&request)?;
        let r = request.into_inner();
        let users = self.accounts.lookup_users(&r.usernames, &r.account_ids).await?;
        Ok(Response::new(pb::LookupUsersResponse {
            users: users
                .iter()
                .map(|user| pb::UserProfile {
                    account_id: user.account_id.clone(),
                    username: user.username.clone(),
                    display_name: user.display_name.clone(),
                    avatar_url: user.avatar_url.clone(),
                })
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_refresh_cookie_among_others() {
        let mut metadata = MetadataMap::new();
        metadata.insert(
            "cookie",
            MetadataValue::from_static("theme=dark; parley_refresh=abc_-1; x=y"),
        );
        assert_eq!(refresh_token_of("", &metadata), Some("abc_-1".to_string()));
        assert_eq!(refresh_token_of("body", &metadata), Some("body".to_string()));
        assert_eq!(refresh_token_of("", &MetadataMap::new()), None);
        let mut empty = MetadataMap::new();
        empty.insert("cookie", MetadataValue::from_static("parley_refresh="));
        assert_eq!(refresh_token_of("", &empty), None);
    }
}
