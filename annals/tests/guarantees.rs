//! The concurrency guarantees on the memory store, each hammered by many tasks over several
//! handles of one store ("processes"); the scenarios are shared with PostgreSQL's tests.
//! `HAMMER_ROUNDS=N` repeats their rounds N times.

#[path = "support/guarantees.rs"]
mod guarantees;

use annals_memory::MemoryEventStore;
use guarantees::rounds;

fn handles(n: usize) -> Vec<MemoryEventStore> {
    let store = MemoryEventStore::new();
    (0..n).map(|_| store.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_never_hold_what_the_store_did_not_store() {
    let store = MemoryEventStore::new();
    guarantees::cache_race([store.clone(), store], rounds(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_of_a_command_are_one_command() {
    guarantees::concurrent_repeats(handles(4), 4, rounds(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_stream_converges_across_repositories() {
    for _ in 0..rounds(1) {
        guarantees::hot_stream(handles(8), 1_000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_number_of_runners_apply_each_event_once() {
    for _ in 0..rounds(1) {
        guarantees::runners_exactly_once(handles(4), 4, 10_000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_ends_while_writers_keep_appending() {
    guarantees::catch_ups_end(MemoryEventStore::new(), 3, rounds(9)).await;
}
