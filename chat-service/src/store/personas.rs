//! `personas`: the built-in ones (no owner) and users' own.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::{ChatStore, PERSONA_COLUMNS, PersonaRow};
use crate::ids::{OwnerId, PersonaId};

/// A persona's fields as written.
#[derive(Debug, Clone, Copy)]
pub struct PersonaFields<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub system_prompt: &'a str,
    pub avatar: &'a str,
}

impl ChatStore {
    /// How many of the user's sessions use each persona.
    pub async fn sessions_per_persona(&self, user_id: OwnerId) -> Result<HashMap<PersonaId, i64>, sqlx::Error> {
        let rows: Vec<(PersonaId, i64)> = sqlx::query_as(
            "SELECT persona_id, CAST(COUNT(*) AS BIGINT) FROM chat_sessions \
             WHERE user_id = $1 AND persona_id IS NOT NULL GROUP BY persona_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Built-ins first, then the user's own, oldest first.
    pub async fn personas(&self, user_id: OwnerId) -> Result<Vec<PersonaRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSONA_COLUMNS} FROM personas WHERE user_id IS NULL OR user_id = $1 \
             ORDER BY CASE WHEN user_id IS NULL THEN 0 ELSE 1 END, id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
    }

    /// A persona the user can see: built in, or their own.
    pub async fn persona(&self, user_id: OwnerId, id: PersonaId) -> Result<Option<PersonaRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSONA_COLUMNS} FROM personas WHERE id = $1 AND (user_id IS NULL OR user_id = $2)"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn insert_persona(
        &self,
        user_id: OwnerId,
        fields: &PersonaFields<'_>,
        now: i64,
    ) -> Result<PersonaId, sqlx::Error> {
        Self::insert_persona_in(&mut *self.pool.acquire().await?, user_id, fields, now).await
    }

    pub(super) async fn insert_persona_in(
        conn: &mut AnyConnection,
        user_id: OwnerId,
        fields: &PersonaFields<'_>,
        now: i64,
    ) -> Result<PersonaId, sqlx::Error> {
        let (id,): (PersonaId,) = sqlx::query_as(
            "INSERT INTO personas (user_id, name, description, system_prompt, avatar, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(user_id)
        .bind(fields.name)
        .bind(fields.description)
        .bind(fields.system_prompt)
        .bind(fields.avatar)
        .bind(now)
        .fetch_one(conn)
        .await?;
        Ok(id)
    }

    /// Only the user's own personas change; built-ins (user_id NULL) never match.
    pub async fn update_persona(
        &self,
        user_id: OwnerId,
        id: PersonaId,
        fields: &PersonaFields<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        Self::update_persona_in(&mut *self.pool.acquire().await?, user_id, id, fields, now).await
    }

    pub(super) async fn update_persona_in(
        conn: &mut AnyConnection,
        user_id: OwnerId,
        id: PersonaId,
        fields: &PersonaFields<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE personas SET name = $1, description = $2, system_prompt = $3, avatar = $4, updated_at = $5 \
             WHERE id = $6 AND user_id = $7",
        )
        .bind(fields.name)
        .bind(fields.description)
        .bind(fields.system_prompt)
        .bind(fields.avatar)
        .bind(now)
        .bind(id)
        .bind(user_id)
        .execute(conn)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Sessions started from it keep their copied prompt and forget the persona. None when
    /// the user has no such persona; else how many sessions used it.
    pub async fn delete_persona(&self, user_id: OwnerId, id: PersonaId, now: i64) -> Result<Option<u64>, sqlx::Error> {
        self.delete_referenced(
            "DELETE FROM personas WHERE id = $1 AND user_id = $2",
            "UPDATE chat_sessions SET persona_id = NULL, updated_at = $1 WHERE persona_id = $2 AND user_id = $3",
            user_id,
            id.0,
            now,
        )
        .await
    }
}
