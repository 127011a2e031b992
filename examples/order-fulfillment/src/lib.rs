//! Two services that talk through events, each with its own event log:
//!
//! - **orders** ([`orders`]): an order is placed, waits for stock, is paid and shipped, or is
//!   cancelled;
//! - **inventory** ([`inventory`]): stock per product, reserved for orders and released.
//!
//! Neither calls the other. The [`InventoryPolicy`] follows the orders log and reserves or
//! releases stock; the [`OrderPolicy`] follows the inventory log and confirms or cancels the
//! order. Both are process managers: each command they send carries the triggering event as
//! its causation and the flow's correlation id, so one order's whole story can be read back
//! from the metadata of both logs. The [`OrderList`] projection keeps a read model of every
//! order's status.

pub mod inventory;
pub mod orders;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use annals::async_trait;
use annals::prelude::*;
use annals::{
    stop_signal, Checkpoint, Envelope, Filter, HandlerError, Projection, ProjectionRunner,
    RecordedEvent, RunError, StopSignal,
};
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
        let context = CommandContext::caused_by(self.name(), event, 0);
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
        let context = CommandContext::caused_by(self.name(), event, 0);
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

/// Runs the whole story on two stores, the orders service's and the inventory service's:
/// restocks 5 widgets; places order `A` (3 widgets), which is reserved, paid and shipped, and
/// order `B` (4 widgets), which finds too little stock and is cancelled.
pub async fn run_flow<S>(orders_store: S, inventory_store: S) -> Result<FlowReport, FlowError>
where
    S: EventStore + Clone + 'static,
{
    let orders = Repository::<Order, _>::new(orders_store.clone());
    let stock = Repository::<Stock, _>::new(inventory_store.clone());
    let book = OrderList::default();

    let (stopper, stop) = stop_signal();
    // Each runner follows one service's log and keeps its checkpoint in that same store.
    let runners: Vec<JoinHandle<Result<(), RunError>>> = vec![
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
    for runner in runners {
        runner.await??;
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
fn spawn_runner<S, P>(
    source: S,
    projection: P,
    stop: StopSignal,
) -> JoinHandle<Result<(), RunError>>
where
    S: EventStore + Clone + 'static,
    P: Projection + 'static,
{
    let mut runner =
        ProjectionRunner::new(source, projection).with_poll_interval(Duration::from_millis(200));
    tokio::spawn(async move { runner.run(stop).await })
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
