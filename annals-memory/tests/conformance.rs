//! The shared conformance suite, run on the memory store.

annals::conformance_tests!(annals_memory::MemoryEventStore::new());
