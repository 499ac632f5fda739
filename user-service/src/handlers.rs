//! The gRPC face of user-service: parse the request, call [`AccountService`], map the reply.
//! Browsers get the refresh token in an HttpOnly cookie only (they ask for
//! `REFRESH_TOKEN_DELIVERY_COOKIE`, and a refresh from the cookie is answered in the cookie), so
//! page scripts never hold one.

mod admin;
mod user;

use parley_proto::timestamp::from_unix_millis;
use parley_proto::user::v1 as pb;

pub use admin::AdminApi;
pub use user::UserApi;

use crate::service::SignupPolicy;
use crate::store::{AccountStatus, Role, UserRow};

/// The header the gateway puts the client's address in (plain IP text). The gateway sets it
/// itself and never passes one through from a client.
pub const CLIENT_IP_HEADER: &str = "x-parley-client-ip";

/// The cookie that carries the refresh token for browsers.
pub const REFRESH_COOKIE: &str = "parley_refresh";
/// Browsers send the cookie only to user-service's own methods.
pub const REFRESH_COOKIE_PATH: &str = "/parley.user.v1.UserService/";

pub fn user_to_proto(user: &UserRow) -> pb::User {
    pb::User {
        id: user.id,
        username: user.username.clone(),
        email: user.email.clone().unwrap_or_default(),
        display_name: user.display_name.clone(),
        avatar_url: user.avatar_url.clone(),
        role: match user.role {
            Role::User => pb::Role::User,
            Role::Admin => pb::Role::Admin,
        } as i32,
        email_verified: user.email_verified != 0,
        created_at: Some(from_unix_millis(user.created_at)),
        updated_at: Some(from_unix_millis(user.updated_at)),
        last_login_at: user.last_login_at.map(from_unix_millis),
        status: match user.status {
            AccountStatus::Active => pb::AccountStatus::Active,
            AccountStatus::Disabled => pb::AccountStatus::Disabled,
            AccountStatus::Pending => pb::AccountStatus::Pending,
        } as i32,
        terms_accepted_at: user.terms_accepted_at.map(from_unix_millis),
        account_id: user.account_id.clone(),
    }
}

fn policy_to_proto(policy: SignupPolicy) -> i32 {
    (match policy {
        SignupPolicy::Open => pb::SignupPolicy::Open,
        SignupPolicy::Approval => pb::SignupPolicy::Approval,
        SignupPolicy::Invite => pb::SignupPolicy::Invite,
        SignupPolicy::Closed => pb::SignupPolicy::Closed,
    }) as i32
}
