//! The quota rules: the five limits an account has (operator defaults from flags, overridden
//! per account by an administrator), and the check a write passes before it stores anything.
//! 0 means unlimited everywhere.
//!
//! Stored bytes are the UTF-8 bytes of the text an account stores: its messages' content and
//! reasoning, and the system prompts of its sessions and its own personas (names, titles and
//! descriptions are small and capped by validation; API configs have their own count). They
//! are checked when the user adds text (a question, a prompt, an edit that grows); an answer
//! being generated is never cut short by them, so an account can pass its limit by at most one
//! answer, after which new questions are refused until it deletes something.

use crate::Error;
use crate::store::{OwnerUsage, QuotaOverrides};

/// A day in milliseconds: daily quotas run from one UTC midnight to the next.
pub const DAY_MILLIS: i64 = 86_400_000;

pub const DEFAULT_STORED_BYTES: i64 = 100 * 1024 * 1024;
pub const DEFAULT_SESSIONS: i64 = 1000;
pub const DEFAULT_PERSONAS: i64 = 50;
pub const DEFAULT_API_CONFIGS: i64 = 20;
pub const DEFAULT_MESSAGES_PER_DAY: i64 = 1000;

/// The quotas an account has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    StoredBytes,
    Sessions,
    Personas,
    ApiConfigs,
    MessagesPerDay,
}

impl Quota {
    pub const ALL: [Quota; 5] = [
        Self::StoredBytes,
        Self::Sessions,
        Self::Personas,
        Self::ApiConfigs,
        Self::MessagesPerDay,
    ];

    /// Its name in flags (`--quota-<name>` with dashes), protos and error details.
    pub fn name(self) -> &'static str {
        match self {
            Self::StoredBytes => "stored_bytes",
            Self::Sessions => "sessions",
            Self::Personas => "personas",
            Self::ApiConfigs => "api_configs",
            Self::MessagesPerDay => "messages_per_day",
        }
    }

    /// What counts toward it, for messages to people.
    fn what(self) -> &'static str {
        match self {
            Self::StoredBytes => "bytes of stored text",
            Self::Sessions => "chat sessions",
            Self::Personas => "personas",
            Self::ApiConfigs => "API configs",
            Self::MessagesPerDay => "messages per day",
        }
    }
}

/// One limit per quota (0: unlimited): the operator's defaults, or an account's limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct QuotaLimits {
    /// Bytes of text one account may store (messages, session and persona system prompts);
    /// 0: unlimited.
    #[arg(long = "quota-stored-bytes", env = "PARLEY_QUOTA_STORED_BYTES", default_value_t = DEFAULT_STORED_BYTES, value_parser = clap::value_parser!(i64).range(0..))]
    pub stored_bytes: i64,
    /// Chat sessions one account may keep; 0: unlimited.
    #[arg(long = "quota-sessions", env = "PARLEY_QUOTA_SESSIONS", default_value_t = DEFAULT_SESSIONS, value_parser = clap::value_parser!(i64).range(0..))]
    pub sessions: i64,
    /// Personas of its own one account may keep; 0: unlimited.
    #[arg(long = "quota-personas", env = "PARLEY_QUOTA_PERSONAS", default_value_t = DEFAULT_PERSONAS, value_parser = clap::value_parser!(i64).range(0..))]
    pub personas: i64,
    /// API configs one account may keep; 0: unlimited.
    #[arg(long = "quota-api-configs", env = "PARLEY_QUOTA_API_CONFIGS", default_value_t = DEFAULT_API_CONFIGS, value_parser = clap::value_parser!(i64).range(0..))]
    pub api_configs: i64,
    /// Questions and regenerations one account may send per UTC day; 0: unlimited.
    #[arg(long = "quota-messages-per-day", env = "PARLEY_QUOTA_MESSAGES_PER_DAY", default_value_t = DEFAULT_MESSAGES_PER_DAY, value_parser = clap::value_parser!(i64).range(0..))]
    pub messages_per_day: i64,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        Self {
            stored_bytes: DEFAULT_STORED_BYTES,
            sessions: DEFAULT_SESSIONS,
            personas: DEFAULT_PERSONAS,
            api_configs: DEFAULT_API_CONFIGS,
            messages_per_day: DEFAULT_MESSAGES_PER_DAY,
        }
    }
}

impl QuotaLimits {
    /// Every quota unlimited.
    pub const UNLIMITED: Self = Self {
        stored_bytes: 0,
        sessions: 0,
        personas: 0,
        api_configs: 0,
        messages_per_day: 0,
    };

    pub fn get(&self, quota: Quota) -> i64 {
        match quota {
            Quota::StoredBytes => self.stored_bytes,
            Quota::Sessions => self.sessions,
            Quota::Personas => self.personas,
            Quota::ApiConfigs => self.api_configs,
            Quota::MessagesPerDay => self.messages_per_day,
        }
    }

    /// These defaults with an account's overrides applied.
    pub fn overridden_by(&self, overrides: &QuotaOverrides) -> Self {
        Self {
            stored_bytes: overrides.stored_bytes.unwrap_or(self.stored_bytes),
            sessions: overrides.sessions.unwrap_or(self.sessions),
            personas: overrides.personas.unwrap_or(self.personas),
            api_configs: overrides.api_configs.unwrap_or(self.api_configs),
            messages_per_day: overrides.messages_per_day.unwrap_or(self.messages_per_day),
        }
    }

    /// Refuses a write that would take `quota` past its limit: `adding` more on top of what
    /// `usage` holds now. Adding nothing (or less) always passes, so that an account over its
    /// limit (the limit was lowered) can still shrink.
    pub fn check(&self, quota: Quota, usage: &OwnerUsage, adding: i64, now: i64) -> Result<(), Error> {
        let limit = self.get(quota);
        if limit == 0 || adding <= 0 {
            return Ok(());
        }
        let used = match quota {
            Quota::StoredBytes => usage.stored_bytes,
            Quota::Sessions => usage.sessions,
            Quota::Personas => usage.personas,
            Quota::ApiConfigs => usage.api_configs,
            Quota::MessagesPerDay => usage.messages_today,
        };
        if used.saturating_add(adding) <= limit {
            return Ok(());
        }
        Err(Error::QuotaExceeded(QuotaExceeded {
            quota,
            limit,
            resets_at: (quota == Quota::MessagesPerDay).then(|| next_day_start(now)),
        }))
    }
}

/// A write refused by a quota: which, its limit, and (daily quotas) when it resets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub quota: Quota,
    pub limit: i64,
    /// Unix milliseconds.
    pub resets_at: Option<i64>,
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { quota, limit, .. } = self;
        write!(f, "quota exceeded ({}): ", quota.name())?;
        match quota {
            Quota::StoredBytes => write!(
                f,
                "this would store more than {limit} bytes of text ({}), this account's limit; \
                 delete chats, messages or personas to make room",
                human_bytes(*limit)
            ),
            Quota::MessagesPerDay => {
                write!(f, "this account may send at most {limit} {}", quota.what())?;
                match self.resets_at.map(rfc3339) {
                    Some(at) => write!(f, "; the count starts again at {at}"),
                    None => Ok(()),
                }
            }
            _ => write!(
                f,
                "this account may keep at most {limit} {}; delete one to add another",
                quota.what()
            ),
        }
    }
}

/// The first millisecond of the UTC day `now` falls in.
pub fn day_start(now: i64) -> i64 {
    now.div_euclid(DAY_MILLIS) * DAY_MILLIS
}

/// The next UTC midnight after `now`.
pub fn next_day_start(now: i64) -> i64 {
    day_start(now) + DAY_MILLIS
}

/// The UTC day `now` falls in, as days since the Unix epoch (how daily counts are keyed).
pub fn day_number(now: i64) -> i64 {
    now.div_euclid(DAY_MILLIS)
}

fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = "bytes";
    for next in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    if unit == "bytes" {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// Unix milliseconds as an RFC 3339 UTC time.
pub fn rfc3339(millis: i64) -> String {
    parley_proto::timestamp::from_unix_millis(millis).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn usage(stored_bytes: i64, sessions: i64, messages_today: i64) -> OwnerUsage {
        OwnerUsage {
            stored_bytes,
            sessions,
            messages_today,
            ..OwnerUsage::default()
        }
    }

    #[test]
    fn counts_refuse_the_one_past_the_limit() {
        let limits = QuotaLimits {
            sessions: 2,
            ..QuotaLimits::UNLIMITED
        };
        assert!(limits.check(Quota::Sessions, &usage(0, 1, 0), 1, 0).is_ok());
        let refused = limits.check(Quota::Sessions, &usage(0, 2, 0), 1, 0).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "quota exceeded (sessions): this account may keep at most 2 chat sessions; delete one to add another"
        );
    }

    #[test]
    fn zero_is_unlimited_and_shrinking_always_passes() {
        let unlimited = QuotaLimits::UNLIMITED;
        assert!(
            unlimited
                .check(Quota::StoredBytes, &usage(i64::MAX, 0, 0), 10, 0)
                .is_ok()
        );
        let tight = QuotaLimits {
            stored_bytes: 10,
            ..QuotaLimits::UNLIMITED
        };
        assert!(tight.check(Quota::StoredBytes, &usage(50, 0, 0), -5, 0).is_ok());
        assert!(tight.check(Quota::StoredBytes, &usage(5, 0, 0), 5, 0).is_ok());
        assert!(tight.check(Quota::StoredBytes, &usage(5, 0, 0), 6, 0).is_err());
    }

    #[test]
    fn the_daily_quota_says_when_it_resets() {
        let limits = QuotaLimits {
            messages_per_day: 3,
            ..QuotaLimits::UNLIMITED
        };
        // 2026-12-03T13:00:00Z.
        let now = 1_796_302_800_000;
        let Err(Error::QuotaExceeded(refused)) = limits.check(Quota::MessagesPerDay, &usage(0, 0, 3), 1, now) else {
            panic!("not refused");
        };
        assert_eq!(refused.resets_at, Some(1_796_342_400_000));
        assert_eq!(
            refused.to_string(),
            "quota exceeded (messages_per_day): this account may send at most 3 messages per day; \
             the count starts again at 2026-12-04T00:00:00Z"
        );
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let overrides = QuotaOverrides {
            sessions: Some(0),
            personas: Some(7),
            ..QuotaOverrides::default()
        };
        let limits = QuotaLimits::default().overridden_by(&overrides);
        assert_eq!(limits.sessions, 0);
        assert_eq!(limits.personas, 7);
        assert_eq!(limits.stored_bytes, DEFAULT_STORED_BYTES);
    }

    #[test]
    fn bytes_read_as_people_would() {
        assert_eq!(human_bytes(100 * 1024 * 1024), "100.0 MiB");
        assert_eq!(human_bytes(512), "512 bytes");
    }
}
