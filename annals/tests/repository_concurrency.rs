//! The repository beside other writers: concurrent writers, cached states, conflicts retried on the
//! new state, a shared `dyn` store.

// Test helpers outside `#[test]` fns unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "support/wallet.rs"]
mod wallet;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use annals::prelude::*;
use annals::{
    AppendResult, Checkpoint, Loaded, NewEvent, RecordedEvent, RetryPolicy, StoreError,
    StreamAppend,
};
use annals_memory::MemoryEventStore;
use async_trait::async_trait;
use uuid::Uuid;
use wallet::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_through_the_repository_lose_nothing() {
    const TASKS: u64 = 8;
    const EACH: u64 = 1_000;
    let repo = Arc::new(Repository::<Wallet, _>::new(MemoryEventStore::new()));
    let id = wallet("shared");
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (repo, id) = (Arc::clone(&repo), id.clone());
            tokio::spawn(async move {
                for _ in 0..EACH {
                    repo.execute(&id, WalletCommand::Credit { amount: 1 })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let loaded = repo.load(&id).await.unwrap();
    assert_eq!(loaded.state.balance, TASKS * EACH);
    assert_eq!(loaded.version, Version(TASKS * EACH));
}

#[tokio::test]
async fn a_cached_state_never_hides_other_writers() {
    // Two repositories over one store stand for two processes, each with its own cache.
    let store = MemoryEventStore::new();
    let here = Repository::<Wallet, _>::new(store.clone());
    let there = Repository::<Wallet, _>::new(store.clone());
    let id = wallet("two-processes");
    here.execute(&id, WalletCommand::Credit { amount: 10 })
        .await
        .unwrap();
    assert_eq!(here.load(&id).await.unwrap().state.balance, 10);
    there
        .execute(&id, WalletCommand::Debit { amount: 10 })
        .await
        .unwrap();
    // `here` cached balance 10; the debit elsewhere must still refuse this one.
    let refused = here
        .execute(&id, WalletCommand::Debit { amount: 1 })
        .await
        .unwrap_err();
    assert_eq!(
        refused.rejection(),
        Some(&WalletError::Insufficient {
            balance: 0,
            requested: 1
        })
    );
    there
        .execute(&id, WalletCommand::Credit { amount: 5 })
        .await
        .unwrap();
    assert_eq!(
        here.load(&id).await.unwrap(),
        Loaded {
            state: Wallet {
                balance: 5,
                notes: vec![]
            },
            version: Version(3)
        }
    );

    let uncached = Repository::<Wallet, _>::new(store.clone()).with_cache_capacity(0);
    uncached
        .execute(&id, WalletCommand::Debit { amount: 5 })
        .await
        .unwrap();
    assert_eq!(here.load(&id).await.unwrap().state.balance, 0);
}

/// A store that lets a rival writer append right before each of the first `races` appends.
struct Racing {
    inner: MemoryEventStore,
    races: AtomicU32,
}

#[async_trait]
impl EventStore for Racing {
    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        if self
            .races
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let rival =
                NewEvent::encode(&WalletEvent::Credited { amount: 100 }, Metadata::new()).unwrap();
            self.inner
                .append(&appends[0].stream_id, ExpectedVersion::Any, vec![rival])
                .await?;
        }
        self.inner.append_streams(appends).await
    }
    async fn read_stream(
        &self,
        s: &StreamId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(s, from, limit).await
    }
    async fn read_all(
        &self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }
    async fn log_head(&self) -> Result<Checkpoint, StoreError> {
        self.inner.log_head().await
    }
    async fn stream_version(&self, s: &StreamId) -> Result<Version, StoreError> {
        self.inner.stream_version(s).await
    }
    async fn read_event(&self, id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        self.inner.read_event(id).await
    }
}

#[tokio::test]
async fn conflicts_are_retried_on_the_new_state_then_given_up() {
    let racing = Racing {
        inner: MemoryEventStore::new(),
        races: AtomicU32::new(2),
    };
    let repo = Repository::<Wallet, _>::new(racing);
    let id = wallet("8");
    let outcome = repo
        .execute(&id, WalletCommand::Credit { amount: 1 })
        .await
        .unwrap();
    assert_eq!((outcome.attempts, outcome.version), (3, Version(3)));
    assert_eq!(repo.load(&id).await.unwrap().state.balance, 201);

    let racing = Racing {
        inner: MemoryEventStore::new(),
        races: AtomicU32::new(u32::MAX),
    };
    let repo =
        Repository::<Wallet, _>::new(racing).with_retry_policy(RetryPolicy::with_max_attempts(4));
    let error = repo
        .execute(&id, WalletCommand::Credit { amount: 1 })
        .await
        .unwrap_err();
    match &error {
        RepositoryError::TooManyConflicts {
            stream,
            attempts,
            actual,
        } => {
            assert_eq!((stream, *attempts, *actual), (&id, 4, Version(4)));
        }
        other => panic!("expected TooManyConflicts, got {other:?}"),
    }
    assert!(error.to_string().contains("after 4 attempts"), "{error}");
}

#[tokio::test]
async fn a_repository_over_a_shared_dyn_store() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    let repo = Repository::<Wallet, Arc<dyn EventStore>>::new(Arc::clone(&store));
    repo.execute(&wallet("9"), WalletCommand::Credit { amount: 2 })
        .await
        .unwrap();
    assert_eq!(
        store.stream_version(&wallet("9")).await.unwrap(),
        Version(1)
    );
}
