//! Run with: cargo run -p example-order-fulfillment
//!
//! Two services, orders and inventory, each with its own event log, talking only through
//! events: on the embedded memory store by default, on PostgreSQL (one schema per service)
//! when `DATABASE_URL` is set. Prints every event of both logs with its correlation and
//! causation ids, then the order read model.
//!
//! With `-- --nats` the two services talk only through NATS JetStream: each relays its log to
//! a stream and consumes the other's. It uses the server `NATS_URL` names, or starts a
//! throwaway `nats-server` (installed from Debian's `nats-server` package, or on `PATH`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use annals::RecordedEvent;
use annals_memory::MemoryEventStore;
use annals_nats::async_nats;
use annals_nats::testing::NatsServer;
use annals_postgres::{PgConfig, PgEventStore};
use example_order_fulfillment::{run_flow, run_flow_over_nats, FlowError, FlowReport};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), FlowError> {
    if std::env::args().skip(1).any(|arg| arg == "--nats") {
        return run_over_nats().await;
    }
    let report = match std::env::var("DATABASE_URL") {
        Ok(url) => {
            println!("backend: PostgreSQL (schemas `orders` and `inventory`)\n");
            let orders =
                PgEventStore::connect_with(&url, PgConfig::default().with_schema("orders")).await?;
            let inventory =
                PgEventStore::connect_with(&url, PgConfig::default().with_schema("inventory"))
                    .await?;
            run_flow(orders, inventory).await?
        }
        Err(_) => {
            println!("backend: memory (set DATABASE_URL to run on PostgreSQL)\n");
            run_flow(MemoryEventStore::new(), MemoryEventStore::new()).await?
        }
    };
    print(&report);
    Ok(())
}

async fn run_over_nats() -> Result<(), FlowError> {
    // A server of this run's own when NATS_URL names none; dropped (stopped) at the end.
    let (url, _server) = match std::env::var("NATS_URL") {
        Ok(url) if !url.trim().is_empty() => (url, None),
        _ => {
            let server = NatsServer::start()?;
            (server.url(), Some(server))
        }
    };
    println!("transport: NATS JetStream at {url}; each service on its own memory store\n");
    let client = async_nats::connect(url.as_str()).await?;
    let report =
        run_flow_over_nats(MemoryEventStore::new(), MemoryEventStore::new(), client).await?;
    print(&report);
    Ok(())
}

fn print(report: &FlowReport) {
    let names: BTreeMap<_, _> = report
        .flows
        .iter()
        .map(|(order, flow)| (*flow, order.as_str()))
        .collect();
    let short = |id: Option<uuid::Uuid>| {
        id.map_or_else(
            || "-".to_owned(),
            |id| id.simple().to_string()[..8].to_owned(),
        )
    };
    println!(
        "{:<9} {:<12} {:<27} {:<9} {:<9} {:<17} body",
        "flow", "stream", "event", "event id", "caused by", "actor"
    );
    for event in &report.events {
        let flow = event
            .metadata
            .correlation_id
            .and_then(|id| names.get(&id).map(|order| format!("order {order}")))
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "{:<9} {:<12} {:<27} {:<9} {:<9} {:<17} {}",
            flow,
            event.stream_id,
            event.event_type,
            short(Some(event.event_id)),
            short(event.metadata.causation_id),
            event.metadata.actor.as_deref().unwrap_or("-"),
            event.payload,
        );
    }
    println!();
    for (order, flow) in &report.flows {
        let linked: Vec<&RecordedEvent> = report
            .events
            .iter()
            .filter(|e| e.metadata.correlation_id == Some(*flow))
            .collect();
        println!(
            "order {order}: correlation id {flow} links {} events across both logs",
            linked.len()
        );
    }
    println!("\nread model:");
    for (order, status) in &report.book.statuses {
        println!("  order {order}: {status:?}");
    }
}
