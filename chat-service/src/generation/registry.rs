//! The running generations of this process: one per session, a few per user, found by
//! session and by message; stops (also of a generation still starting) and shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::log::{Generation, StopReason, lock};
use crate::Error;
use crate::ids::{MessageId, OwnerId, SessionId};

/// A stop asked for while the session's slot was still only reserved.
#[derive(Clone, Copy)]
struct PendingStop {
    /// The answer to stop; `None`: whichever starts (its session is being deleted).
    message_id: Option<MessageId>,
    reason: StopReason,
}

enum Slot {
    /// Claimed by a request that is still storing its messages.
    Reserved {
        user_id: OwnerId,
        /// Every stop asked for meanwhile, oldest first: one may name another answer than the
        /// one that starts, so none may be dropped for an earlier one.
        stops: Vec<PendingStop>,
    },
    Running(Arc<Generation>),
}

impl Slot {
    fn user_id(&self) -> OwnerId {
        match self {
            Slot::Reserved { user_id, .. } => *user_id,
            Slot::Running(generation) => generation.user_id,
        }
    }
}

/// What asking for a stop reached.
pub enum StopTarget {
    /// The generation, running here; it was asked to stop.
    Running(Arc<Generation>),
    /// A request here is still starting a generation in the session; it stops as soon as it
    /// starts.
    Starting,
    /// Nothing runs here: the answer is finished, or another instance writes it.
    NotHere,
}

#[derive(Default)]
struct RegistryState {
    /// The slot of each session that is generating (or about to).
    sessions: HashMap<SessionId, Slot>,
    /// Generations by message, until their log is closed: after the answer is stored a
    /// generation may still add the session's new title, which late followers should see.
    messages: HashMap<MessageId, Arc<Generation>>,
    shutting_down: bool,
    /// Shutdown began: new generations are refused, running ones may still finish.
    draining: bool,
}

/// The running generations of this process.
pub struct GenerationRegistry {
    state: Mutex<RegistryState>,
    pub(super) tasks: TaskTracker,
    /// Cancelled on shutdown: ends the extras (titles) of answers already stored, and the
    /// retrying of final writes.
    pub(super) shutdown: CancellationToken,
    max_per_user: usize,
}

impl GenerationRegistry {
    pub fn new(max_per_user: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(RegistryState::default()),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            max_per_user,
        })
    }

    /// Claims `session_id` for a new generation: one per session, a few per user.
    pub fn reserve(self: &Arc<Self>, user_id: OwnerId, session_id: SessionId) -> Result<Reservation, Error> {
        let mut state = lock(&self.state);
        if state.shutting_down || state.draining {
            return Err(Error::ShuttingDown);
        }
        if state.sessions.contains_key(&session_id) {
            return Err(Error::GenerationRunning { session_id });
        }
        let running = state.sessions.values().filter(|s| s.user_id() == user_id).count();
        if running >= self.max_per_user {
            return Err(Error::TooManyGenerations {
                limit: self.max_per_user,
            });
        }
        state.sessions.insert(
            session_id,
            Slot::Reserved {
                user_id,
                stops: Vec::new(),
            },
        );
        Ok(Reservation {
            registry: Arc::clone(self),
            session_id,
            started: false,
        })
    }

    /// The most generations one user may run at once.
    pub fn max_per_user(&self) -> usize {
        self.max_per_user
    }

    /// The generation of `message_id`, if it runs here (or is adding its title).
    pub fn by_message(&self, message_id: MessageId) -> Option<Arc<Generation>> {
        lock(&self.state).messages.get(&message_id).cloned()
    }

    /// Stops the answer `message_id` of `session_id`, if it runs here or is starting here.
    pub fn stop_message(&self, session_id: SessionId, message_id: MessageId, reason: StopReason) -> StopTarget {
        self.stop(session_id, Some(message_id), reason)
    }

    /// Stops whatever generates in `session_id` here, running or starting.
    pub fn stop_session(&self, session_id: SessionId, reason: StopReason) -> StopTarget {
        self.stop(session_id, None, reason)
    }

    fn stop(&self, session_id: SessionId, message_id: Option<MessageId>, reason: StopReason) -> StopTarget {
        let running = {
            let mut state = lock(&self.state);
            let by_message = message_id.and_then(|id| state.messages.get(&id).cloned());
            match (by_message, state.sessions.get_mut(&session_id)) {
                (Some(generation), _) => generation,
                (None, Some(Slot::Running(generation))) if message_id.is_none_or(|id| id == generation.message_id) => {
                    Arc::clone(generation)
                }
                (None, Some(Slot::Reserved { stops, .. })) => {
                    stops.push(PendingStop { message_id, reason });
                    return StopTarget::Starting;
                }
                _ => return StopTarget::NotHere,
            }
        };
        running.request_stop(reason);
        StopTarget::Running(running)
    }

    /// Stops every generation of `owner` here, running or starting (its account is being
    /// erased); answers the running ones, to wait for.
    pub fn stop_owner(&self, owner: OwnerId) -> Vec<Arc<Generation>> {
        let running: Vec<Arc<Generation>> = {
            let mut state = lock(&self.state);
            let mut running = Vec::new();
            for slot in state.sessions.values_mut() {
                match slot {
                    Slot::Running(generation) if generation.user_id == owner => running.push(Arc::clone(generation)),
                    Slot::Reserved { user_id, stops } if *user_id == owner => stops.push(PendingStop {
                        message_id: None,
                        reason: StopReason::SessionDeleted,
                    }),
                    _ => {}
                }
            }
            running
        };
        for generation in &running {
            generation.request_stop(StopReason::SessionDeleted);
        }
        running
    }

    /// How many generations are running.
    pub fn running(&self) -> usize {
        lock(&self.state)
            .sessions
            .values()
            .filter(|slot| matches!(slot, Slot::Running(_)))
            .count()
    }

    /// Frees the generation's session for the next message.
    pub(super) fn release_session(&self, generation: &Arc<Generation>) {
        let mut state = lock(&self.state);
        if matches!(state.sessions.get(&generation.session_id), Some(Slot::Running(g)) if Arc::ptr_eq(g, generation)) {
            state.sessions.remove(&generation.session_id);
        }
    }

    /// Forgets a generation whose log is closed.
    pub(super) fn forget(&self, generation: &Arc<Generation>) {
        self.release_session(generation);
        let mut state = lock(&self.state);
        if matches!(state.messages.get(&generation.message_id), Some(g) if Arc::ptr_eq(g, generation)) {
            state.messages.remove(&generation.message_id);
        }
    }

    /// Stops every running generation (their answers so far are kept, STOPPED) and refuses
    /// new ones.
    pub fn stop_all(&self) {
        let running: Vec<Arc<Generation>> = {
            let mut state = lock(&self.state);
            state.shutting_down = true;
            state.messages.values().cloned().collect()
        };
        self.shutdown.cancel();
        for generation in running {
            generation.request_stop(StopReason::Shutdown);
        }
    }

    /// Refuses new generations and lets the running ones (and those starting) finish for up
    /// to `grace`, then stops the rest ([`GenerationRegistry::stop_all`]). What a rollout
    /// does, so answers are not cut short by it.
    pub async fn drain(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        lock(&self.state).draining = true;
        loop {
            let (running, starting) = {
                let state = lock(&self.state);
                let mut running = Vec::new();
                let mut starting = false;
                for slot in state.sessions.values() {
                    match slot {
                        Slot::Running(generation) => running.push(Arc::clone(generation)),
                        Slot::Reserved { .. } => starting = true,
                    }
                }
                (running, starting)
            };
            if running.is_empty() && !starting {
                break;
            }
            let all_finished = futures::future::join_all(running.iter().map(|g| g.finished()));
            tokio::select! {
                _ = all_finished => {}
                // One still starting is running (or gone) a moment later.
                () = tokio::time::sleep(Duration::from_millis(20)), if starting => {}
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        self.stop_all();
    }

    /// Waits until every generation task has ended, up to `deadline`. False on timeout.
    pub async fn wait_idle(&self, deadline: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(deadline, self.tasks.wait()).await.is_ok()
    }
}

/// A claimed session slot. Dropped without [`Reservation::start`], it frees the slot.
pub struct Reservation {
    pub(super) registry: Arc<GenerationRegistry>,
    session_id: SessionId,
    started: bool,
}

impl Reservation {
    /// Puts the generation into the slot. A stop asked for while the slot was only reserved
    /// (or shutdown, begun meanwhile) applies at once. (Starting its task is the job's:
    /// `Reservation::start` in `job.rs`.)
    pub(super) fn register(&mut self, generation: &Arc<Generation>) {
        let stop = {
            let mut state = lock(&self.registry.state);
            let pending = match state
                .sessions
                .insert(self.session_id, Slot::Running(Arc::clone(generation)))
            {
                Some(Slot::Reserved { stops, .. }) => stops,
                _ => Vec::new(),
            };
            state.messages.insert(generation.message_id, Arc::clone(generation));
            if state.shutting_down {
                Some(StopReason::Shutdown)
            } else {
                // The first stop that is for this answer (or for whatever starts) wins.
                pending
                    .into_iter()
                    .find(|p| p.message_id.is_none_or(|id| id == generation.message_id))
                    .map(|p| p.reason)
            }
        };
        self.started = true;
        if let Some(reason) = stop {
            generation.request_stop(reason);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.started {
            let mut state = lock(&self.registry.state);
            if matches!(state.sessions.get(&self.session_id), Some(Slot::Reserved { .. })) {
                state.sessions.remove(&self.session_id);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::generation::streaming_answer as row;

    #[test]
    fn one_generation_per_session_and_a_few_per_user() {
        let registry = GenerationRegistry::new(2);
        let first = registry.reserve(OwnerId(1), SessionId(100)).unwrap();
        assert!(matches!(
            registry.reserve(OwnerId(1), SessionId(100)),
            Err(Error::GenerationRunning {
                session_id: SessionId(100)
            })
        ));
        let _second = registry.reserve(OwnerId(1), SessionId(101)).unwrap();
        assert!(matches!(
            registry.reserve(OwnerId(1), SessionId(102)),
            Err(Error::TooManyGenerations { limit: 2 })
        ));
        // Another user is not affected.
        let _other = registry.reserve(OwnerId(2), SessionId(200)).unwrap();
        // A reservation that never started frees its slot.
        drop(first);
        assert!(registry.reserve(OwnerId(1), SessionId(100)).is_ok());
    }

    #[test]
    fn shutdown_refuses_new_generations() {
        let registry = GenerationRegistry::new(2);
        registry.stop_all();
        assert!(matches!(
            registry.reserve(OwnerId(1), SessionId(1)),
            Err(Error::ShuttingDown)
        ));
    }

    #[tokio::test]
    async fn draining_refuses_new_generations_lets_running_ones_finish_and_stops_the_rest() {
        let registry = GenerationRegistry::new(4);
        let finishing = Generation::new(OwnerId(1), row(10, 5));
        register(registry.reserve(OwnerId(1), SessionId(5)).unwrap(), &finishing);
        let slow = Generation::new(OwnerId(1), row(11, 6));
        register(registry.reserve(OwnerId(1), SessionId(6)).unwrap(), &slow);

        let mut drain = Box::pin(registry.drain(Duration::from_millis(300)));
        assert!(futures::poll!(&mut drain).is_pending());
        assert!(matches!(
            registry.reserve(OwnerId(2), SessionId(7)),
            Err(Error::ShuttingDown)
        ));
        // One ends within the grace, as its task would: never asked to stop.
        finishing.mark_finished();
        finishing.close();
        registry.forget(&finishing);
        assert!(futures::poll!(&mut drain).is_pending());
        assert!(slow.stopped_for().is_none());
        // The other is still running when the grace is over: stopped, as at a plain shutdown.
        drain.await;
        assert_eq!(slow.stopped_for(), Some(StopReason::Shutdown));
        assert!(finishing.stopped_for().is_none());
        // With no grace the running ones are stopped at once.
        let registry = GenerationRegistry::new(4);
        let running = Generation::new(OwnerId(1), row(12, 8));
        register(registry.reserve(OwnerId(1), SessionId(8)).unwrap(), &running);
        registry.drain(Duration::ZERO).await;
        assert_eq!(running.stopped_for(), Some(StopReason::Shutdown));
    }

    fn register(reservation: Reservation, generation: &Arc<Generation>) {
        let mut reservation = reservation;
        reservation.register(generation);
    }

    #[test]
    fn a_stop_reaches_a_generation_that_is_still_starting() {
        let registry = GenerationRegistry::new(2);
        let reservation = registry.reserve(OwnerId(1), SessionId(5)).unwrap();
        assert!(matches!(
            registry.stop_message(SessionId(5), MessageId(10), StopReason::User),
            StopTarget::Starting
        ));
        let generation = Generation::new(OwnerId(1), row(10, 5));
        register(reservation, &generation);
        assert!(generation.stopped_for().is_some());
        assert_eq!(generation.stopped_for(), Some(StopReason::User));
        // Registered, it is found by its message.
        assert!(matches!(
            registry.stop_message(SessionId(5), MessageId(10), StopReason::User),
            StopTarget::Running(g) if Arc::ptr_eq(&g, &generation)
        ));
    }

    #[test]
    fn a_pending_stop_for_another_answer_does_not_stop_this_one() {
        let registry = GenerationRegistry::new(2);
        let reservation = registry.reserve(OwnerId(1), SessionId(5)).unwrap();
        // A stop of answer 9 (written elsewhere) while this instance reserves the session.
        assert!(matches!(
            registry.stop_message(SessionId(5), MessageId(9), StopReason::User),
            StopTarget::Starting
        ));
        let generation = Generation::new(OwnerId(1), row(10, 5));
        register(reservation, &generation);
        assert!(generation.stopped_for().is_none());
        // Deleting the session stops whatever starts in it.
        let reservation = registry.reserve(OwnerId(1), SessionId(6)).unwrap();
        assert!(matches!(
            registry.stop_session(SessionId(6), StopReason::SessionDeleted),
            StopTarget::Starting
        ));
        let other = Generation::new(OwnerId(1), row(11, 6));
        register(reservation, &other);
        assert_eq!(other.stopped_for(), Some(StopReason::SessionDeleted));
        assert!(matches!(
            registry.stop_session(SessionId(7), StopReason::SessionDeleted),
            StopTarget::NotHere
        ));
    }

    #[test]
    fn a_stop_for_another_answer_does_not_hide_a_later_one_for_this_answer() {
        let registry = GenerationRegistry::new(2);
        let reservation = registry.reserve(OwnerId(1), SessionId(5)).unwrap();
        // First a stop of answer 9 (finished, or written elsewhere), then of the one starting.
        registry.stop_message(SessionId(5), MessageId(9), StopReason::User);
        registry.stop_message(SessionId(5), MessageId(10), StopReason::User);
        let generation = Generation::new(OwnerId(1), row(10, 5));
        register(reservation, &generation);
        assert!(generation.stopped_for().is_some());
        // Likewise a session being deleted after such a stop.
        let reservation = registry.reserve(OwnerId(1), SessionId(6)).unwrap();
        registry.stop_message(SessionId(6), MessageId(9), StopReason::User);
        registry.stop_session(SessionId(6), StopReason::SessionDeleted);
        let other = Generation::new(OwnerId(1), row(11, 6));
        register(reservation, &other);
        assert_eq!(other.stopped_for(), Some(StopReason::SessionDeleted));
    }

    #[test]
    fn a_generation_adding_its_title_frees_its_session_but_is_still_followed() {
        let registry = GenerationRegistry::new(1);
        let reservation = registry.reserve(OwnerId(1), SessionId(5)).unwrap();
        let generation = Generation::new(OwnerId(1), row(10, 5));
        register(reservation, &generation);
        assert_eq!(registry.running(), 1);
        registry.release_session(&generation);
        assert_eq!(registry.running(), 0);
        assert!(
            registry.reserve(OwnerId(1), SessionId(5)).is_ok(),
            "the session is free"
        );
        assert!(
            registry.by_message(MessageId(10)).is_some(),
            "late followers still find it"
        );
        registry.forget(&generation);
        assert!(registry.by_message(MessageId(10)).is_none());
    }
}
