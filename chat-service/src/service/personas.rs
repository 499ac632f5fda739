//! Personas: the built-in ones (read-only) and a user's own.

use parley_service_kit::database::now_millis;

use super::ChatService;
use super::quotas::bytes_of;
use crate::Error;
use crate::ids::{OwnerId, PersonaId};
use crate::quota::Quota;
use crate::store::{PersonaFields, PersonaRow, SessionRow};
use crate::validation;

#[derive(Debug, Default)]
pub struct PersonaChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub system_prompt: Option<String>,
    pub avatar: Option<String>,
}

/// The longest avatar, in bytes: room for an emoji with modifiers, or a few characters.
pub const MAX_AVATAR_BYTES: usize = 16;

impl ChatService {
    /// Built-ins first, then the user's own, each with how many of the user's chats use it.
    pub async fn list_personas(&self, user_id: OwnerId) -> Result<Vec<PersonaRow>, Error> {
        let mut rows = self.store.personas(user_id).await?;
        let counts = self.store.sessions_per_persona(user_id).await?;
        for row in &mut rows {
            row.session_count = counts.get(&row.id).copied().unwrap_or(0);
        }
        Ok(rows)
    }

    /// The persona a session's answers are written as now (None: none, or deleted).
    pub(super) async fn persona_of(&self, user_id: OwnerId, session: &SessionRow) -> Result<Option<PersonaRow>, Error> {
        Ok(match session.persona_id {
            Some(id) => self.store.persona(user_id, id).await?,
            None => None,
        })
    }

    /// One persona the user can see, with how many of the user's chats use it.
    async fn persona_with_count(&self, user_id: OwnerId, id: PersonaId) -> Result<PersonaRow, Error> {
        let mut row = self
            .store
            .persona(user_id, id)
            .await?
            .ok_or(Error::NotFound("persona"))?;
        row.session_count = self
            .store
            .sessions_per_persona(user_id)
            .await?
            .get(&id)
            .copied()
            .unwrap_or(0);
        Ok(row)
    }

    pub async fn create_persona(
        &self,
        user_id: OwnerId,
        name: &str,
        description: &str,
        system_prompt: &str,
        avatar: &str,
    ) -> Result<PersonaRow, Error> {
        let fields = PersonaFields {
            name: name.trim(),
            description,
            system_prompt,
            avatar: avatar.trim(),
        };
        validate_persona(&fields)?;
        let mut write = self
            .within_quota(
                user_id,
                &[(Quota::Personas, 1), (Quota::StoredBytes, bytes_of(system_prompt))],
            )
            .await?;
        let id = write.insert_persona(&fields, now_millis()).await?;
        write.commit().await?;
        self.persona_with_count(user_id, id).await
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
        let avatar = change.avatar.as_deref().map(str::trim).unwrap_or(&current.avatar);
        let fields = PersonaFields {
            name,
            description,
            system_prompt,
            avatar,
        };
        validate_persona(&fields)?;
        let grows_by = bytes_of(system_prompt) - bytes_of(&current.system_prompt);
        let mut write = self.within_quota(user_id, &[(Quota::StoredBytes, grows_by)]).await?;
        if !write.update_persona(id, &fields, now_millis()).await? {
            return Err(Error::NotFound("persona"));
        }
        write.commit().await?;
        self.persona_with_count(user_id, id).await
    }

    /// Deletes the user's persona; the chats that used it keep their system prompt and have
    /// no persona from now on (their answers keep its name and avatar). Answers how many.
    pub async fn delete_persona(&self, user_id: OwnerId, id: PersonaId) -> Result<u64, Error> {
        self.own_persona(user_id, id).await?;
        self.store
            .delete_persona(user_id, id, now_millis())
            .await?
            .ok_or(Error::NotFound("persona"))
    }
}

fn validate_persona(fields: &PersonaFields<'_>) -> Result<(), Error> {
    validation::name("name", fields.name)?;
    validation::description("description", fields.description)?;
    if fields.system_prompt.trim().is_empty() {
        return Err(Error::invalid("system_prompt", "must not be empty"));
    }
    validation::system_prompt("system_prompt", fields.system_prompt)?;
    if fields.avatar.len() > MAX_AVATAR_BYTES {
        return Err(Error::invalid(
            "avatar",
            format!("must be at most {MAX_AVATAR_BYTES} bytes"),
        ));
    }
    if fields.avatar.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            "avatar",
            "must not contain spaces or control characters",
        ));
    }
    Ok(())
}
