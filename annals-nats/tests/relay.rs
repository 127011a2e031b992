//! The relay publishes stored events unchanged (subject, headers, body), leaves filtered-out
//! aggregates and event types in the service, refuses a stream configured otherwise with each
//! difference named, and relays a PostgreSQL store's log too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod relay_common;

use std::time::Duration;

use annals::{EventStore, ExpectedVersion, Filter, Metadata, NewEvent, Payload, StreamId};
use annals_memory::MemoryEventStore;
use annals_nats::async_nats::jetstream::{self, stream};
use annals_nats::testing::NatsServer;
use annals_nats::wire::{self, header};
use annals_nats::{Relay, RelayConfig, RelayError, SubjectMapping};
use relay_common::{append, assert_exactly_once_in_order, log, read_back};
use uuid::Uuid;

#[tokio::test]
async fn published_messages_are_the_stored_events_and_filtered_ones_stay_home() {
    let server = NatsServer::start().unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let store = MemoryEventStore::new();

    let order = StreamId::new("order-7").unwrap();
    let metadata = Metadata::new()
        .with_actor("ann")
        .with_correlation_id(Uuid::new_v4())
        .with_header("tenant", "t-1");
    store
        .append(
            &order,
            ExpectedVersion::NoStream,
            vec![
                NewEvent::new(
                    "Placed",
                    2,
                    Payload::from_json(r#"{"total": 12, "note": "ünï"}"#).unwrap(),
                )
                .with_metadata(metadata),
                NewEvent::new(
                    "InternalNote",
                    1,
                    Payload::from_json(r#"{"secret": true}"#).unwrap(),
                ),
                NewEvent::new("Shipped", 1, Payload::from_json("{}").unwrap()),
            ],
        )
        .await
        .unwrap();
    append(&store, "payroll-1", "Paid", 3, 3).await;
    append(&store, "line-item-9", "Added", 2, 1).await;

    let config = RelayConfig::new(
        "ORDERS",
        SubjectMapping::new("orders").aggregate_type("line-item"),
    )
    .with_filter(
        Filter::category("order")
            .or_category("line-item")
            .event_types(["Placed", "Shipped", "Added"]),
    );
    let mut relay = Relay::new(store.clone(), client.clone(), config.clone());
    assert_eq!(relay.catch_up().await.unwrap(), 4);

    let js = jetstream::new(client);
    let stored = read_back(&js, "ORDERS").await;
    let published: Vec<_> = log(&store)
        .await
        .into_iter()
        .filter(|e| e.event_type != "InternalNote" && !e.stream_id.as_str().starts_with("payroll"))
        .collect();
    assert_eq!(
        stored.len(),
        published.len(),
        "private events left the service"
    );
    for (message, event) in stored.iter().zip(&published) {
        assert_eq!(message.subject, config.subjects().subject(event));
        assert_eq!(
            &message.body[..],
            event.payload.as_str().as_bytes(),
            "the body is the stored JSON"
        );
        assert_eq!(message.header(header::MSG_ID), event.event_id.to_string());
        let relayed = wire::event_of(Some(&message.headers), &message.body).unwrap();
        assert_eq!(
            &relayed, event,
            "the message reads back into the stored event"
        );
    }
    assert_eq!(
        stored
            .iter()
            .map(|m| m.subject.as_str())
            .collect::<Vec<_>>(),
        [
            "orders.order.Placed",
            "orders.order.Shipped",
            "orders.line-item.Added",
            "orders.line-item.Added"
        ]
    );
    // The checkpoint passed the private events too.
    assert_eq!(
        relay.checkpoint().await.unwrap(),
        store.log_head().await.unwrap()
    );
    // A second catch-up has nothing to publish.
    assert_eq!(relay.catch_up().await.unwrap(), 0);
    let status = relay.status().borrow().clone();
    assert_eq!(
        (status.relayed, status.duplicates, status.errors),
        (4, 0, 0)
    );
}

#[tokio::test]
async fn a_stream_configured_otherwise_is_refused_with_each_difference_named() {
    let server = NatsServer::start().unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client.clone());
    js.create_stream(stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["elsewhere.>".into()],
        duplicate_window: Duration::from_secs(30),
        max_age: Duration::from_secs(3_600),
        ..Default::default()
    })
    .await
    .unwrap();
    let store = MemoryEventStore::new();
    append(&store, "order-1", "Placed", 1, 1).await;

    let config = RelayConfig::new("ORDERS", SubjectMapping::new("orders"));
    let error = Relay::new(store.clone(), client, config.clone())
        .catch_up()
        .await
        .unwrap_err();
    let RelayError::StreamMismatch { mismatch, .. } = &error else {
        panic!("expected a stream mismatch, got {error}");
    };
    let settings: Vec<_> = mismatch.differences.iter().map(|d| d.setting).collect();
    assert_eq!(settings, ["subjects", "duplicate window", "max age"]);
    assert_eq!(
        error.to_string(),
        "relay `ORDERS`: stream `ORDERS`: subjects: configured [orders.>], server has [elsewhere.>]; \
         duplicate window: configured 2m, server has 30s; max age: configured unlimited, server has 1h"
    );
    assert_eq!(
        store
            .load_checkpoint(&config.checkpoint_name())
            .await
            .unwrap(),
        None,
        "nothing was relayed"
    );
}

#[tokio::test]
async fn a_postgres_store_is_relayed_exactly_once() {
    let server = NatsServer::start().unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let store = annals_postgres::testing::fresh_store().await;
    for stream in ["order-1", "order-2", "order-3"] {
        append(&store, stream, "Placed", 300, 50).await;
    }
    let config = RelayConfig::new("PG_ORDERS", SubjectMapping::new("pg")).with_batch_size(200);
    let mut relay = Relay::new(store.clone(), client.clone(), config.clone());
    assert_eq!(relay.catch_up().await.unwrap(), 900);
    // A new relay of the same name resumes after the checkpoint stored in PostgreSQL.
    append(&store, "order-2", "Shipped", 10, 10).await;
    let mut again = Relay::new(store.clone(), client.clone(), config);
    assert_eq!(again.catch_up().await.unwrap(), 10);

    let stored = read_back(&jetstream::new(client), "PG_ORDERS").await;
    assert_exactly_once_in_order(&stored, &log(&store).await);
}
