//! `parley.user.v1.AdminService`: accounts, the sign-up policy and invite codes.

use std::sync::Arc;

use parley_proto::timestamp::{from_unix_millis, to_unix_millis};
use parley_proto::user::v1 as pb;
use parley_proto::user::v1::admin_service_server::AdminService;
use parley_service_kit::access_token::AuthenticatedUser;
use tonic::{Request, Response, Status};

use super::{policy_to_proto, user_to_proto};
use crate::Error;
use crate::service::{AccountService, InviteRequest, SignupPolicy, UserListing};
use crate::store::{AccountStatus, InviteRow};

fn policy_from_proto(value: i32) -> Result<SignupPolicy, Error> {
    match pb::SignupPolicy::try_from(value) {
        Ok(pb::SignupPolicy::Open) => Ok(SignupPolicy::Open),
        Ok(pb::SignupPolicy::Approval) => Ok(SignupPolicy::Approval),
        Ok(pb::SignupPolicy::Invite) => Ok(SignupPolicy::Invite),
        Ok(pb::SignupPolicy::Closed) => Ok(SignupPolicy::Closed),
        _ => Err(Error::invalid(
            "policy",
            "must be SIGNUP_POLICY_OPEN, _APPROVAL, _INVITE or _CLOSED",
        )),
    }
}

fn invite_to_proto(invite: &InviteRow) -> pb::InviteCode {
    pb::InviteCode {
        id: invite.id,
        max_uses: invite.max_uses,
        uses: invite.uses,
        expires_at: Some(from_unix_millis(invite.expires_at)),
        revoked_at: invite.revoked_at.map(from_unix_millis),
        created_at: Some(from_unix_millis(invite.created_at)),
        created_by: invite.created_by.unwrap_or_default(),
    }
}

fn status_filter(value: i32) -> Result<Option<AccountStatus>, Error> {
    match pb::AccountStatus::try_from(value) {
        Ok(pb::AccountStatus::Unspecified) => Ok(None),
        Ok(pb::AccountStatus::Active) => Ok(Some(AccountStatus::Active)),
        Ok(pb::AccountStatus::Disabled) => Ok(Some(AccountStatus::Disabled)),
        Ok(pb::AccountStatus::Pending) => Ok(Some(AccountStatus::Pending)),
        Err(_) => Err(Error::invalid("status", "is not an AccountStatus")),
    }
}

/// `parley.user.v1.AdminService`: every method checks the caller is an administrator.
pub struct AdminApi {
    accounts: Arc<AccountService>,
}

impl AdminApi {
    pub fn new(accounts: Arc<AccountService>) -> Self {
        Self { accounts }
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let r = request.into_inner();
        let listing = UserListing {
            search: r.search,
            status: status_filter(r.status)?,
            page_size: r.page_size,
            page_token: r.page_token,
        };
        let page = self.accounts.list_users(caller.user_id, listing).await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: page.users.iter().map(user_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Result<Response<pb::GetUserResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let user = self.accounts.get_user(caller.user_id, request.get_ref().id).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn disable_user(
        &self,
        request: Request<pb::DisableUserRequest>,
    ) -> Result<Response<pb::DisableUserResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let user = self.accounts.disable_user(caller.user_id, request.get_ref().id).await?;
        Ok(Response::new(pb::DisableUserResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn enable_user(
        &self,
        request: Request<pb::EnableUserRequest>,
    ) -> Result<Response<pb::EnableUserResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let user = self.accounts.enable_user(caller.user_id, request.get_ref().id).await?;
        Ok(Response::new(pb::EnableUserResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        self.accounts.delete_user(caller.user_id, request.get_ref().id).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn approve_user(
        &self,
        request: Request<pb::ApproveUserRequest>,
    ) -> Result<Response<pb::ApproveUserResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let user = self.accounts.approve_user(caller.user_id, request.get_ref().id).await?;
        Ok(Response::new(pb::ApproveUserResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn get_signup_policy(
        &self,
        request: Request<pb::GetSignupPolicyRequest>,
    ) -> Result<Response<pb::GetSignupPolicyResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let (policy, set_by_administrator) = self.accounts.admin_signup_policy(caller.user_id).await?;
        Ok(Response::new(pb::GetSignupPolicyResponse {
            policy: policy_to_proto(policy),
            set_by_administrator,
        }))
    }

    async fn set_signup_policy(
        &self,
        request: Request<pb::SetSignupPolicyRequest>,
    ) -> Result<Response<pb::SetSignupPolicyResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let policy = policy_from_proto(request.get_ref().policy)?;
        let policy = self.accounts.set_signup_policy(caller.user_id, policy).await?;
        Ok(Response::new(pb::SetSignupPolicyResponse {
            policy: policy_to_proto(policy),
        }))
    }

    async fn create_invite_code(
        &self,
        request: Request<pb::CreateInviteCodeRequest>,
    ) -> Result<Response<pb::CreateInviteCodeResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let r = request.into_inner();
        let (invite, code) = self
            .accounts
            .create_invite(
                caller.user_id,
                InviteRequest {
                    max_uses: r.max_uses,
                    expires_at: r.expires_at.as_ref().map(to_unix_millis),
                },
            )
            .await?;
        Ok(Response::new(pb::CreateInviteCodeResponse {
            invite: Some(invite_to_proto(&invite)),
            code,
        }))
    }

    async fn list_invite_codes(
        &self,
        request: Request<pb::ListInviteCodesRequest>,
    ) -> Result<Response<pb::ListInviteCodesResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let invites = self.accounts.list_invites(caller.user_id).await?;
        Ok(Response::new(pb::ListInviteCodesResponse {
            invites: invites.iter().map(invite_to_proto).collect(),
        }))
    }

    async fn revoke_invite_code(
        &self,
        request: Request<pb::RevokeInviteCodeRequest>,
    ) -> Result<Response<pb::RevokeInviteCodeResponse>, Status> {
        let caller = AuthenticatedUser::from_request(&request)?;
        let invite = self
            .accounts
            .revoke_invite(caller.user_id, request.get_ref().id)
            .await?;
        Ok(Response::new(pb::RevokeInviteCodeResponse {
            invite: Some(invite_to_proto(&invite)),
        }))
    }
}
