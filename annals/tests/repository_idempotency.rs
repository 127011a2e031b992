//! Idempotent commands: a command with an idempotency key appends once.

// Test helpers outside `#[test]` fns unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "support/wallet.rs"]
mod wallet;

use annals::idempotent_event_id;
use annals::prelude::*;
use annals_memory::MemoryEventStore;
use wallet::*;

#[tokio::test]
async fn an_idempotency_key_appends_once() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Wallet, _>::new(store.clone());
    let id = wallet("7");
    repo.execute(&id, WalletCommand::Credit { amount: 5 })
        .await
        .unwrap();
    let keyed = CommandContext::new().with_idempotency_key("payment-77");
    let first = repo
        .execute_with(&id, WalletCommand::Debit { amount: 5 }, keyed.clone())
        .await
        .unwrap();
    assert!(!first.duplicate);
    // Run again, the debit would now be refused (balance 0): the key short-circuits it.
    let second = repo
        .execute_with(&id, WalletCommand::Debit { amount: 5 }, keyed)
        .await
        .unwrap();
    assert!(second.duplicate);
    assert_eq!((second.appended, second.version), (0, Version(2)));
    assert_eq!(store.len(), 2);
    let stored = store.read_stream(&id, Version(2), 1).await.unwrap();
    assert_eq!(
        stored[0].event_id,
        idempotent_event_id(&id, "payment-77", 0)
    );
}
