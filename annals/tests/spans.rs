//! The spans a command, a load, an append and a projection batch open, with their fields,
//! read back from a capturing subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use annals::prelude::*;
use annals::{Envelope, HandlerError, Projection, ProjectionRunner};
use annals_memory::MemoryEventStore;
use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Counter)]
enum CounterEvent {
    Added { n: u64 },
}

#[derive(Debug, Command)]
#[command(aggregate = Counter)]
enum CounterCommand {
    Add { n: u64 },
}

#[derive(Debug)]
struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for Never {}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(event = CounterEvent, command = CounterCommand, error = Never)]
struct Counter {
    total: u64,
}

impl Counter {
    fn added(&mut self, n: &u64) {
        self.total += n;
    }
    fn add(&self, n: &u64) -> Result<Vec<CounterEvent>, Never> {
        Ok(vec![CounterEvent::Added { n: *n }])
    }
}

struct Totals;

#[annals::async_trait]
impl Projection for Totals {
    type Event = CounterEvent;

    fn name(&self) -> &str {
        "totals"
    }

    async fn handle(&mut self, _event: &Envelope<CounterEvent>) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// A span's name and its fields as text.
type Span = (String, BTreeMap<String, String>);

/// Each closed span.
type Spans = Arc<Mutex<Vec<Span>>>;

#[derive(Default)]
struct Capture {
    open: Mutex<BTreeMap<u64, Span>>,
    closed: Spans,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.open
            .lock()
            .unwrap()
            .insert(id.into_u64(), (attrs.metadata().name().to_owned(), fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some((_, fields)) = self.open.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(span) = self.open.lock().unwrap().remove(&id.into_u64()) {
            self.closed.lock().unwrap().push(span);
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn commands_loads_appends_and_batches_open_spans_with_their_fields() {
    let capture = Capture::default();
    let closed = capture.closed.clone();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture));

    let store = MemoryEventStore::new();
    let counters = Repository::<Counter, _>::new(store.clone());
    let id = StreamId::new("counter-1").unwrap();
    counters
        .execute(&id, CounterCommand::Add { n: 2 })
        .await
        .unwrap();
    Repository::<Counter, _>::new(store.clone())
        .load(&id)
        .await
        .unwrap();
    ProjectionRunner::new(store.clone(), Totals)
        .catch_up()
        .await
        .unwrap();

    let spans = closed.lock().unwrap().clone();
    let find = |name: &str| {
        spans
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, fields)| fields.clone())
            .unwrap_or_else(|| panic!("no `{name}` span among {spans:?}"))
    };
    let field = |fields: &BTreeMap<String, String>, name: &str| fields[name].clone();

    let command = find("annals.command");
    assert_eq!(field(&command, "annals.aggregate"), "counter");
    assert_eq!(field(&command, "annals.stream"), "counter-1");
    assert_eq!(field(&command, "annals.command"), "Add");
    assert_eq!(field(&command, "annals.outcome"), "appended");
    assert_eq!(field(&command, "annals.attempts"), "1");

    let append = find("annals.append");
    assert_eq!(field(&append, "db.system"), "memory");
    assert_eq!(field(&append, "db.operation.name"), "append");
    assert_eq!(field(&append, "annals.streams"), "1");
    assert_eq!(field(&append, "annals.events"), "1");
    assert_eq!(field(&append, "annals.expected_version"), "version 0");
    assert_eq!(field(&append, "annals.conflict"), "false");

    let load = find("annals.load");
    assert_eq!(field(&load, "annals.stream"), "counter-1");
    assert_eq!(field(&load, "annals.events_replayed"), "1");
    assert_eq!(field(&load, "annals.snapshot"), "false");

    let batch = find("annals.projection.batch");
    assert_eq!(field(&batch, "annals.projection"), "totals");
    assert_eq!(field(&batch, "annals.events"), "1");
    assert!(batch.contains_key("annals.lag_seconds"), "{batch:?}");
}
