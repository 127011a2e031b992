//! Two services that talk through events, each with its own event log:
//!
//! - **orders** ([`orders`]): an order is placed, waits for stock, is paid and shipped, or is
//!   cancelled;
//! - **inventory** ([`inventory`]): stock per product, reserved for orders and released.
//!
//! Neither calls the other. The [`InventoryPolicy`] follows the orders' events and reserves or
//! releases stock; the [`OrderPolicy`] follows the inventory's events and confirms or cancels
//! the order. Both are process managers: each command they send carries the triggering event
//! as its causation and the flow's correlation id, so one order's whole story can be read back
//! from the metadata of both logs. The [`OrderList`] projection keeps a read model of every
//! order's status.
//!
//! The events travel one of two ways: [`run_flow`] has each policy read the other service's
//! log directly (one process, the stores side by side); [`run_flow_over_nats`] has each
//! service relay its log to a NATS JetStream stream and consume the other's, so the services
//! share nothing but the bus.

pub mod inventory;
pub mod orders;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use annals::async_trait;
use annals::prelude::*;
use annals::{
    stop_signal, Checkpoint, Envelope, Filter, HandlerError, Projection, ProjectionRunner,
    RecordedEvent, StopSignal,
};
use annals_nats::{async_nats, NatsConsumer, NatsHandler, Relay, RelayConfig, SubjectMapping};
use tokio::task::JoinHandle;
use uuid::Uuid;

use inventory::{Stock, StockCommand, StockEvent};
use orders::{Order, OrderCommand, OrderEvent, OrderStatus};

/// Follows the orders log: a placed order reserves stock, a cancelled one releases it.
pub struct InventoryPolicy<S: EventStore> {
    stock: Repository<Stock, S>,
}

impl<S: EventStore> InventoryPolicy<S> {
    /// The policy, sending commands to the stock in `inventory` (the inventory service's log).
    pub fn new(inventory: S) -> Self {
        InventoryPolicy {
            stock: Repository::new(inventory),
        }
    }
}

#[async_trait]
impl<S: EventStore + 'static> Projection for InventoryPolicy<S> {
    type Event = OrderEvent;

    fn name(&self) -> &str {
        "inventory-policy"
    }

    fn filter(&self) -> Filter {
        Filter::aggregate::<Order>()
    }

    async fn handle(&mut self, event: &Envelope<OrderEvent>) -> Result<(), HandlerError> {
        self.react(event).await
    }
}

/// Over NATS: each order event once at least; a repeat issues no second command (its
/// idempotency key is the event's).
#[async_trait]
impl<S: EventStore + 'static> NatsHandler for InventoryPolicy<S> {
    type Event = OrderEvent;

    async fn handle(&mut self, event: &Envelope<OrderEvent>) -> Result<(), HandlerError> {
        self.react(event).await
    }
}

impl<S: EventStore> InventoryPolicy<S> {
    async fn react(&mut self, event: &Envelope<OrderEvent>) -> Result<(), HandlerError> {
        let order_id = order_id(&event.stream_id).to_owned();
        let (sku, command) = match &event.event {
            OrderEvent::Placed { sku, quantity, .. } => (
                sku.clone(),
                StockCommand::Reserve {
                    order_id,
                    quantity: *quantity,
                },
            ),
            OrderEvent::Cancelled { sku, .. } => (sku.clone(), StockCommand::Release { order_id }),
            _ => return Ok(()),
        };
        let stock = StreamId::for_aggregate::<Stock>(sku)?;
        let context = CommandContext::caused_by("inventory-policy", event, 0);
        self.stock.execute_with(&stock, command, context).await?;
        Ok(())
    }
}

/// Follows the inventory log: a reservation confirms the order, a rejection cancels it.
pub struct OrderPolicy<S: EventStore> {
    orders: Repository<Order, S>,
}

impl<S: EventStore> OrderPolicy<S> {
    /// The policy, issuing commands to the orders in `store` (the orders service's log).
    pub fn new(store: S) -> Self {
        OrderPolicy {
            orders: Repository::new(store),
        }
    }
}

#[async_trait]
impl<S: EventStore + 'static> Projection for OrderPolicy<S> {
    type Event = StockEvent;

    fn name(&self) -> &str {
        "order-policy"
    }

    fn filter(&self) -> Filter {
        Filter::aggregate::<Stock>()
    }

    async fn handle(&mut self, event: &Envelope<StockEvent>) -> Result<(), HandlerError> {
        self.react(event).await
    }
}

/// Over NATS: each stock event once at least; a repeat issues no second command.
#[async_trait]
impl<S: EventStore + 'static> NatsHandler for OrderPolicy<S> {
    type Event = StockEvent;

    async fn handle(&mut self, event: &Envelope<StockEvent>) -> Result<(), HandlerError> {
        self.react(event).await
    }
}

impl<S: EventStore> OrderPolicy<S> {
    async fn react(&mut self, event: &Envelope<StockEvent>) -> Result<(), HandlerError> {
        let (order_id, command) = match &event.event {
            StockEvent::Reserved { order_id, .. } => (order_id, OrderCommand::ConfirmReservation),
            StockEvent::ReservationRejected {
                order_id,
                quantity,
                available,
            } => (
                order_id,
                OrderCommand::Cancel {
                    reason: format!("out of stock: {quantity} asked, {available} available"),
                },
            ),
            _ => return Ok(()),
        };
        let order = StreamId::for_aggregate::<Order>(order_id)?;
        let context = CommandContext::caused_by("order-policy", event, 0);
        self.orders.execute_with(&order, command, context).await?;
        Ok(())
    }
}

/// The read model: every order's status, with the checkpoint it reflects (kept together, so
/// delivery is exactly once).
#[derive(Debug, Default, Clone)]
pub struct OrderBook {
    /// Status by order id.
    pub statuses: BTreeMap<String, OrderStatus>,
    checkpoint: Option<Checkpoint>,
}

/// Keeps the [`OrderBook`] from the orders log.
#[derive(Clone, Default)]
pub struct OrderList(Arc<Mutex<OrderBook>>);

impl OrderList {
    /// A copy of the read model now.
    pub fn snapshot(&self) -> OrderBook {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Projection for OrderList {
    type Event = OrderEvent;

    fn name(&self) -> &str {
        "order-list"
    }

    fn filter(&self) -> Filter {
        Filter::aggregate::<Order>()
    }

    async fn handle(&mut self, event: &Envelope<OrderEvent>) -> Result<(), HandlerError> {
        let status = match event.event {
            OrderEvent::Placed { .. } => OrderStatus::Placed,
            OrderEvent::StockReserved => OrderStatus::Reserved,
            OrderEvent::Paid { .. } => OrderStatus::Paid,
            OrderEvent::Shipped => OrderStatus::Shipped,
            OrderEvent::Cancelled { .. } => OrderStatus::Cancelled,
        };
        let mut book = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        book.statuses
            .insert(order_id(&event.stream_id).to_owned(), status);
        book.checkpoint = Some(event.checkpoint());
        Ok(())
    }

    async fn checkpoint(&self) -> Result<Option<Checkpoint>, HandlerError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .checkpoint)
    }

    async fn reset(&mut self) -> Result<(), HandlerError> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = OrderBook::default();
        Ok(())
    }
}

fn order_id(stream: &StreamId) -> &str {
    stream
        .as_str()
        .strip_prefix("order-")
        .unwrap_or(stream.as_str())
}

/// What a run of the flow produced, for printing and for tests.
#[derive(Debug)]
pub struct FlowReport {
    /// The order read model at the end.
    pub book: OrderBook,
    /// Every event of both logs, orders first, then inventory.
    pub events: Vec<RecordedEvent>,
    /// The correlation id of each placed order, by order id.
    pub flows: BTreeMap<String, Uuid>,
}

/// Errors of the flow.
pub type FlowError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the whole story on two stores, the orders service's and the inventory service's, each
/// policy reading the other service's log directly: restocks 5 widgets; places order `A` (3
/// widgets), which is reserved, paid and shipped, and order `B` (4 widgets), which finds too
/// little stock and is cancelled.
pub async fn run_flow<S>(orders_store: S, inventory_store: S) -> Result<FlowReport, FlowError>
where
    S: EventStore + Clone + 'static,
{
    let book = OrderList::default();
    let (stopper, stop) = stop_signal();
    // Each runner follows one service's log and keeps its checkpoint in that same store.
    let tasks = vec![
        spawn_runner(
            orders_store.clone(),
            InventoryPolicy::new(inventory_store.clone()),
            stop.clone(),
        ),
        spawn_runner(
            inventory_store.clone(),
            OrderPolicy::new(orders_store.clone()),
            stop.clone(),
        ),
        spawn_runner(orders_store.clone(), book.clone(), stop.clone()),
    ];
    drive(orders_store, inventory_store, book, stopper, tasks).await
}

/// The same story with the services talking only through NATS JetStream: each relays its log
/// to a stream of its own (`ORDERS`, `INVENTORY`) and its policy consumes the other's. The
/// policies handle each event at least once; their commands carry the event's idempotency
/// key, so a redelivered event issues nothing twice.
pub async fn run_flow_over_nats<S>(
    orders_store: S,
    inventory_store: S,
    client: async_nats::Client,
) -> Result<FlowReport, FlowError>
where
    S: EventStore + Clone + 'static,
{
    let book = OrderList::default();
    let (stopper, stop) = stop_signal();
    let mut tasks = Vec::new();
    let relays = [
        (
            orders_store.clone(),
            RelayConfig::new("ORDERS", SubjectMapping::new("orders").aggregate::<Order>())
                .with_filter(Filter::aggregate::<Order>()),
        ),
        (
            inventory_store.clone(),
            RelayConfig::new(
                "INVENTORY",
                SubjectMapping::new("inventory").aggregate::<Stock>(),
            )
            .with_filter(Filter::aggregate::<Stock>()),
        ),
    ];
    for (store, config) in relays {
        let mut relay = Relay::new(store, client.clone(), config);
        // The first catch-up creates the stream the other service's consumer binds to.
        relay.catch_up().await?;
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            relay.run(stop).await;
            Ok(())
        }));
    }
    let js = async_nats::jetstream::new(client);
    let inventory_side =
        NatsConsumer::new(js.clone(), "inventory-policy", "ORDERS").with_filter_subject("orders.>");
    let policy = InventoryPolicy::new(inventory_store.clone());
    tasks.push(spawn_consumer(inventory_side, policy, stop.clone()));
    let orders_side =
        NatsConsumer::new(js, "order-policy", "INVENTORY").with_filter_subject("inventory.>");
    let policy = OrderPolicy::new(orders_store.clone());
    tasks.push(spawn_consumer(orders_side, policy, stop.clone()));
    // The read model is the orders service's own: it reads its own log.
    tasks.push(spawn_runner(
        orders_store.clone(),
        book.clone(),
        stop.clone(),
    ));
    drive(orders_store, inventory_store, book, stopper, tasks).await
}

/// A service's task: a runner, a relay or a consumer.
type Task = JoinHandle<Result<(), FlowError>>;

/// Plays the story while `tasks` carry the events between the services, then stops them and
/// collects both logs.
async fn drive<S>(
    orders_store: S,
    inventory_store: S,
    book: OrderList,
    stopper: annals::Stopper,
    tasks: Vec<Task>,
) -> Result<FlowReport, FlowError>
where
    S: EventStore + Clone + 'static,
{
    let orders = Repository::<Order, _>::new(orders_store.clone());
    let stock = Repository::<Stock, _>::new(inventory_store.clone());

    let warehouse = Metadata::new().with_actor("warehouse");
    stock
        .execute_with(
            &StreamId::for_aggregate::<Stock>("widget")?,
            StockCommand::Restock { quantity: 5 },
            CommandContext::new().with_metadata(warehouse),
        )
        .await?;

    let mut flows = BTreeMap::new();
    for (order, customer, quantity) in [("A", "ann", 3), ("B", "bob", 4)] {
        let flow = Uuid::new_v4();
        flows.insert(order.to_owned(), flow);
        let context = CommandContext::new().with_metadata(
            Metadata::new()
                .with_correlation_id(flow)
                .with_actor(customer),
        );
        orders
            .execute_with(
                &StreamId::for_aggregate::<Order>(order)?,
                OrderCommand::Place {
                    customer: customer.into(),
                    sku: "widget".into(),
                    quantity,
                },
                context,
            )
            .await?;
    }

    wait_for(&book, "A", OrderStatus::Reserved).await?;
    let a = StreamId::for_aggregate::<Order>("A")?;
    let customer = CommandContext::new().with_metadata(
        Metadata::new()
            .with_correlation_id(flows["A"])
            .with_actor("ann"),
    );
    orders
        .execute_with(&a, OrderCommand::Pay { amount: 2_997 }, customer)
        .await?;
    let shipping = CommandContext::new().with_metadata(
        Metadata::new()
            .with_correlation_id(flows["A"])
            .with_actor("warehouse"),
    );
    orders
        .execute_with(&a, OrderCommand::Ship, shipping)
        .await?;
    wait_for(&book, "A", OrderStatus::Shipped).await?;
    wait_for(&book, "B", OrderStatus::Cancelled).await?;

    stopper.stop();
    for task in tasks {
        task.await??;
    }

    let mut events = Vec::new();
    for store in [&orders_store, &inventory_store] {
        let mut reader = store.log_reader(Checkpoint::START);
        while let Some(batch) = reader.next_batch().await? {
            events.extend(batch);
        }
    }
    Ok(FlowReport {
        book: book.snapshot(),
        events,
        flows,
    })
}

/// Runs `projection` over the log of `source` until `stop` fires.
fn spawn_runner<S, P>(source: S, projection: P, stop: StopSignal) -> Task
where
    S: EventStore + Clone + 'static,
    P: Projection + 'static,
{
    let mut runner =
        ProjectionRunner::new(source, projection).with_poll_interval(Duration::from_millis(200));
    tokio::spawn(async move { Ok(runner.run(stop).await?) })
}

/// Runs `handler` under `consumer` until `stop` fires.
fn spawn_consumer<H>(consumer: NatsConsumer, handler: H, stop: StopSignal) -> Task
where
    H: NatsHandler + 'static,
{
    tokio::spawn(async move { Ok(consumer.run(handler, stop).await?) })
}

async fn wait_for(book: &OrderList, order: &str, status: OrderStatus) -> Result<(), FlowError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while book.snapshot().statuses.get(order) != Some(&status) {
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "order {order} did not reach {status:?} in 30 s (it is {:?})",
                book.snapshot().statuses.get(order)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
