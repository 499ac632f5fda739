//! Caps on calls in flight. Past the global cap (open streams included), new calls are refused
//! at once with RESOURCE_EXHAUSTED and a retry delay, instead of piling up behind the ones
//! running. Past the per-user cap on open streams, that user's next stream is refused the same
//! way, so one user cannot take every slot of the global cap.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parley_service_kit::access_token::AuthenticatedUser;
use parley_service_kit::grpc_status::resource_exhausted;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::admission::Admission;

const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The global cap.
pub(crate) struct CallsInFlight {
    permits: Arc<Semaphore>,
}

impl CallsInFlight {
    /// `max` is at least 1 and at most a million (`Config::validate`).
    pub(crate) fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
        }
    }
}

impl Admission for CallsInFlight {
    type Ticket = OwnedSemaphorePermit;

    fn admit<B>(&self, request: &http::Request<B>) -> Result<OwnedSemaphorePermit, tonic::Status> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            tracing::warn!(method = %request.uri().path(), "shedding load: too many calls in flight");
            resource_exhausted("the server is busy", RETRY_AFTER)
        })
    }
}

/// Open streams per user, capped. Runs after auth: only a signed-in caller's streams count
/// (the public methods are unary).
pub(crate) struct StreamsPerUser {
    /// The streaming methods of the routed services.
    methods: HashSet<String>,
    max_per_user: usize,
    open: Arc<Mutex<HashMap<i64, usize>>>,
}

impl StreamsPerUser {
    pub(crate) fn new(streaming_methods: HashSet<String>, max_per_user: usize) -> Self {
        Self {
            methods: streaming_methods,
            max_per_user,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn take(&self, user_id: i64) -> Option<StreamSlot> {
        let mut open = self.open.lock().ok()?;
        let count = open.entry(user_id).or_insert(0);
        if *count >= self.max_per_user {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            open: Arc::clone(&self.open),
            user_id,
        })
    }
}

/// One open stream of a user; gives its slot back when dropped.
pub(crate) struct StreamSlot {
    open: Arc<Mutex<HashMap<i64, usize>>>,
    user_id: i64,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock()
            && let Some(count) = open.get_mut(&self.user_id)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

impl Admission for StreamsPerUser {
    /// `None` for calls that are not a signed-in user's stream.
    type Ticket = Option<StreamSlot>;

    fn admit<B>(&self, request: &http::Request<B>) -> Result<Option<StreamSlot>, tonic::Status> {
        let path = request.uri().path();
        let Some(user) = request.extensions().get::<AuthenticatedUser>() else {
            return Ok(None);
        };
        if !self.methods.contains(path) {
            return Ok(None);
        }
        match self.take(user.user_id) {
            Some(slot) => Ok(Some(slot)),
            None => {
                tracing::info!(
                    user_id = user.user_id,
                    method = path,
                    "too many open streams for one user"
                );
                Err(resource_exhausted(
                    "too many streams open at once for this account",
                    RETRY_AFTER,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_slots_are_per_user_and_come_back() {
        let streams = StreamsPerUser::new(HashSet::new(), 2);
        let first = streams.take(1);
        let second = streams.take(1);
        assert!(first.is_some() && second.is_some());
        assert!(streams.take(1).is_none());
        assert!(streams.take(2).is_some(), "another user has their own slots");
        drop(first);
        let third = streams.take(1);
        assert!(third.is_some());
        drop((second, third));
        let remembered = streams.open.lock().map(|open| open.len()).unwrap_or(usize::MAX);
        assert_eq!(remembered, 0, "a user with no stream is forgotten");
    }
}
