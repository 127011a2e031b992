//! The order-fulfillment flow completes on both backends, and its correlation and causation
//! ids link every event of an order across the two services' logs.

#![allow(clippy::unwrap_used, clippy::panic)]

use annals::RecordedEvent;
use annals_memory::MemoryEventStore;
use example_order_fulfillment::orders::OrderStatus;
use example_order_fulfillment::{run_flow, run_flow_over_nats, FlowReport};

fn find<'a>(report: &'a FlowReport, stream: &str, event_type: &str) -> &'a RecordedEvent {
    report
        .events
        .iter()
        .find(|e| e.stream_id.as_str() == stream && e.event_type == event_type)
        .unwrap_or_else(|| panic!("no {event_type} in {stream}"))
}

fn check(report: &FlowReport) {
    assert_eq!(report.book.statuses.get("A"), Some(&OrderStatus::Shipped));
    assert_eq!(report.book.statuses.get("B"), Some(&OrderStatus::Cancelled));

    let (a, b) = (report.flows["A"], report.flows["B"]);
    let of = |flow| -> Vec<(&str, &str)> {
        report
            .events
            .iter()
            .filter(|e| e.metadata.correlation_id == Some(flow))
            .map(|e| (e.stream_id.as_str(), e.event_type.as_str()))
            .collect()
    };
    assert_eq!(
        of(a),
        [
            ("order-A", "order.placed"),
            ("order-A", "order.stock-reserved"),
            ("order-A", "order.paid"),
            ("order-A", "order.shipped"),
            ("stock-widget", "stock.reserved"),
        ]
    );
    assert_eq!(
        of(b),
        [
            ("order-B", "order.placed"),
            ("order-B", "order.cancelled"),
            ("stock-widget", "stock.reservation-rejected"),
        ]
    );

    // Each reaction names the event that caused it.
    let placed = find(report, "order-A", "order.placed");
    let reserved = find(report, "stock-widget", "stock.reserved");
    let confirmed = find(report, "order-A", "order.stock-reserved");
    assert_eq!(reserved.metadata.causation_id, Some(placed.event_id));
    assert_eq!(confirmed.metadata.causation_id, Some(reserved.event_id));
    let rejected = find(report, "stock-widget", "stock.reservation-rejected");
    let cancelled = find(report, "order-B", "order.cancelled");
    assert_eq!(
        rejected.metadata.causation_id,
        Some(find(report, "order-B", "order.placed").event_id)
    );
    assert_eq!(cancelled.metadata.causation_id, Some(rejected.event_id));
    // Nothing was done twice.
    assert_eq!(report.events.len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_completes_on_the_memory_store() {
    let report = run_flow(MemoryEventStore::new(), MemoryEventStore::new())
        .await
        .unwrap();
    check(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_completes_on_postgresql() {
    let orders = annals_postgres::testing::fresh_store().await;
    let inventory = annals_postgres::testing::fresh_store().await;
    let report = run_flow(orders, inventory).await.unwrap();
    check(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_completes_over_nats_with_nothing_shared_but_the_bus() {
    let server = annals_nats::testing::NatsServer::start().unwrap();
    let client = annals_nats::async_nats::connect(server.url())
        .await
        .unwrap();
    let report = run_flow_over_nats(MemoryEventStore::new(), MemoryEventStore::new(), client)
        .await
        .unwrap();
    check(&report);
}
