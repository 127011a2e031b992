//! The shared conformance suite, run on the memory store.

eventsource::conformance_tests!(eventsource_memory::MemoryEventStore::new());
