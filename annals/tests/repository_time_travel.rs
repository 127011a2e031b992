//! Time travel: a stream loaded as of a version and as of a time.

// Test helpers outside `#[test]` fns unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "support/wallet.rs"]
mod wallet;

use std::time::{Duration, SystemTime};

use annals::prelude::*;
use annals_memory::MemoryEventStore;
use wallet::*;

#[tokio::test]
async fn time_travel_by_version_and_by_time() {
    let repo = Repository::<Wallet, _>::new(MemoryEventStore::new());
    let id = wallet("10");
    let before_all = SystemTime::now() - Duration::from_secs(1);
    repo.execute(&id, WalletCommand::Credit { amount: 10 })
        .await
        .unwrap();
    repo.execute(&id, WalletCommand::Credit { amount: 20 })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let middle = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    repo.execute(&id, WalletCommand::Debit { amount: 25 })
        .await
        .unwrap();

    let at_one = repo.load_at(&id, Version(1)).await.unwrap();
    assert_eq!((at_one.version, at_one.state.balance), (Version(1), 10));
    let at_zero = repo.load_at(&id, Version(0)).await.unwrap();
    assert_eq!((at_zero.version, at_zero.state.balance), (Version(0), 0));
    let error = repo.load_at(&id, Version(9)).await.unwrap_err();
    assert!(matches!(
        error,
        RepositoryError::VersionNotFound {
            requested: Version(9),
            current: Version(3),
            ..
        }
    ));

    let then = repo.load_as_of(&id, middle).await.unwrap();
    assert_eq!((then.version, then.state.balance), (Version(2), 30));
    let before = repo.load_as_of(&id, before_all).await.unwrap();
    assert_eq!((before.version, before.state.balance), (Version(0), 0));
    let now = repo.load_as_of(&id, SystemTime::now()).await.unwrap();
    assert_eq!((now.version, now.state.balance), (Version(3), 5));
}
