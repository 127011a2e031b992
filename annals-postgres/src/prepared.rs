//! Running the store's statements on pooled connections, each prepared once per connection:
//! the frequent ones (every append and replay) are found again by the connection's id, the
//! others through deadpool's statement cache.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use annals::StoreError;
use deadpool_postgres::{Object, ObjectId};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use crate::append::insert::InsertStatement;
use crate::error::PgError;
use crate::store::PgEventStore;

/// A statement run on every append or replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Frequent {
    /// The general append statement ([`crate::append`]).
    General,
    /// An insert statement, the common append ([`crate::append::insert`]).
    Insert(InsertStatement),
    /// A stream's replay.
    Replay,
}

/// The frequent statements prepared on each connection, found again by the connection's id.
///
/// deadpool's statement cache finds a statement by hashing its whole SQL text: for the
/// append statement that was a fifth of an append's instructions in the client (callgrind).
/// A miss here falls back to that cache, so a statement is still prepared once per connection.
#[derive(Default)]
pub(crate) struct PreparedStatements(Mutex<HashMap<(ObjectId, Frequent), Statement>>);

impl PgEventStore {
    /// The prepared `statement` on `client`.
    pub(crate) async fn prepared(
        &self,
        client: &Object,
        statement: Frequent,
    ) -> Result<Statement, StoreError> {
        let inner = &*self.inner;
        let sql = match statement {
            Frequent::General => inner.sql.append.general(),
            Frequent::Insert(insert) => inner.sql.append.insert(insert),
            Frequent::Replay => &inner.sql.replay_stream,
        };
        let Some(cache) = &inner.prepared else {
            return Ok(client.prepare_cached(sql).await.map_err(PgError::from)?);
        };
        let key = (Object::id(client), statement);
        let lock = || cache.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(statement) = lock().get(&key) {
            return Ok(statement.clone());
        }
        let statement = client.prepare_cached(sql).await.map_err(PgError::from)?;
        let mut statements = lock();
        // Entries of connections the pool has closed since: start over now and then.
        if statements.len() >= 4 * inner.pool.status().max_size.max(1) {
            statements.clear();
        }
        statements.insert(key, statement.clone());
        Ok(statement)
    }

    /// Runs `sql` with `params` on a pooled connection, prepared through deadpool's statement
    /// cache, and returns its rows.
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PgError> {
        let client = self.checkout().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, params).await?)
    }
}
