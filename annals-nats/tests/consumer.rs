//! The consumer against a real `nats-server`: events decoded through the upcasters, an
//! acknowledgement only after the handler succeeds, retries then a dead letter that names the
//! message, messages that are not ours parked at once without stopping the consumer, and a
//! process manager whose command survives a redelivery once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod consumer_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use annals::prelude::*;
use annals::{
    stop_signal, DecodeError, Envelope, HandlerError, HandlerRetry, Metadata, StopSignal,
    UnknownEvents,
};
use annals_memory::MemoryEventStore;
use annals_nats::async_nats::header::HeaderMap;
use annals_nats::consumer::dead_letter::header as dead;
use annals_nats::consumer::{read_message, Unreadable};
use annals_nats::wire::{body_of, headers_of};
use annals_nats::{MessageProblem, NatsConsumer, NatsHandler};
use consumer_common::{placed, recorded, wait_until, Bus, ShopEvent, STREAM};
use serde_json::json;
use tokio::sync::Semaphore;

/// Remembers every event it is handed.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Envelope<ShopEvent>>>>);

impl Collect {
    fn seen(&self) -> Vec<Envelope<ShopEvent>> {
        self.0.lock().unwrap().clone()
    }
}

#[annals::async_trait]
impl NatsHandler for Collect {
    type Event = ShopEvent;

    async fn handle(&mut self, event: &Envelope<ShopEvent>) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

fn spawn_run<H: NatsHandler + 'static>(
    consumer: &NatsConsumer,
    handler: H,
    stop: StopSignal,
) -> tokio::task::JoinHandle<()> {
    let consumer = consumer.clone();
    tokio::spawn(async move { consumer.run(handler, stop).await.unwrap() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_schema_version_reaches_the_handler_as_the_current_variant() {
    let bus = Bus::start().await;
    let old = recorded("7", "Placed", 1, json!({ "order": "7", "total": 12 }));
    bus.publish(&old).await;
    let collect = Collect::default();
    let (stopper, stop) = stop_signal();
    let task = spawn_run(
        &NatsConsumer::new(bus.js.clone(), "upcast", STREAM),
        collect.clone(),
        stop,
    );
    wait_until("the event handled", || async { collect.seen().len() == 1 }).await;
    stopper.stop();
    task.await.unwrap();

    let seen = &collect.seen()[0];
    assert_eq!(
        seen.event,
        ShopEvent::Placed {
            order: "7".into(),
            total_cents: 1200
        }
    );
    assert_eq!(
        seen.schema_version, 1,
        "the stored version is kept on the envelope"
    );
    assert_eq!(seen.event_id, old.event_id);
    assert_eq!(seen.stream_id, old.stream_id);
    assert_eq!(seen.metadata, old.metadata);
}

/// Lets each handled event through only when the test says so.
struct Gate {
    permits: Arc<Semaphore>,
    handled: Collect,
}

#[annals::async_trait]
impl NatsHandler for Gate {
    type Event = ShopEvent;

    async fn handle(&mut self, event: &Envelope<ShopEvent>) -> Result<(), HandlerError> {
        self.permits.acquire().await?.forget();
        self.handled.handle(event).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_acknowledged_only_after_the_handler_succeeds() {
    let bus = Bus::start().await;
    let last = bus.publish(&placed("1", 100)).await;
    let permits = Arc::new(Semaphore::new(0));
    let handled = Collect::default();
    let (stopper, stop) = stop_signal();
    let task = spawn_run(
        &NatsConsumer::new(bus.js.clone(), "acks", STREAM),
        Gate {
            permits: permits.clone(),
            handled: handled.clone(),
        },
        stop,
    );
    wait_until("the message delivered", || async {
        bus.consumer_info("acks")
            .await
            .is_some_and(|info| info.num_ack_pending == 1)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let info = bus.consumer_info("acks").await.unwrap();
    assert_eq!(
        (info.num_ack_pending, info.ack_floor.stream_sequence),
        (1, 0),
        "not acknowledged while the handler runs"
    );

    permits.add_permits(1);
    bus.wait_all_acknowledged("acks", last).await;
    assert_eq!(handled.seen().len(), 1);
    assert_eq!(bus.consumer_info("acks").await.unwrap().num_redelivered, 0);
    stopper.stop();
    task.await.unwrap();
}

/// Fails on orders named `bad`, counting its calls; handles the others.
#[derive(Clone, Default)]
struct FailOnBad {
    calls: Arc<Mutex<u32>>,
    handled: Collect,
}

#[annals::async_trait]
impl NatsHandler for FailOnBad {
    type Event = ShopEvent;

    async fn handle(&mut self, event: &Envelope<ShopEvent>) -> Result<(), HandlerError> {
        if let ShopEvent::Placed { order, .. } = &event.event {
            if order == "bad" {
                *self.calls.lock().unwrap() += 1;
                return Err("the warehouse said\nno".into());
            }
        }
        self.handled.handle(event).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_is_retried_then_its_message_parked_with_what_names_it() {
    let bus = Bus::start().await;
    let bad = placed("bad", 1);
    let bad_sequence = bus.publish(&bad).await;
    let last = bus.publish(&placed("good", 2)).await;
    let handler = FailOnBad::default();
    let (stopper, stop) = stop_signal();
    let consumer = NatsConsumer::new(bus.js.clone(), "retries", STREAM).with_retry(HandlerRetry {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
    });
    let task = spawn_run(&consumer, handler.clone(), stop);
    bus.wait_all_acknowledged("retries", last).await;
    stopper.stop();
    task.await.unwrap();

    assert_eq!(*handler.calls.lock().unwrap(), 3, "tried 3 times in all");
    assert_eq!(
        handler.handled.seen().len(),
        1,
        "the next message is handled"
    );
    let letters = bus.dead_letters().await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.subject.as_str(), "annals.dead.retries");
    assert_eq!(consumer.dead_letter_subject(), "annals.dead.retries");
    assert_eq!(letter.payload, body_of(&bad), "the body is unchanged");
    let header = |name: &str| letter.headers.get(name).unwrap().as_str().to_owned();
    assert_eq!(header(dead::CONSUMER), "retries");
    assert_eq!(header(dead::SUBJECT), "shop.order.Placed");
    assert_eq!(header(dead::STREAM), STREAM);
    assert_eq!(header(dead::SEQUENCE), bad_sequence.to_string());
    assert_eq!(header(dead::EVENT_ID), bad.event_id.to_string());
    let error = header(dead::ERROR);
    assert!(
        error.contains("failed 3 times") && error.contains("the warehouse said no"),
        "{error}"
    );
    assert!(
        error.contains("shop.order.Placed") && error.contains(&bad.event_id.to_string()),
        "{error}"
    );
    // The relayed headers travel along, so the event can be replayed once fixed.
    let original = headers_of(&bad);
    for name in ["Annals-Stream", "Annals-Event-Type", "Annals-Metadata"] {
        assert_eq!(
            letter.headers.get(name).map(|v| v.as_str()),
            original.get(name).map(|v| v.as_str()),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_are_not_ours_are_parked_at_once_and_the_consumer_goes_on() {
    let bus = Bus::start().await;
    let mut expected = Vec::new();

    let no_headers = bus
        .publish_raw("shop.order.Placed", None, br#"{"order":"1"}"#.to_vec())
        .await;
    expected.push((no_headers, None, "header `Nats-Msg-Id` is missing"));

    let unknown = recorded("2", "Refunded", 1, json!({ "order": "2" }));
    expected.push((
        bus.publish(&unknown).await,
        Some(unknown.event_id),
        "unknown event type `Refunded`",
    ));

    let future = recorded("3", "Placed", 3, json!({ "order": "3", "total_cents": 1 }));
    expected.push((
        bus.publish(&future).await,
        Some(future.event_id),
        "newer than the current version 2",
    ));

    let mismatch = recorded("4", "Placed", 2, json!({ "order": 4 }));
    expected.push((
        bus.publish(&mismatch).await,
        Some(mismatch.event_id),
        "the body does not match",
    ));

    let not_json = placed("5", 5);
    let not_json_sequence = bus
        .publish_raw(
            "shop.order.Placed",
            Some(headers_of(&not_json)),
            b"{not json".to_vec(),
        )
        .await;
    expected.push((
        not_json_sequence,
        Some(not_json.event_id),
        "the body is not JSON",
    ));

    // Far below the server's limit, above the consumer's.
    let huge = recorded(
        "6",
        "Placed",
        2,
        json!({ "order": "x".repeat(20_000), "total_cents": 1 }),
    );
    expected.push((
        bus.publish(&huge).await,
        Some(huge.event_id),
        "more than the 8192 this consumer accepts",
    ));

    let good = placed("7", 7);
    let last = bus.publish(&good).await;

    let collect = Collect::default();
    let (stopper, stop) = stop_signal();
    // Retries would wait an hour: the good event is only reached if nothing is retried.
    let consumer = NatsConsumer::new(bus.js.clone(), "strict", STREAM)
        .with_max_message_size(8 * 1024)
        .with_retry(HandlerRetry {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(3600),
        });
    let task = spawn_run(&consumer, collect.clone(), stop);
    bus.wait_all_acknowledged("strict", last).await;
    stopper.stop();
    task.await.unwrap();

    let seen = collect.seen();
    assert_eq!(seen.len(), 1, "only the good event reaches the handler");
    assert_eq!(seen[0].event_id, good.event_id);

    let letters = bus.dead_letters().await;
    assert_eq!(
        letters.len(),
        expected.len(),
        "each bad message parked once"
    );
    for (letter, (sequence, event_id, problem)) in letters.iter().zip(&expected) {
        let header = |name: &str| letter.headers.get(name).map(|v| v.as_str().to_owned());
        let error = header(dead::ERROR).unwrap();
        assert_eq!(
            header(dead::SEQUENCE),
            Some(sequence.to_string()),
            "{error}"
        );
        assert_eq!(
            header(dead::EVENT_ID),
            event_id.map(|id| id.to_string()),
            "{error}"
        );
        assert!(error.contains(problem), "{error} should say {problem}");
        assert!(
            error.contains(&format!("message {sequence} of stream `SHOP`"))
                && error.contains("on subject `shop."),
            "{error}"
        );
        match event_id {
            Some(id) => assert!(error.contains(&id.to_string()), "{error}"),
            None => assert!(error.contains("no readable event id"), "{error}"),
        }
    }
}

/// The typed errors behind those dead letters, from a message built by hand.
#[test]
fn reading_a_message_names_what_is_wrong() {
    let message = |headers: Option<HeaderMap>, body: &[u8]| async_nats::Message {
        subject: "shop.order.Placed".into(),
        reply: None,
        payload: body.to_vec().into(),
        headers,
        status: None,
        description: None,
        length: 0,
    };
    let read = |message: &async_nats::Message, limit: usize| {
        read_message::<ShopEvent>(message, limit, UnknownEvents::Fail)
    };

    let good = placed("1", 1);
    let envelope = read(&message(Some(headers_of(&good)), &body_of(&good)), 1024)
        .unwrap()
        .unwrap();
    assert_eq!(envelope.event_id, good.event_id);

    assert!(matches!(
        read(&message(None, b"{}"), 1024),
        Err(Unreadable::Message(MessageProblem::MissingHeader(
            "Nats-Msg-Id"
        )))
    ));
    assert!(matches!(
        read(&message(Some(headers_of(&good)), &body_of(&good)), 100),
        Err(Unreadable::Message(MessageProblem::TooLarge {
            limit: 100,
            ..
        }))
    ));
    let future = recorded("1", "Placed", 9, json!({}));
    assert!(matches!(
        read(&message(Some(headers_of(&future)), &body_of(&future)), 1024),
        Err(Unreadable::Decode(DecodeError::FutureVersion {
            schema_version: 9,
            current: 2,
            ..
        }))
    ));
    let unknown = recorded("1", "Refunded", 1, json!({}));
    let headers = Some(headers_of(&unknown));
    assert!(matches!(
        read(&message(headers.clone(), b"{}"), 1024),
        Err(Unreadable::Decode(DecodeError::UnknownType { .. }))
    ));
    assert!(
        read_message::<ShopEvent>(&message(headers, b"{}"), 1024, UnknownEvents::Skip)
            .unwrap()
            .is_none(),
        "skipped when the policy says so"
    );
}

// A process manager in another service: each order placed prepares a shipment.

#[derive(Debug)]
struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for Never {}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, Event)]
#[event(apply = Shipment)]
enum ShipmentEvent {
    Prepared { order: String },
}

#[derive(Debug, Command)]
#[command(aggregate = Shipment)]
enum ShipmentCommand {
    Prepare { order: String },
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize, Aggregate)]
#[aggregate(event = ShipmentEvent, command = ShipmentCommand, error = Never)]
struct Shipment {
    order: Option<String>,
}

impl Shipment {
    fn prepared(&mut self, order: &str) {
        self.order = Some(order.to_owned());
    }

    fn prepare(&self, order: &str) -> Result<Vec<ShipmentEvent>, Never> {
        Ok(vec![ShipmentEvent::Prepared {
            order: order.to_owned(),
        }])
    }
}

/// Prepares a shipment per order placed. Its first delivery hangs after the command, until
/// the test aborts the consumer: the message was never acknowledged.
#[derive(Clone)]
struct Shipping {
    shipments: Arc<Repository<Shipment, MemoryEventStore>>,
    outcomes: Arc<Mutex<Vec<annals::CommandOutcome>>>,
    hang_after_first: Arc<Semaphore>,
}

#[annals::async_trait]
impl NatsHandler for Shipping {
    type Event = ShopEvent;

    async fn handle(&mut self, event: &Envelope<ShopEvent>) -> Result<(), HandlerError> {
        let ShopEvent::Placed { order, .. } = &event.event else {
            return Ok(());
        };
        let id = StreamId::for_aggregate::<Shipment>(order)?;
        let context = annals::CommandContext::caused_by("shipping", event, 0);
        let outcome = self
            .shipments
            .execute_with(
                &id,
                ShipmentCommand::Prepare {
                    order: order.clone(),
                },
                context,
            )
            .await?;
        let first = {
            let mut outcomes = self.outcomes.lock().unwrap();
            outcomes.push(outcome);
            outcomes.len() == 1
        };
        if first {
            // Never returns: no permit is ever added.
            self.hang_after_first.acquire().await?.forget();
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_manager_issues_its_command_once_across_a_redelivery() {
    let bus = Bus::start().await;
    let order = placed("42", 4200);
    let correlation = order.metadata.correlation_id.unwrap();
    let last = bus.publish(&order).await;

    let store = MemoryEventStore::new();
    let shipping = Shipping {
        shipments: Arc::new(Repository::new(store.clone())),
        outcomes: Arc::default(),
        hang_after_first: Arc::new(Semaphore::new(0)),
    };
    let consumer =
        NatsConsumer::new(bus.js.clone(), "shipping", STREAM).with_ack_wait(Duration::from_secs(1));
    let first = spawn_run(&consumer, shipping.clone(), StopSignal::never());
    wait_until("the command issued", || async {
        shipping.outcomes.lock().unwrap().len() == 1
    })
    .await;
    first.abort();
    let _ = first.await;

    // Started again, the consumer is handed the unacknowledged message once more.
    let (stopper, stop) = stop_signal();
    let second = spawn_run(&consumer, shipping.clone(), stop);
    bus.wait_all_acknowledged("shipping", last).await;
    stopper.stop();
    second.await.unwrap();

    let outcomes = shipping.outcomes.lock().unwrap().clone();
    assert_eq!(outcomes.len(), 2, "handled twice");
    assert_eq!((outcomes[0].appended, outcomes[0].duplicate), (1, false));
    assert_eq!(
        (outcomes[1].appended, outcomes[1].duplicate),
        (0, true),
        "the command issued again is a duplicate"
    );
    let id = StreamId::for_aggregate::<Shipment>("42").unwrap();
    let events = store.read_stream(&id, Version(1), 10).await.unwrap();
    assert_eq!(events.len(), 1, "one shipment prepared");
    let metadata: &Metadata = &events[0].metadata;
    assert_eq!(metadata.correlation_id, Some(correlation));
    assert_eq!(metadata.causation_id, Some(order.event_id));
    assert_eq!(metadata.actor.as_deref(), Some("shipping"));
}
