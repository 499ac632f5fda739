//! The knobs of how generations run.

use std::time::Duration;

/// Knobs of how generations run.
#[derive(Debug, Clone)]
pub struct GenerationSettings {
    /// Estimated tokens of history (system prompt included) sent with each question.
    pub context_budget_tokens: usize,
    /// At most this many past messages are read to fill the budget.
    pub history_limit: i64,
    /// How often a growing answer is written to the database.
    pub persist_interval: Duration,
    /// A generation running longer is ended (FAILED, DEADLINE_EXCEEDED, content kept). Storing
    /// its end, when the database refuses for a while, is retried for as long again.
    pub max_duration: Duration,
    /// Generations one user may run at once (over all sessions; on a shared PostgreSQL
    /// database, over all instances).
    pub max_per_user: usize,
    /// Give untitled sessions a title after their first answer.
    pub generate_titles: bool,
    /// A running answer's row is touched at least this often, even while the model is
    /// silent, so other instances can tell it is alive; the same write reads stop requests
    /// made through other instances.
    pub heartbeat_interval: Duration,
    /// A STREAMING row untouched this long belongs to a process that died: it is marked
    /// FAILED (on PostgreSQL, where several instances may share the database; SQLite's file
    /// has one instance, so there every STREAMING row found at start is such a leftover).
    pub stale_after: Duration,
    /// An answer (its text and reasoning together) ends at this many bytes, as it would at
    /// the model's own length limit: COMPLETE, with a note saying it was cut.
    pub max_answer_bytes: usize,
}

/// 256 KiB: far beyond any real answer, small enough that a model talking without end costs
/// little memory and database space.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 256 * 1024;

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            context_budget_tokens: 8_000,
            history_limit: 200,
            persist_interval: Duration::from_millis(250),
            max_duration: Duration::from_secs(10 * 60),
            max_per_user: 4,
            generate_titles: true,
            heartbeat_interval: Duration::from_secs(5),
            stale_after: Duration::from_secs(30),
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
        }
    }
}
