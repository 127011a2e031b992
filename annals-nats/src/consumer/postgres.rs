//! Handlers whose effects live in PostgreSQL (feature `postgres`): the event is recorded in
//! the store's inbox and applied through one transaction, so it is applied exactly once.

use annals::{Envelope, Event, HandlerError, UnknownEvents};
use annals_postgres::{PgError, PgEventStore};
use async_trait::async_trait;
use tokio_postgres::Transaction;

use super::handler::{Delivered, Delivery, Failure};

/// A handler whose effects are written through a PostgreSQL transaction, applied **exactly
/// once** with the inbox of an `annals-postgres` store.
///
/// For each event the consumer opens a transaction, records `(consumer name, event id)` in
/// the store's `inbox` table ([`PgEventStore::record_in_inbox`]), calls `handle` with that
/// transaction, commits, and only then acknowledges the message. The inbox row commits with
/// the handler's writes or not at all: a redelivered event (after a crash, a lost
/// acknowledgement, an abort at any point) finds the row and is acknowledged without calling
/// the handler again. The handler's tables may live in any schema of the store's database.
#[async_trait]
pub trait PgNatsHandler: Send {
    /// The event enum it decodes, through its upcasters.
    type Event: Event;

    /// What to do with an event of a type the enum does not know; see
    /// [`NatsHandler::unknown_events`](super::NatsHandler::unknown_events).
    fn unknown_events(&self) -> UnknownEvents {
        UnknownEvents::Fail
    }

    /// Applies one event through `tx`. An error rolls the transaction back, inbox row
    /// included; the event is retried, then parked.
    async fn handle(
        &mut self,
        tx: &Transaction<'_>,
        event: &Envelope<Self::Event>,
    ) -> Result<(), HandlerError>;
}

/// A [`PgNatsHandler`] in a transaction with the inbox of `store`.
pub(crate) struct PgInbox<H> {
    pub(crate) store: PgEventStore,
    pub(crate) handler: H,
}

#[async_trait]
impl<H: PgNatsHandler> Delivery for PgInbox<H> {
    type Event = H::Event;

    fn unknown_events(&self) -> UnknownEvents {
        self.handler.unknown_events()
    }

    async fn deliver(
        &mut self,
        consumer: &str,
        event: &Envelope<H::Event>,
    ) -> Result<Delivered, Failure> {
        let mut client = self
            .store
            .pool()
            .get()
            .await
            .map_err(|e| inbox(PgError::from(e)))?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| inbox(PgError::from(e)))?;
        let new = self
            .store
            .record_in_inbox(&tx, consumer, event.event_id)
            .await
            .map_err(inbox)?;
        if !new {
            tx.rollback().await.map_err(|e| inbox(PgError::from(e)))?;
            return Ok(Delivered::Duplicate);
        }
        // An error drops the transaction: it rolls back, inbox row included.
        self.handler
            .handle(&tx, event)
            .await
            .map_err(Failure::Handler)?;
        tx.commit().await.map_err(|e| inbox(PgError::from(e)))?;
        Ok(Delivered::Applied)
    }
}

fn inbox(error: PgError) -> Failure {
    Failure::Inbox(Box::new(error))
}
