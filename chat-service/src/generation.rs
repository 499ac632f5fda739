//! Generations: the tasks that write assistant answers, detached from the requests that start
//! them.
//!
//! A [`Generation`] keeps the log of everything it produced (`log`: the started row, the text
//! as it grew, the final event, a title). Any number of clients follow it: the one that sent
//! the message from the first event, a reloaded page or a second tab from the start too, the
//! text so far replayed as one delta. A client going away only drops its follower; the task
//! (`job`) runs on until it completes, fails, is stopped, or hits the maximum duration. The
//! [`GenerationRegistry`] (`registry`) knows the running generations by session (one per
//! session) and by message, and stops them all on shutdown. `title` names untitled sessions
//! after their first answer; `remote` follows and waits for answers another instance writes
//! through their rows, `nats_relay` through NATS when it is configured.
//!
//! Inside, nothing imports back up: `log` stands alone, `registry` uses the log, `job` uses
//! both (its `Reservation::start` is where a reserved slot becomes a running task) and `title`.

mod job;
mod log;
mod nats_relay;
mod registry;
mod remote;
mod settings;
mod title;

pub use job::{GenerationJob, Turn};
pub use log::{Generation, StopReason};
pub use nats_relay::GenerationRelay;
pub use registry::{GenerationRegistry, Reservation, StopTarget};
pub use remote::{follow_stored, wait_not_streaming};
pub use settings::{DEFAULT_MAX_ANSWER_BYTES, GenerationSettings};
pub use title::TitleJob;

/// A STREAMING assistant message, as the registry's and the log's tests start generations with.
#[cfg(test)]
fn streaming_answer(id: i64, session_id: i64) -> parley_proto::chat::v1::Message {
    use parley_proto::chat::v1 as pb;
    pb::Message {
        id,
        session_id,
        role: pb::MessageRole::Assistant as i32,
        status: pb::MessageStatus::Streaming as i32,
        ..Default::default()
    }
}
