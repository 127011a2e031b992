//! [`MemoryInbox`]: the events each consumer applied, in memory, recorded atomically with
//! the effect of applying them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use annals::HandlerError;
use uuid::Uuid;

use super::handler::Delivered;

/// The events each consumer has applied, kept in this process's memory: the in-memory
/// counterpart of the inbox table of `annals-postgres`, for services on the memory store
/// and for tests.
///
/// Clones share one inbox. A consumer run with it ([`NatsConsumer::run_with_inbox`](super::NatsConsumer::run_with_inbox))
/// applies each event at most once per consumer name, for as long as the inbox lives; so
/// its effects must live as long (in memory too: a restarted process starts with an empty
/// inbox and an empty read model, and a JetStream consumer that starts over).
#[derive(Debug, Clone, Default)]
pub struct MemoryInbox {
    applied: Arc<Mutex<HashSet<(String, Uuid)>>>,
}

impl MemoryInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        MemoryInbox::default()
    }

    /// Whether `consumer` has applied event `event_id`.
    pub fn contains(&self, consumer: &str, event_id: Uuid) -> bool {
        self.lock().contains(&(consumer.to_owned(), event_id))
    }

    /// How many events all consumers have applied.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no consumer has applied any event.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Calls `apply` unless `consumer` applied `event_id` before, and records the event when
    /// it succeeds: all under the inbox's lock, with no `.await`, so a cancelled task did both
    /// or neither.
    pub(crate) fn apply_once(
        &self,
        consumer: &str,
        event_id: Uuid,
        apply: impl FnOnce() -> Result<(), HandlerError>,
    ) -> Result<Delivered, HandlerError> {
        let mut applied = self.lock();
        let key = (consumer.to_owned(), event_id);
        if applied.contains(&key) {
            return Ok(Delivered::Duplicate);
        }
        apply()?;
        applied.insert(key);
        Ok(Delivered::Applied)
    }

    /// The set, even after a handler panicked while it was held: a panic inside `apply`
    /// leaves the event unrecorded, which is the state before the call.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(String, Uuid)>> {
        self.applied.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
