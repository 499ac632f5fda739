//! The model lists providers gave, kept for a while per API config, so the model picker does
//! not ask every provider each time it opens. No I/O: the service fills and reads it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ids::ApiConfigId;

/// How long a provider's list is answered from the cache.
pub const MODEL_LIST_TTL: Duration = Duration::from_secs(10 * 60);

/// Lists kept at most; past it the cache starts over (each entry is one provider call).
const CAPACITY: usize = 10_000;

/// A provider's model list as read at `fetched_at` (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelList {
    pub models: Vec<String>,
    pub fetched_at: i64,
}

struct Entry {
    /// The config's `updated_at` when the list was read: an edited config (another URL or
    /// key) is asked again.
    config_updated_at: i64,
    stored: Instant,
    list: ModelList,
}

pub struct ModelCache {
    ttl: Duration,
    entries: Mutex<HashMap<ApiConfigId, Entry>>,
}

impl Default for ModelCache {
    fn default() -> Self {
        Self::new(MODEL_LIST_TTL)
    }
}

impl ModelCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The list of config `id` as it is now (`updated_at`), if read within the TTL.
    pub fn get(&self, id: ApiConfigId, updated_at: i64) -> Option<ModelList> {
        let entries = self.lock();
        let entry = entries.get(&id)?;
        (entry.config_updated_at == updated_at && entry.stored.elapsed() < self.ttl).then(|| entry.list.clone())
    }

    pub fn put(&self, id: ApiConfigId, updated_at: i64, list: ModelList) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.retain(|_, e| e.stored.elapsed() < self.ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            id,
            Entry {
                config_updated_at: updated_at,
                stored: Instant::now(),
                list,
            },
        );
    }

    /// Drops the list of a deleted config.
    pub fn forget(&self, id: ApiConfigId) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ApiConfigId, Entry>> {
        // A panic while holding the lock leaves a plain map behind; keep using it.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The models to offer: the provider's, sorted, once each, with the config's own model among
/// them (a provider may not list the model it serves, e.g. an alias).
pub fn model_choices(mut listed: Vec<String>, default_model: &str) -> Vec<String> {
    listed.retain(|m| !m.trim().is_empty());
    if !default_model.is_empty() {
        listed.push(default_model.to_owned());
    }
    listed.sort();
    listed.dedup();
    listed
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn list(models: &[&str]) -> ModelList {
        ModelList {
            models: models.iter().map(|m| m.to_string()).collect(),
            fetched_at: 1,
        }
    }

    #[test]
    fn a_list_is_kept_until_the_config_changes_or_it_expires() {
        let cache = ModelCache::new(Duration::from_secs(60));
        let id = ApiConfigId(7);
        assert_eq!(cache.get(id, 10), None);
        cache.put(id, 10, list(&["a"]));
        assert_eq!(cache.get(id, 10), Some(list(&["a"])));
        // Edited since: asked again.
        assert_eq!(cache.get(id, 11), None);
        cache.forget(id);
        assert_eq!(cache.get(id, 10), None);

        let expired = ModelCache::new(Duration::ZERO);
        expired.put(id, 10, list(&["a"]));
        assert_eq!(expired.get(id, 10), None);
    }

    #[test]
    fn choices_are_sorted_unique_and_hold_the_default() {
        let listed = vec!["b".to_owned(), "a".to_owned(), "b".to_owned(), " ".to_owned()];
        assert_eq!(model_choices(listed, "c"), vec!["a", "b", "c"]);
        assert_eq!(model_choices(vec!["a".to_owned()], "a"), vec!["a"]);
        assert_eq!(model_choices(Vec::new(), ""), Vec::<String>::new());
    }
}
