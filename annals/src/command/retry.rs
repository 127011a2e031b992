//! Deciding again after a conflict: the caller's [`RetryPolicy`], and the streams that met a
//! conflict lately, on which the next commands take the stream's turn before they decide.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use foldhash::HashMap;
use uuid::Uuid;

use crate::stream::StreamId;

/// How a command is decided again when a concurrent writer appended first.
///
/// The default: at most 16 decisions ([`DEFAULT_MAX_ATTEMPTS`]). After the first conflict the
/// repository takes the stream's turn across every writer of the store
/// ([`EventStore::hold_turn`](crate::EventStore::hold_turn): PostgreSQL's advisory lock, held on one connection while it
/// reads, decides and appends; among repositories of one memory store, a queue), so the
/// writers that lost a race are served in turn instead of racing again. A store without such
/// turns gets a randomized backoff instead ("full jitter"): before deciding again the
/// repository sleeps a random time up to `initial_backoff` ×2 per conflict so far, at most
/// `max_backoff` (by default up to 1 ms, 2 ms, 4 ms... capped at 100 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The most times a command is decided, the first included (at least 1; default
    /// [`DEFAULT_MAX_ATTEMPTS`], 16).
    pub max_attempts: u32,
    /// The ceiling of the first random backoff, when the store has no turns to hold (default
    /// 1 ms).
    pub initial_backoff: Duration,
    /// The most a backoff's ceiling grows to (default 100 ms).
    pub max_backoff: Duration,
}

/// How many times a command is decided at most by default; see [`RetryPolicy`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 16;

impl Default for RetryPolicy {
    /// 16 decisions at most, backoff ceilings from 1 ms doubling up to 100 ms.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(100),
        }
    }
}

impl RetryPolicy {
    /// The default policy with at most `max_attempts` decisions.
    pub fn with_max_attempts(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts,
            ..RetryPolicy::default()
        }
    }

    /// A random backoff after `conflicts` conflicts: up to `initial_backoff` × 2^(conflicts - 1),
    /// at most `max_backoff`.
    pub(crate) fn backoff(&self, conflicts: u32) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << conflicts.saturating_sub(1).min(20))
            .min(self.max_backoff);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        match nanos {
            0 => Duration::ZERO,
            nanos => Duration::from_nanos(Uuid::new_v4().as_u64_pair().0 % nanos),
        }
    }
}

/// Streams that met a conflict lately, with how many more commands on each take the
/// stream's turn before they decide.
#[derive(Default)]
pub(crate) struct HotStreams {
    streams: Mutex<HashMap<StreamId, u32>>,
    /// Whether `streams` has an entry: read without the lock by every command.
    any: AtomicBool,
}

/// How many commands on a stream take its turn first after a conflict on it.
const HOT_COMMANDS: u32 = 32;

impl HotStreams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, u32>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks `id` as hot after a conflict.
    pub(crate) fn heat(&self, id: &StreamId) {
        let mut hot = self.lock();
        hot.insert(id.clone(), HOT_COMMANDS);
        self.any.store(true, Ordering::Relaxed);
    }

    /// Whether `id` is hot, counting this command.
    pub(crate) fn cools(&self, id: &StreamId) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let mut hot = self.lock();
        let cooled = match hot.get_mut(id) {
            Some(left) if *left > 1 => {
                *left -= 1;
                return true;
            }
            Some(_) => hot.remove(id).is_some(),
            None => false,
        };
        self.any.store(!hot.is_empty(), Ordering::Relaxed);
        cooled
    }
}
