//! The inbox: which events each consumer of a message bus has applied, recorded in the
//! transaction that applies them, so that a redelivered event is applied once.
//!
//! A consumer calls [`PgEventStore::record_in_inbox`] first in the transaction that applies
//! an event. The row and the event's effects commit together or not at all:
//!
//! - `true`: the event is new to this consumer; apply it through the same transaction, then
//!   commit.
//! - `false`: a committed transaction applied it before (or one in flight did, and has now
//!   committed: the insert waited for it); apply nothing.

use tokio_postgres::types::Type;
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::error::PgError;
use crate::store::PgEventStore;

impl PgEventStore {
    /// Records in `tx` that `consumer` applies event `event_id`; `false` when that is already
    /// recorded (the event was applied before and must not be applied again).
    ///
    /// The row lives in the store's schema (`inbox`, primary key `(consumer, event_id)`) and
    /// commits or rolls back with `tx`. When another transaction recorded the same pair and has
    /// not ended yet, the call waits for it: `false` if it commits, `true` if it rolls back.
    /// The using role needs `SELECT, INSERT` on the table (see the crate's "Privileges").
    pub async fn record_in_inbox(
        &self,
        tx: &Transaction<'_>,
        consumer: &str,
        event_id: Uuid,
    ) -> Result<bool, PgError> {
        // Typed parameters: one round trip, with no statement to prepare first.
        let inserted = tx
            .execute_typed(
                &format!(
                    "INSERT INTO \"{}\".inbox (consumer, event_id) VALUES ($1, $2) \
                     ON CONFLICT (consumer, event_id) DO NOTHING",
                    self.schema()
                ),
                &[(&consumer, Type::TEXT), (&event_id, Type::UUID)],
            )
            .await?;
        Ok(inserted == 1)
    }
}
