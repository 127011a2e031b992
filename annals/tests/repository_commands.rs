//! Commands through the repository: execute and load, rejections, commands without events, async
//! handlers with services, expected versions, metadata.

// Test helpers outside `#[test]` fns unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "support/wallet.rs"]
mod wallet;

use annals::prelude::*;
use annals::StoreError;
use annals_memory::MemoryEventStore;
use uuid::Uuid;
use wallet::*;

#[tokio::test]
async fn execute_appends_and_load_replays() {
    let repo = Repository::<Wallet, _>::new(MemoryEventStore::new());
    let id = wallet("1");
    let outcome = repo
        .execute(&id, WalletCommand::Credit { amount: 10 })
        .await
        .unwrap();
    assert_eq!(
        (outcome.version, outcome.appended, outcome.attempts),
        (Version(1), 1, 1)
    );
    let outcome = repo
        .execute(&id, WalletCommand::CreditTwice { amount: 5 })
        .await
        .unwrap();
    assert_eq!((outcome.version, outcome.appended), (Version(3), 2));
    repo.execute(&id, WalletCommand::Debit { amount: 12 })
        .await
        .unwrap();

    let loaded = repo.load(&id).await.unwrap();
    assert_eq!(loaded.version, Version(4));
    assert_eq!(loaded.state.balance, 8);
    assert_eq!(id.as_str(), "wallet-1");

    let fresh = repo.load(&wallet("never")).await.unwrap();
    assert_eq!((fresh.version, fresh.state.balance), (Version(0), 0));
}

#[tokio::test]
async fn a_rejected_command_stores_nothing() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Wallet, _>::new(store.clone());
    let id = wallet("2");
    repo.execute(&id, WalletCommand::Credit { amount: 3 })
        .await
        .unwrap();
    let error = repo
        .execute(&id, WalletCommand::Debit { amount: 4 })
        .await
        .unwrap_err();
    assert_eq!(
        error.rejection(),
        Some(&WalletError::Insufficient {
            balance: 3,
            requested: 4
        })
    );
    assert!(error.to_string().contains("command rejected"), "{error}");
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn a_command_without_events_appends_nothing() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Wallet, _>::new(store.clone());
    let id = wallet("3");
    repo.execute(&id, WalletCommand::Credit { amount: 3 })
        .await
        .unwrap();
    let outcome = repo.execute(&id, WalletCommand::Nothing).await.unwrap();
    assert_eq!((outcome.version, outcome.appended), (Version(1), 0));
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn async_handlers_receive_services() {
    let open =
        Repository::<Wallet, _>::with_services(MemoryEventStore::new(), Limits { blocked: false });
    open.execute(&wallet("4"), WalletCommand::CheckedCredit { amount: 7 })
        .await
        .unwrap();
    assert_eq!(open.load(&wallet("4")).await.unwrap().state.balance, 7);

    let blocked =
        Repository::<Wallet, _>::with_services(MemoryEventStore::new(), Limits { blocked: true });
    let error = blocked
        .execute(&wallet("4"), WalletCommand::CheckedCredit { amount: 7 })
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RepositoryError::Rejected(WalletError::Blocked)
    ));
}

#[tokio::test]
async fn an_expected_version_is_checked_before_deciding() {
    let repo = Repository::<Wallet, _>::new(MemoryEventStore::new());
    let id = wallet("5");
    let at = |v| CommandContext::new().with_expected_version(ExpectedVersion::Exact(Version(v)));
    repo.execute_with(&id, WalletCommand::Credit { amount: 1 }, at(0))
        .await
        .unwrap();
    let error = repo
        .execute_with(&id, WalletCommand::Credit { amount: 1 }, at(0))
        .await
        .unwrap_err();
    match error {
        RepositoryError::Store(StoreError::Conflict {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!(stream, id);
            assert_eq!(expected, ExpectedVersion::Exact(Version(0)));
            assert_eq!(actual, Version(1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    repo.execute_with(&id, WalletCommand::Credit { amount: 1 }, at(1))
        .await
        .unwrap();
    assert_eq!(repo.load(&id).await.unwrap().state.balance, 2);
}

#[tokio::test]
async fn command_metadata_is_stamped_on_every_event() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Wallet, _>::new(store.clone());
    let id = wallet("6");
    let metadata = Metadata::new()
        .with_correlation_id(Uuid::new_v4())
        .with_causation_id(Uuid::new_v4())
        .with_actor("ann")
        .with_header("ip", "127.0.0.1");
    let context = CommandContext::new().with_metadata(metadata.clone());
    repo.execute_with(&id, WalletCommand::CreditTwice { amount: 1 }, context)
        .await
        .unwrap();
    let events = store.read_stream(&id, Version(1), 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.metadata == metadata));
}
