//! A PostgreSQL [`EventStore`](annals::EventStore) for `annals`: what production
//! runs. It passes the same conformance suite as the in-memory store, so code tested on one
//! behaves the same on the other; swapping backends is one line.
//!
//! ```no_run
//! use annals::{EventStore, ExpectedVersion, NewEvent, Payload, Metadata, StreamId};
//! use annals_postgres::PgEventStore;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Connects a pool and applies the schema migrations (in schema `annals`).
//! let store = PgEventStore::connect("postgres://app:secret@localhost/bank").await?;
//!
//! let stream = StreamId::new("bank-account-42")?;
//! let event = NewEvent {
//!     event_id: uuid::Uuid::new_v4(),
//!     event_type: "account.opened".into(),
//!     schema_version: 1,
//!     payload: Payload::from_json(r#"{"owner":"ann"}"#)?,
//!     metadata: Metadata::new().with_actor("teller-7"),
//! };
//! let written = store.append(&stream, ExpectedVersion::NoStream, vec![event]).await?;
//! println!("stream at version {}", written.stream_version);
//!
//! // Or, with an aggregate: `Repository::<BankAccount, _>::new(store)`.
//! # Ok(()) }
//! ```
//!
//! # Schema
//!
//! Migrations are SQL files compiled into the crate, applied by
//! [`PgEventStore::connect`] (or [`PgEventStore::migrate`]) in one transaction under an
//! advisory lock, recorded in `schema_migrations`, and idempotent. All tables live in one
//! schema ([`PgConfig::schema`], validated as `[a-z_][a-z0-9_]{0,62}`): it is the only name
//! ever written into SQL text; every value is a bound parameter.
//!
//! - `events`: `position` (identity), `tx_id` (`xid8`, the writing transaction), `stream_id`,
//!   `version`, `event_id` (unique), `event_type`, `schema_version`, `payload` and `metadata`
//!   (`json`: kept as written, read back without conversion), `recorded_at`; primary key
//!   `(tx_id, position)`, the global log's order; unique `(stream_id, version)`. A trigger
//!   rejects every UPDATE, DELETE and TRUNCATE of it. A stream's version is its last event's.
//! - `snapshots`: the latest snapshot of each stream.
//! - `checkpoints`: where named readers are in the global log.
//! - `inbox`: `(consumer, event_id, handled_at)`, the events each consumer of a message bus
//!   has applied, written in the transaction that applies them
//!   ([`PgEventStore::record_in_inbox`]).
//!
//! Bodies and metadata are `json`, not `jsonb`: `json` is checked to be JSON on the way in
//! and handed back exactly as written, while `jsonb` is rebuilt into text on every read
//! (measured in `benches/compare`'s README). SQL over bodies still works (`payload->>'amount'`,
//! expression indexes); a `jsonb` GIN index over whole bodies is what you give up.
//!
//! # Privileges
//!
//! The schema can be migrated by one (owner) role and used by another that holds only what
//! the store needs. [`PgEventStore::connect`] still runs the migrations, but on a schema
//! already at this crate's latest version it only reads `schema_migrations`, so the using role
//! needs no `CREATE`. For a schema `app` and a role `app_user`:
//!
//! ```sql
//! GRANT USAGE ON SCHEMA app TO app_user;
//! GRANT SELECT ON app.schema_migrations TO app_user;
//! GRANT SELECT, INSERT ON app.events TO app_user;
//! GRANT SELECT, INSERT, UPDATE ON app.snapshots, app.checkpoints TO app_user;
//! GRANT EXECUTE ON FUNCTION app.stream_turn(text) TO app_user;
//! ```
//!
//! `EXECUTE` on `stream_turn` is granted to `PUBLIC` by PostgreSQL unless the database revokes
//! that. No grant on the identity sequence of `events.position` is needed: an identity column
//! draws its values on the table's `INSERT` privilege. `CONNECT` on the database is also needed
//! (granted to `PUBLIC` by default). Projections on PostgreSQL ([`PgProjectionRunner`]) need
//! the same grants, plus whatever their read models write. Consumers that record what they
//! apply in the inbox ([`PgEventStore::record_in_inbox`]) need
//! `GRANT SELECT, INSERT ON app.inbox TO app_user` too.
//!
//! Only the owner of the `events` table (or a superuser) can drop or disable its append-only
//! trigger: a role with only these grants cannot, nor can it `UPDATE`, `DELETE` or `TRUNCATE`
//! events (it holds no such privilege, and the trigger refuses them anyway), nor set
//! `session_replication_role`, which would skip the trigger. Run applications as such a role,
//! and keep the owner for migrations.
//!
//! # Appends
//!
//! An append of one stream is one prepared statement, one round trip: it takes the stream's
//! advisory lock, reads the stream's version from its last event (in the `stream_turn`
//! function, so with a snapshot taken after the lock: a writer that queued behind another
//! reads the version that one committed), checks the expected
//! version, inserts every event from arrays (`unnest`) and sends a notification, all at once;
//! the unique `(stream_id, version)` key is the final arbiter of a version. An append that
//! expects an exact version (as every repository command does) reads no version: it numbers
//! its events from the expected one, which must be stored, and the key refuses it when the
//! stream is further along. Concurrent appends
//! to one stream queue on its lock; appends to different streams never wait for each other.
//! When the statement writes nothing, reads a stale version (it fails on that key) or meets a
//! stored event id, the append is decided again under the streams' locks, which tells an
//! exact retry (which returns the stored result), a reused id ([`StoreError::DuplicateEventId`](annals::StoreError))
//! and a conflict (with the stream's actual version) apart. An append across streams runs the
//! statements in one transaction. A value PostgreSQL cannot hold (a NUL character in an
//! event type) is [`StoreError::Rejected`](annals::StoreError).
//!
//! # The global log
//!
//! Positions are taken when an append runs, so a transaction that commits late can hold
//! lower positions than events already visible. Readers therefore order by
//! `(tx_id, position)` (the [`Checkpoint`](annals::Checkpoint) is that pair) and only
//! read rows below a horizon: the oldest transaction that may still commit events. No reader
//! ever skips an event, and no writer takes a global lock.
//!
//! The horizon passes over every transaction that writes no events: a long transaction on
//! another table or in another database delays no reader. Precisely, a reader of a store is
//! held back only by a running transaction that
//!
//! - writes this store's events (an append, or an [`append_in`](PgEventStore::append_in)
//!   transaction until it ends),
//! - writes its checkpoints (a [`PgProjectionRunner`] batch, until it commits), or
//! - holds a lock on its events table stronger than a read (a migration, for example),
//!
//! and only for the events committed after that transaction started. A read that finds
//! committed events held back waits for such a transaction up to [`PgConfig::read_settle`]
//! (default 1 s) before it returns what is readable; a [`Subscription`](annals::Subscription)
//! reads on when it ends. Transactions are matched with `pg_locks`, which the store reads only
//! when a transaction is running; its snapshot and its page come from one statement.
//!
//! A transaction that got its id before it started writing events (it wrote another table
//! first) could commit them behind a reader that already went past it: `append_in` refuses
//! such a transaction.
//!
//! # Several processes
//!
//! - **Hot streams.** After a conflict, a [`Repository`](annals::Repository) takes the
//!   stream's turn at session level ([`EventStore::hold_turn`](annals::EventStore)) on
//!   one connection, reads what is new, decides and appends while every other writer of the
//!   stream waits: writers that lost a race are served in turn. The lock is requested with the
//!   first read and given back with the append, in the same round trips.
//! - **Projections.** A runner holds its projection's lease, a session-level advisory lock on
//!   a connection of its own, while it runs: one runner handles batches at a time, and when it
//!   dies its connection closes and the next one takes over. Each batch commits only over the
//!   checkpoint it started from.
//!
//! # Notifications
//!
//! By default a store notifies the schema's channel right after its appends commit, at most
//! once per 10 ms ([`Notifications`]); `Notifications::InTransaction` notifies inside each
//! append's transaction instead. [`PgEventStore::wait_for_events`] wakes on it, and polls as
//! a fallback.
//!
//! # Query plans
//!
//! Every statement the store runs is served by an index, and keeps that plan whatever the
//! events table's size, its statistics and the plan cache mode: the connections the store
//! opens carry [`PLANNER_SETTINGS`] (sequential and bitmap scans ruled out), and the
//! `stream_turn` function sets the same for its own statement. A plan PostgreSQL cached while
//! the table was small, or a generic plan made without the parameters' values, would
//! otherwise scan the whole table at every call as the table grows: a new store would slow
//! down with each append until autovacuum analyzed it, and an idle subscriber's check for
//! new events would read the whole log. The global log's reads walk the `(tx_id, position)`
//! key from the reader's checkpoint and stop at their page, so catching up costs the same per
//! event at any size. Give [`PLANNER_SETTINGS`] to a pool of your own passed to
//! [`PgEventStore::from_pool`].
//!
//! # Features
//!
//! - `tls`: `PgEventStore::connect_tls` through `native-tls`. Any other connector works
//!   with [`PgEventStore::connect_through`].
//! - `testing`: the `testing` module, a throwaway cluster and a fresh store per test.

mod append;
mod checkpoint;
mod config;
mod error;
mod inbox;
mod lease;
mod migrate;
mod notify;
mod prepared;
mod projection;
mod rows;
mod sql;
mod store;

#[cfg(feature = "testing")]
pub mod testing;

pub use config::{Notifications, PgConfig, PLANNER_SETTINGS};
pub use error::PgError;
pub use migrate::SCHEMA_VERSION;
pub use projection::{PgProjection, PgProjectionRunner};
pub use store::{PgEventStore, POOL_WAIT_SECONDS};

/// The connection pool type ([`deadpool_postgres::Pool`]).
pub use deadpool_postgres::Pool;
/// The driver, for transactions of your own ([`PgEventStore::append_in`]).
pub use tokio_postgres;
