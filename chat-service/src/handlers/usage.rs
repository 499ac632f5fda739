//! `parley.chat.v1.UsageService`: a user's own token usage, and every account's for
//! administrators.

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::usage_service_server::UsageService;
use parley_service_kit::access_token::AuthenticatedUser;
use tonic::{Request, Response, Status};

use super::ChatApi;
use crate::convert;
use crate::service::{ChatService, DayRange, Grouping};

#[tonic::async_trait]
impl UsageService for ChatApi {
    async fn get_my_usage(
        &self,
        request: Request<pb::GetMyUsageRequest>,
    ) -> Result<Response<pb::GetMyUsageResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let grouping = match pb::UsageGrouping::try_from(r.grouping) {
            Ok(pb::UsageGrouping::Day) => Grouping::Day,
            Ok(pb::UsageGrouping::Month) => Grouping::Month,
            Ok(pb::UsageGrouping::Unspecified) => Grouping::WholeRange,
            Err(_) => return Err(crate::Error::invalid("grouping", "is not a known grouping").into()),
        };
        let range = DayRange::parse(&r.start_date, &r.end_date)?;
        let lines = self.chat.my_usage(user, range, grouping).await?;
        Ok(Response::new(pb::GetMyUsageResponse {
            rows: lines
                .iter()
                .map(|l| convert::usage_row(l.period.as_deref(), &l.row))
                .collect(),
            start_date: range.first.iso(),
            end_date: range.last.iso(),
        }))
    }

    async fn list_usage(
        &self,
        request: Request<pb::ListUsageRequest>,
    ) -> Result<Response<pb::ListUsageResponse>, Status> {
        let admin = ChatService::administrator(
            &AuthenticatedUser::from_request(&request)?,
            "read other accounts' usage",
        )?;
        let r = request.into_inner();
        let range = DayRange::parse(&r.start_date, &r.end_date)?;
        let rows = self.chat.usage_per_account(&admin, range, &r.account_id).await?;
        Ok(Response::new(pb::ListUsageResponse {
            rows: rows.iter().map(|row| convert::usage_row(None, row)).collect(),
            start_date: range.first.iso(),
            end_date: range.last.iso(),
        }))
    }
}
