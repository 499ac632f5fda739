//! `parley.chat.v1.PersonaService`.

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::persona_service_server::PersonaService;
use tonic::{Request, Response, Status};

use super::ChatApi;
use super::UpdateMask;
use crate::convert;
use crate::ids::PersonaId;
use crate::service::PersonaChange;

#[tonic::async_trait]
impl PersonaService for ChatApi {
    async fn list_personas(
        &self,
        request: Request<pb::ListPersonasRequest>,
    ) -> Result<Response<pb::ListPersonasResponse>, Status> {
        let user = self.caller(&request).await?;
        let rows = self.chat.list_personas(user).await?;
        Ok(Response::new(pb::ListPersonasResponse {
            personas: rows.iter().map(convert::persona).collect(),
        }))
    }

    async fn create_persona(
        &self,
        request: Request<pb::CreatePersonaRequest>,
    ) -> Result<Response<pb::CreatePersonaResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let row = self
            .chat
            .create_persona(user, &r.name, &r.description, &r.system_prompt, &r.avatar)
            .await?;
        Ok(Response::new(pb::CreatePersonaResponse {
            persona: Some(convert::persona(&row)),
        }))
    }

    async fn update_persona(
        &self,
        request: Request<pb::UpdatePersonaRequest>,
    ) -> Result<Response<pb::UpdatePersonaResponse>, Status> {
        let user = self.caller(&request).await?;
        let r = request.into_inner();
        let mask = UpdateMask::new(r.update_mask, &["name", "description", "system_prompt", "avatar"])?;
        let change = PersonaChange {
            name: mask.pick("name", r.name),
            description: mask.pick("description", r.description),
            system_prompt: mask.pick("system_prompt", r.system_prompt),
            avatar: mask.pick("avatar", r.avatar),
        };
        let row = self.chat.update_persona(user, PersonaId(r.id), change).await?;
        Ok(Response::new(pb::UpdatePersonaResponse {
            persona: Some(convert::persona(&row)),
        }))
    }

    async fn delete_persona(
        &self,
        request: Request<pb::DeletePersonaRequest>,
    ) -> Result<Response<pb::DeletePersonaResponse>, Status> {
        let user = self.caller(&request).await?;
        let changed = self.chat.delete_persona(user, PersonaId(request.get_ref().id)).await?;
        Ok(Response::new(pb::DeletePersonaResponse {
            sessions_changed: i32::try_from(changed).unwrap_or(i32::MAX),
        }))
    }
}
