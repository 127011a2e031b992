//! The repository's cache of the latest known state of recently used streams.

use std::sync::{Mutex, PoisonError};

use foldhash::HashMap;

use crate::aggregate::Loaded;
use crate::stream::StreamId;

/// How many aggregate states a repository keeps by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// The latest known state of recently used streams. An entry is only ever a starting point:
/// the repository reads the events appended after it before deciding, and the append's
/// expected version rejects a decision made on a stale state, so other writers (in this
/// process or another) can never make it wrong.
pub(crate) struct StateCache<A> {
    entries: Mutex<HashMap<StreamId, Loaded<A>>>,
    capacity: usize,
}

impl<A: Clone> StateCache<A> {
    /// A cache of at most `capacity` states (0 keeps none).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        StateCache {
            entries: Mutex::new(HashMap::default()),
            capacity,
        }
    }

    pub(crate) fn get(&self, id: &StreamId) -> Option<Loaded<A>> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(id).cloned()
    }

    pub(crate) fn put(&self, id: &StreamId, loaded: Loaded<A>) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = entries.get_mut(id) {
            if cached.version < loaded.version {
                *cached = loaded;
            }
            return;
        }
        if entries.len() >= self.capacity {
            // Evict an arbitrary entry: cheap, and a miss costs one full load.
            if let Some(victim) = entries.keys().next().cloned() {
                entries.remove(&victim);
            }
        }
        entries.insert(id.clone(), loaded);
    }
}
