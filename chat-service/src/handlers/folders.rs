//! `parley.chat.v1.FolderService`.

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::folder_service_server::FolderService;
use tonic::{Request, Response, Status};

use super::ChatApi;
use super::UpdateMask;
use crate::convert;
use crate::ids::FolderId;

#[tonic::async_trait]
impl FolderService for ChatApi {
    async fn list_folders(
        &self,
        request: Request<pb::ListFoldersRequest>,
    ) -> Result<Response<pb::ListFoldersResponse>, Status> {
        let user = self.caller(&request).await?;
        let rows = self.chat.list_folders(user).await?;
        Ok(Response::new(pb::ListFoldersResponse {
            folders: rows.iter().map(convert::folder).collect(),
        }))
    }

    async fn create_folder(
        &self,
        request: Request<pb::CreateFolderRequest>,
    ) -> Result<Response<pb::CreateFolderResponse>, Status> {
        let user = self.caller(&request).await?;
        let row = self.chat.create_folder(user, &request.get_ref().name).await?;
        Ok(Response::new(pb::CreateFolderResponse {
            folder: Some(convert::folder(&row)),
        }))
    }

    async fn update_folder(
        &self,
        request: Request<pb::UpdateFolderRequest>,
    ) -> Result<Response<pb::UpdateFolderResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let mask = UpdateMask::new(r.update_mask, &["name"])?;
        let row = self
            .chat
            .update_folder(user, FolderId(r.id), mask.pick("name", r.name))
            .await?;
        Ok(Response::new(pb::UpdateFolderResponse {
            folder: Some(convert::folder(&row)),
        }))
    }

    async fn delete_folder(
        &self,
        request: Request<pb::DeleteFolderRequest>,
    ) -> Result<Response<pb::DeleteFolderResponse>, Status> {
        let user = self.caller(&request).await?;
        let moved = self.chat.delete_folder(user, FolderId(request.get_ref().id)).await?;
        Ok(Response::new(pb::DeleteFolderResponse {
            sessions_moved: i32::try_from(moved).unwrap_or(i32::MAX),
        }))
    }
}
