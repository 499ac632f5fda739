//! `parley.chat.v1.PromptService`.

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::prompt_service_server::PromptService;
use tonic::{Request, Response, Status};

use super::ChatApi;
use super::UpdateMask;
use crate::convert;
use crate::ids::PromptId;
use crate::service::{PromptChange, prompt_variables};
use crate::store::PromptRow;

fn prompt(row: &PromptRow) -> pb::Prompt {
    convert::prompt(row, prompt_variables(&row.body))
}

#[tonic::async_trait]
impl PromptService for ChatApi {
    async fn list_prompts(
        &self,
        request: Request<pb::ListPromptsRequest>,
    ) -> Result<Response<pb::ListPromptsResponse>, Status> {
        let user = self.caller(&request).await?;
        let rows = self.chat.list_prompts(user).await?;
        Ok(Response::new(pb::ListPromptsResponse {
            prompts: rows.iter().map(prompt).collect(),
        }))
    }

    async fn create_prompt(
        &self,
        request: Request<pb::CreatePromptRequest>,
    ) -> Result<Response<pb::CreatePromptResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let row = self.chat.create_prompt(user, &r.title, &r.command, &r.body).await?;
        Ok(Response::new(pb::CreatePromptResponse {
            prompt: Some(prompt(&row)),
        }))
    }

    async fn update_prompt(
        &self,
        request: Request<pb::UpdatePromptRequest>,
    ) -> Result<Response<pb::UpdatePromptResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let mask = UpdateMask::new(r.update_mask, &["title", "command", "body"])?;
        let change = PromptChange {
            title: mask.pick("title", r.title),
            command: mask.pick("command", r.command),
            body: mask.pick("body", r.body),
        };
        let row = self.chat.update_prompt(user, PromptId(r.id), change).await?;
        Ok(Response::new(pb::UpdatePromptResponse {
            prompt: Some(prompt(&row)),
        }))
    }

    async fn delete_prompt(
        &self,
        request: Request<pb::DeletePromptRequest>,
    ) -> Result<Response<pb::DeletePromptResponse>, Status> {
        let user = self.caller(&request).await?;
        self.chat.delete_prompt(user, PromptId(request.get_ref().id)).await?;
        Ok(Response::new(pb::DeletePromptResponse {}))
    }
}
