//! Each account's defaults for new chats (persona, system prompt, sampling), which
//! CreateSession applies to what a request leaves unset.

use parley_service_kit::database::now_millis;

use super::ChatService;
use crate::Error;
use crate::ids::{OwnerId, PersonaId};
use crate::store::ChatDefaultsRow;
use crate::validation;

/// Default fields to change; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct ChatDefaultsChange {
    pub persona_id: Option<Option<PersonaId>>,
    pub system_prompt: Option<String>,
    pub temperature: Option<Option<f64>>,
    pub top_p: Option<Option<f64>>,
    pub max_tokens: Option<Option<i64>>,
}

impl ChatService {
    pub async fn chat_defaults(&self, owner: OwnerId) -> Result<ChatDefaultsRow, Error> {
        Ok(self.store.chat_defaults(owner).await?)
    }

    pub async fn update_chat_defaults(
        &self,
        owner: OwnerId,
        change: ChatDefaultsChange,
    ) -> Result<ChatDefaultsRow, Error> {
        let current = self.store.chat_defaults(owner).await?;
        let next = ChatDefaultsRow {
            persona_id: change.persona_id.unwrap_or(current.persona_id),
            system_prompt: change.system_prompt.unwrap_or(current.system_prompt),
            temperature: change.temperature.unwrap_or(current.temperature),
            top_p: change.top_p.unwrap_or(current.top_p),
            max_tokens: change.max_tokens.unwrap_or(current.max_tokens),
            updated_at: None,
        };
        validation::system_prompt("system_prompt", &next.system_prompt)?;
        validation::generation_params(&next.params())?;
        if let Some(Some(id)) = change.persona_id {
            self.store.persona(owner, id).await?.ok_or(Error::NotFound("persona"))?;
        }
        self.store.put_chat_defaults(owner, &next, now_millis()).await?;
        self.chat_defaults(owner).await
    }
}
