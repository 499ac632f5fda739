//! `parley.chat.v1.TransferService`: export and import.

use futures::StreamExt;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::transfer_service_server::TransferService;
use tonic::{Request, Response, Status};

use super::{ChatApi, EventStream};
use crate::convert;
use crate::ids::SessionId;
use crate::service::{ExportFormat, ExportedFile};
use crate::transfer::ImportFormat;

fn file(file: ExportedFile) -> pb::ExportedFile {
    pb::ExportedFile {
        name: file.name,
        media_type: file.media_type.to_owned(),
        content: file.content,
    }
}

#[tonic::async_trait]
impl TransferService for ChatApi {
    async fn export_session(
        &self,
        request: Request<pb::ExportSessionRequest>,
    ) -> Result<Response<pb::ExportSessionResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let format = match pb::ExportFormat::try_from(r.format) {
            Ok(pb::ExportFormat::Json) => ExportFormat::Json,
            Ok(pb::ExportFormat::Markdown) => ExportFormat::Markdown,
            _ => {
                return Err(
                    crate::Error::invalid("format", "must be EXPORT_FORMAT_JSON or EXPORT_FORMAT_MARKDOWN").into(),
                );
            }
        };
        let exported = self.chat.export_session(user, SessionId(r.session_id), format).await?;
        Ok(Response::new(pb::ExportSessionResponse {
            file: Some(file(exported)),
        }))
    }

    type ExportAccountDataStream = EventStream<pb::ExportAccountDataResponse>;

    async fn export_account_data(
        &self,
        request: Request<pb::ExportAccountDataRequest>,
    ) -> Result<Response<Self::ExportAccountDataStream>, Status> {
        let user = self.caller(&request).await?;
        let files = std::sync::Arc::clone(&self.chat).export_account_data(user).await?;
        Ok(Response::new(
            files
                .map(|exported| {
                    exported
                        .map(|f| pb::ExportAccountDataResponse { file: Some(file(f)) })
                        .map_err(Status::from)
                })
                .boxed(),
        ))
    }

    async fn import_sessions(
        &self,
        request: Request<pb::ImportSessionsRequest>,
    ) -> Result<Response<pb::ImportSessionsResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let format = match pb::ImportFormat::try_from(r.format) {
            Ok(pb::ImportFormat::Unspecified) => None,
            Ok(pb::ImportFormat::ParleyJson) => Some(ImportFormat::ParleyJson),
            Ok(pb::ImportFormat::Chatgpt) => Some(ImportFormat::ChatGpt),
            Err(_) => {
                return Err(crate::Error::invalid("format", format!("{} is not an ImportFormat", r.format)).into());
            }
        };
        let rows = self.chat.import_sessions(user, &r.content, format).await?;
        Ok(Response::new(pb::ImportSessionsResponse {
            sessions: rows.iter().map(convert::session).collect(),
        }))
    }
}
