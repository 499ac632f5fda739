//! Personas: the built-in ones (read-only) and a user's own.

use parley_service_kit::database::now_millis;

use super::ChatService;
use super::quotas::bytes_of;
use crate::Error;
use crate::ids::{OwnerId, PersonaId};
use crate::quota::Quota;
use crate::store::PersonaRow;
use crate::validation;

#[derive(Debug, Default)]
pub struct PersonaChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub system_prompt: Option<String>,
}

impl ChatService {
    pub async fn list_personas(&self, user_id: OwnerId) -> Result<Vec<PersonaRow>, Error> {
        Ok(self.store.personas(user_id).await?)
    }

    pub async fn create_persona(
        &self,
        user_id: OwnerId,
        name: &str,
        description: &str,
        system_prompt: &str,
    ) -> Result<PersonaRow, Error> {
        let name = name.trim();
        validate_persona(name, description, system_prompt)?;
        let mut write = self
            .within_quota(
                user_id,
                &[(Quota::Personas, 1), (Quota::StoredBytes, bytes_of(system_prompt))],
            )
            .await?;
        let id = write
            .insert_persona(name, description, system_prompt, now_millis())
            .await?;
        write.commit().await?;
        self.store.persona(user_id, id).await?.ok_or(Error::NotFound("persona"))
    }

    /// The user's own persona; built-ins answer PERMISSION_DENIED, anything else NOT_FOUND.
    async fn own_persona(&self, user_id: OwnerId, id: PersonaId) -> Result<PersonaRow, Error> {
        let persona = self
            .store
            .persona(user_id, id)
            .await?
            .ok_or(Error::NotFound("persona"))?;
        if persona.user_id.is_none() {
            return Err(Error::ReadOnly("built-in personas are read-only"));
        }
        Ok(persona)
    }

    pub async fn update_persona(
        &self,
        user_id: OwnerId,
        id: PersonaId,
        change: PersonaChange,
    ) -> Result<PersonaRow, Error> {
        let current = self.own_persona(user_id, id).await?;
        let name = change.name.as_deref().map(str::trim).unwrap_or(&current.name);
        let description = change.description.as_deref().unwrap_or(&current.description);
        let system_prompt = change.system_prompt.as_deref().unwrap_or(&current.system_prompt);
        validate_persona(name, description, system_prompt)?;
        let grows_by = bytes_of(system_prompt) - bytes_of(&current.system_prompt);
        let mut write = self.within_quota(user_id, &[(Quota::StoredBytes, grows_by)]).await?;
        if !write
            .update_persona(id, name, description, system_prompt, now_millis())
            .await?
        {
            return Err(Error::NotFound("persona"));
        }
        write.commit().await?;
        self.store.persona(user_id, id).await?.ok_or(Error::NotFound("persona"))
    }

    pub async fn delete_persona(&self, user_id: OwnerId, id: PersonaId) -> Result<(), Error> {
        self.own_persona(user_id, id).await?;
        if !self.store.delete_persona(user_id, id, now_millis()).await? {
            return Err(Error::NotFound("persona"));
        }
        Ok(())
    }
}

fn validate_persona(name: &str, description: &str, system_prompt: &str) -> Result<(), Error> {
    validation::name("name", name)?;
    validation::description("description", description)?;
    if system_prompt.trim().is_empty() {
        return Err(Error::invalid("system_prompt", "must not be empty"));
    }
    validation::system_prompt("system_prompt", system_prompt)?;
    Ok(())
}
