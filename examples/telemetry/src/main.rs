//! Run with: cargo run -p example-telemetry
//!
//! What annals reports while it works, in the two forms operators collect: every span as a
//! JSON log line on stderr (`tracing-subscriber`'s JSON format, one line per closed span with
//! its fields), and every metric on a Prometheus endpoint (`metrics-exporter-prometheus`),
//! which the example scrapes once at the end and prints. `METRICS_ADDR=127.0.0.1:9000` keeps
//! the endpoint at a known address; `SECONDS=60` keeps the service running that long, for a
//! Prometheus of your own to scrape.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use annals::prelude::*;
use annals::{Envelope, HandlerError, Projection, ProjectionRunner};
use annals_memory::MemoryEventStore;
use metrics_exporter_prometheus::PrometheusBuilder;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::fmt::format::FmtSpan;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Account)]
enum AccountEvent {
    Deposited { amount: u64 },
}

#[derive(Debug, Command)]
#[command(aggregate = Account)]
enum AccountCommand {
    Deposit { amount: u64 },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(event = AccountEvent, command = AccountCommand, error = Infallible, snapshot_every = 10)]
struct Account {
    balance: u64,
}

impl Account {
    fn deposited(&mut self, amount: &u64) {
        self.balance += amount;
    }

    fn deposit(&self, amount: &u64) -> Result<Vec<AccountEvent>, Infallible> {
        Ok(vec![AccountEvent::Deposited { amount: *amount }])
    }
}

/// A projection that counts deposits.
#[derive(Default)]
struct Deposits(u64);

#[annals::async_trait]
impl Projection for Deposits {
    type Event = AccountEvent;

    fn name(&self) -> &str {
        "deposits"
    }

    async fn handle(&mut self, _event: &Envelope<AccountEvent>) -> Result<(), HandlerError> {
        self.0 += 1;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Spans as JSON lines on stderr, one per span when it closes, with its fields.
    tracing_subscriber::fmt()
        .json()
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .init();
    // The recorder first: repositories, runners and stores register their metrics when built.
    let address = match std::env::var("METRICS_ADDR") {
        Ok(address) => address.parse::<SocketAddr>()?,
        Err(_) => TcpListener::bind("127.0.0.1:0")?.local_addr()?,
    };
    PrometheusBuilder::new()
        .with_http_listener(address)
        .install()?;
    annals::telemetry::describe();
    println!("metrics at http://{address}/metrics");

    let store = MemoryEventStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    let seconds: u64 = std::env::var("SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut round = 0;
    loop {
        for n in 0..25u64 {
            let id = StreamId::for_aggregate::<Account>(format!("{}", n % 2))?;
            accounts
                .execute(&id, AccountCommand::Deposit { amount: n })
                .await?;
        }
        round += 1;
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A cold load starts from a snapshot.
    Repository::<Account, _>::new(store.clone())
        .load(&StreamId::for_aggregate::<Account>("0")?)
        .await?;
    let mut runner = ProjectionRunner::new(store, Deposits::default());
    runner.catch_up().await?;
    println!(
        "{round} rounds of 25 deposits; the projection counted {}",
        runner.projection().0
    );

    println!("\nannals's metrics, as Prometheus scrapes them:");
    for line in scrape(address).await?.lines() {
        if line.starts_with("annals_") && !line.contains("_bucket") {
            println!("  {line}");
        }
    }
    Ok(())
}

/// The body of `GET /metrics` at `address`.
async fn scrape(address: SocketAddr) -> Result<String, BoxError> {
    let mut connection = tokio::net::TcpStream::connect(address).await?;
    connection
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    connection.read_to_string(&mut response).await?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .ok_or("the metrics endpoint sent no body")?;
    Ok(body)
}
