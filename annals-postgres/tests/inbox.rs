//! The inbox records each `(consumer, event id)` once, in the caller's transaction: a pair is
//! new until a transaction that recorded it commits, and consumers do not see each other's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use annals_postgres::testing::fresh_store;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_is_new_until_its_transaction_commits() {
    let store = fresh_store().await;
    let event = Uuid::new_v4();
    let mut client = store.pool().get().await.unwrap();

    let tx = client.transaction().await.unwrap();
    assert!(store.record_in_inbox(&tx, "billing", event).await.unwrap());
    tx.rollback().await.unwrap();

    let tx = client.transaction().await.unwrap();
    assert!(
        store.record_in_inbox(&tx, "billing", event).await.unwrap(),
        "a rolled back record is not there"
    );
    tx.commit().await.unwrap();

    let tx = client.transaction().await.unwrap();
    assert!(!store.record_in_inbox(&tx, "billing", event).await.unwrap());
    assert!(
        store.record_in_inbox(&tx, "shipping", event).await.unwrap(),
        "each consumer has its own record"
    );
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_recorder_waits_for_the_first_and_finds_its_row() {
    let store = fresh_store().await;
    let event = Uuid::new_v4();
    let mut first = store.pool().get().await.unwrap();
    let first_tx = first.transaction().await.unwrap();
    assert!(store
        .record_in_inbox(&first_tx, "billing", event)
        .await
        .unwrap());

    let second = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut client = store.pool().get().await.unwrap();
            let tx = client.transaction().await.unwrap();
            let new = store.record_in_inbox(&tx, "billing", event).await.unwrap();
            tx.commit().await.unwrap();
            new
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !second.is_finished(),
        "the second insert waits for the first transaction"
    );
    first_tx.commit().await.unwrap();
    assert!(!second.await.unwrap(), "the first one's row is found");
}
