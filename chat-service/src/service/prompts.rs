//! The prompt library: a user's saved prompts, inserted in the composer with `/command`,
//! and the variables (`{{topic}}`) their bodies hold.

use parley_service_kit::database::{is_unique_violation, now_millis};

use super::ChatService;
use crate::Error;
use crate::ids::{OwnerId, PromptId};
use crate::store::{PromptFields, PromptRow};
use crate::validation;

/// How many prompts and folders an account may keep, and how long a prompt may be.
#[derive(Debug, Clone, Copy)]
pub struct LibraryLimits {
    pub max_prompts: i64,
    pub max_prompt_bytes: usize,
    pub max_folders: i64,
}

impl Default for LibraryLimits {
    fn default() -> Self {
        Self {
            max_prompts: 200,
            max_prompt_bytes: 16 * 1024,
            max_folders: 100,
        }
    }
}

/// The longest command, in characters.
pub const MAX_COMMAND_CHARS: usize = 32;
/// The longest variable name, in characters; longer `{{…}}` is left as text.
pub const MAX_VARIABLE_CHARS: usize = 32;

/// Prompt fields to change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct PromptChange {
    pub title: Option<String>,
    pub command: Option<String>,
    pub body: Option<String>,
}

impl ChatService {
    pub fn with_library_limits(mut self, limits: LibraryLimits) -> Self {
        self.library = limits;
        self
    }

    pub async fn list_prompts(&self, user_id: OwnerId) -> Result<Vec<PromptRow>, Error> {
        Ok(self.store.prompts(user_id).await?)
    }

    pub async fn create_prompt(
        &self,
        user_id: OwnerId,
        title: &str,
        command: &str,
        body: &str,
    ) -> Result<PromptRow, Error> {
        let fields = PromptFields {
            title: title.trim(),
            command: command.trim(),
            body,
        };
        self.validate_prompt(&fields)?;
        let mut write = self.within_quota(user_id, &[]).await?;
        let kept = write.count_prompts().await?;
        if kept >= self.library.max_prompts {
            return Err(Error::LimitReached(format!(
                "you may keep at most {} prompts; delete one first",
                self.library.max_prompts
            )));
        }
        let id = write
            .insert_prompt(fields, now_millis())
            .await
            .map_err(|e| command_taken(e.into()))?;
        write.commit().await.map_err(|e| command_taken(e.into()))?;
        self.prompt(user_id, id).await
    }

    pub async fn update_prompt(
        &self,
        user_id: OwnerId,
        id: PromptId,
        change: PromptChange,
    ) -> Result<PromptRow, Error> {
        let current = self.prompt(user_id, id).await?;
        let fields = PromptFields {
            title: change.title.as_deref().map(str::trim).unwrap_or(&current.title),
            command: change.command.as_deref().map(str::trim).unwrap_or(&current.command),
            body: change.body.as_deref().unwrap_or(&current.body),
        };
        self.validate_prompt(&fields)?;
        let updated = self
            .store
            .update_prompt(user_id, id, fields, now_millis())
            .await
            .map_err(|e| command_taken(e.into()))?;
        if !updated {
            return Err(Error::NotFound("prompt"));
        }
        self.prompt(user_id, id).await
    }

    pub async fn delete_prompt(&self, user_id: OwnerId, id: PromptId) -> Result<(), Error> {
        if !self.store.delete_prompt(user_id, id).await? {
            return Err(Error::NotFound("prompt"));
        }
        Ok(())
    }

    async fn prompt(&self, user_id: OwnerId, id: PromptId) -> Result<PromptRow, Error> {
        self.store.prompt(user_id, id).await?.ok_or(Error::NotFound("prompt"))
    }

    fn validate_prompt(&self, fields: &PromptFields<'_>) -> Result<(), Error> {
        validation::name("title", fields.title)?;
        validate_command(fields.command)?;
        if fields.body.trim().is_empty() {
            return Err(Error::invalid("body", "must not be empty"));
        }
        if fields.body.contains('\0') {
            return Err(Error::invalid("body", "must not contain NUL characters"));
        }
        if fields.body.len() > self.library.max_prompt_bytes {
            return Err(Error::invalid(
                "body",
                format!("must be at most {} bytes", self.library.max_prompt_bytes),
            ));
        }
        Ok(())
    }
}

/// 1–32 of a–z, 0–9, `-` and `_`, starting with a letter or digit: what the composer can
/// match after `/` without ambiguity.
fn validate_command(command: &str) -> Result<(), Error> {
    let mut chars = command.chars();
    let Some(first) = chars.next() else {
        return Err(Error::invalid("command", "must not be empty"));
    };
    if command.chars().count() > MAX_COMMAND_CHARS {
        return Err(Error::invalid(
            "command",
            format!("must be at most {MAX_COMMAND_CHARS} characters"),
        ));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !allowed(first) || !chars.all(|c| allowed(c) || c == '-' || c == '_') {
        return Err(Error::invalid(
            "command",
            "must be lowercase letters, digits, '-' or '_', starting with a letter or digit",
        ));
    }
    Ok(())
}

fn command_taken(error: Error) -> Error {
    match error {
        Error::Database(e) if is_unique_violation(&e) => Error::AlreadyExists {
            field: "command",
            reason: "you already have a prompt with this command".to_owned(),
        },
        other => other,
    }
}

/// The variable names in `body` (`{{name}}`, spaces inside the braces allowed: a letter or
/// `_`, then letters, digits or `_`), each once, in order of first appearance. Anything else
/// between braces is text.
pub fn prompt_variables(body: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let name = after[..close].trim();
        if is_variable_name(name) && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
        rest = if is_variable_name(name) {
            &after[close + 2..]
        } else {
            &rest[open + 1..]
        };
    }
    names
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_VARIABLE_CHARS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_named_once_in_order() {
        assert_eq!(
            prompt_variables("Explain {{topic}} to a {{ audience }}; {{topic}} again, {{}} {{not a var}} {{x1_}}"),
            ["topic", "audience", "x1_"]
        );
        assert!(prompt_variables("no {{ variables here").is_empty());
        assert_eq!(prompt_variables("{{{a}}}"), ["a"]);
    }

    #[test]
    fn commands_are_short_lowercase_words() {
        assert!(validate_command("summarize").is_ok());
        assert!(validate_command("fix-code_2").is_ok());
        for bad in ["", "Upper", "-dash", "with space", "é", &"a".repeat(33)] {
            assert!(validate_command(bad).is_err(), "{bad:?} passed");
        }
    }
}
