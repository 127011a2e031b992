//! Configuration of a [`PgEventStore`](crate::PgEventStore).

use std::time::Duration;

use crate::error::PgError;

/// The planner settings of the connections a [`PgEventStore`](crate::PgEventStore) opens itself,
/// as PostgreSQL startup options: sequential and bitmap scans are ruled out, so every statement
/// of the store walks an index.
///
/// PostgreSQL caches a prepared statement's plan per connection. A plan made while the events
/// table is small (a new store, or one analyzed while empty) or made without the parameters'
/// values (a generic plan) can scan the whole table, and is kept as the table grows: an idle
/// subscriber's check for new events took over a second at six million events, and appends to
/// a new store slowed with every event until autovacuum came by. Every statement the store runs
/// has an index that serves it, so ruling the scans out costs nothing where an index plan was
/// chosen anyway.
///
/// [`PgEventStore::connect`](crate::PgEventStore::connect) and its siblings put these options
/// before the URL's own `options`, so a setting in the URL wins. Give them to the connections
/// of a pool you pass to [`PgEventStore::from_pool`](crate::PgEventStore::from_pool) too, with
/// [`tokio_postgres::Config::options`]. They apply to the whole session, so also to your own
/// statements on the store's [`pool`](crate::PgEventStore::pool): a query of yours that should
/// scan a whole table can `SET LOCAL enable_seqscan = on` in its transaction.
///
/// ```
/// let mut config: annals_postgres::tokio_postgres::Config =
///     "postgres://app@localhost/bank".parse()?;
/// config.options(annals_postgres::PLANNER_SETTINGS);
/// # Ok::<(), annals_postgres::tokio_postgres::Error>(())
/// ```
pub const PLANNER_SETTINGS: &str = "-c enable_seqscan=off -c enable_bitmapscan=off";

/// `options`, the URL's startup options, after [`PLANNER_SETTINGS`], so the URL's win.
pub(crate) fn with_planner_settings(options: Option<&str>) -> String {
    match options {
        Some(own) if !own.trim().is_empty() => format!("{PLANNER_SETTINGS} {own}"),
        _ => PLANNER_SETTINGS.to_owned(),
    }
}

/// How a [`PgEventStore`](crate::PgEventStore) names its tables and paces its readers.
///
/// ```
/// use annals_postgres::PgConfig;
///
/// let config = PgConfig::default().with_schema("billing_events");
/// assert!(config.validate().is_ok());
/// assert!(PgConfig::default().with_schema("Robert'); DROP TABLE x;--").validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgConfig {
    /// The PostgreSQL schema that holds the store's tables (default `annals`).
    ///
    /// It must match `[a-z_][a-z0-9_]{0,62}`, and must not be a name PostgreSQL reserves:
    /// `information_schema`, or any name starting with `pg_`. It is the only name ever written
    /// into SQL text, and only after this check.
    pub schema: String,
    /// The most connections the pool opens (default 16). Used by
    /// [`PgEventStore::connect`](crate::PgEventStore::connect) only.
    pub pool_size: usize,
    /// How long [`read_all`](annals::EventStore::read_all) waits at most for older
    /// event-writing transactions still in flight when committed events are held back behind
    /// them (default 1 s).
    ///
    /// Events become readable in the global log only once every transaction that may write
    /// events before them in the log's order has ended, so no reader skips an event that
    /// commits late (see the crate docs for which transactions count). When such a
    /// transaction is running, `read_all` waits for it up to this long, so that a reader sees
    /// events it has just appended; after that it returns what is safe to return.
    pub read_settle: Duration,
    /// How often [`wait_for_events`](crate::PgEventStore::wait_for_events) checks for new
    /// events when no notification arrives (default 1 s): the fallback for lost notifications.
    pub poll_interval: Duration,
    /// When appends send the `NOTIFY` that wakes readers in other processes (default
    /// [`Notifications::AfterCommit`]).
    pub notifications: Notifications,
}

/// When an append sends the `NOTIFY` that wakes readers of the global log in other processes.
/// Readers in the same process are woken at once either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notifications {
    /// Right after the append commits, from a background task of the store, coalesced: the
    /// appends that commit while one `NOTIFY` is in flight, or within 10 ms after it, share the
    /// next one. The append itself stays one statement without `NOTIFY`; a reader in another
    /// process wakes at most about 10 ms later than it would otherwise.
    ///
    /// The default, because a transaction that notifies holds PostgreSQL's notification lock
    /// from its commit until its WAL is flushed, so appends that notify commit one at a time:
    /// measured here with 8 writers and fsync on, inserts in transactions that also notify ran
    /// at 456 per second against 2,827 without.
    #[default]
    AfterCommit,
    /// Inside the append's transaction (`pg_notify` in the append statement), delivered at
    /// commit. Simplest, and exact, but it serializes committing appends (see above).
    InTransaction,
}

impl Default for PgConfig {
    /// Schema `annals`, a pool of 16 connections, reads waiting up to 1 s for transactions in
    /// flight, a poll every second when no notification comes, notifications after commit.
    fn default() -> Self {
        PgConfig {
            schema: "annals".to_owned(),
            pool_size: 16,
            read_settle: Duration::from_secs(1),
            poll_interval: Duration::from_secs(1),
            notifications: Notifications::AfterCommit,
        }
    }
}

impl PgConfig {
    /// Sets the schema name (checked by [`validate`](PgConfig::validate) and on connect).
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the pool size (at least 1).
    pub fn with_pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size.max(1);
        self
    }

    /// Sets how long `read_all` waits at most for older in-flight transactions.
    pub fn with_read_settle(mut self, read_settle: Duration) -> Self {
        self.read_settle = read_settle;
        self
    }

    /// Sets the polling fallback interval of `wait_for_events`.
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval.max(Duration::from_millis(1));
        self
    }

    /// Sets when appends send their `NOTIFY`.
    pub fn with_notifications(mut self, notifications: Notifications) -> Self {
        self.notifications = notifications;
        self
    }

    /// Checks the schema name.
    pub fn validate(&self) -> Result<(), PgError> {
        validate_schema(&self.schema)
    }

    /// The name of the notification channel appends of this schema notify.
    pub(crate) fn channel(&self) -> String {
        // A channel name is an identifier: at most 63 bytes. Two long schemas sharing a
        // prefix only wake each other's waiters, which is harmless.
        let prefix = &self.schema[..self.schema.len().min(56)];
        format!("{prefix}_events")
    }
}

fn validate_schema(schema: &str) -> Result<(), PgError> {
    let invalid = |reason: &str| {
        Err(PgError::InvalidSchema {
            schema: schema.to_owned(),
            reason: reason.to_owned(),
        })
    };
    let mut chars = schema.chars();
    match chars.next() {
        None => return invalid("it is empty"),
        Some(c) if !(c.is_ascii_lowercase() || c == '_') => {
            return invalid("it must start with a lowercase ASCII letter or `_`")
        }
        Some(_) => {}
    }
    if schema.len() > 63 {
        return invalid("it is longer than 63 bytes");
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return invalid("only lowercase ASCII letters, digits and `_` are allowed");
    }
    if schema.starts_with("pg_") {
        return invalid(
            "names starting with `pg_` are reserved by PostgreSQL for its system schemas",
        );
    }
    if schema == "information_schema" {
        return invalid(
            "`information_schema` is reserved by PostgreSQL for the SQL standard's catalog views",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for good in ["annals", "_x", "a", "tenant_42", &"a".repeat(63)] {
            assert!(validate_schema(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "Upper",
            "with space",
            "quote\"",
            "semi;colon",
            "dash-ed",
            "pg_catalog",
            "é",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(validate_schema(bad), Err(PgError::InvalidSchema { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_reserved_by_postgres_are_refused() {
        for reserved in [
            "information_schema",
            "pg_catalog",
            "pg_toast",
            "pg_temp_3",
            "pg_",
            "pg_anything_at_all",
        ] {
            match validate_schema(reserved) {
                Err(PgError::InvalidSchema { schema, reason }) => {
                    assert_eq!(schema, reserved);
                    assert!(reason.contains("reserved by PostgreSQL"), "{reason}");
                }
                other => panic!("{reserved}: expected InvalidSchema, got {other:?}"),
            }
        }
        // Only the exact name and the exact prefix are reserved.
        for allowed in [
            "information_schema2",
            "my_information_schema",
            "pg",
            "pgx",
            "pga_b",
            "_pg_catalog",
        ] {
            assert!(validate_schema(allowed).is_ok(), "{allowed}");
        }
    }

    #[test]
    fn the_urls_options_come_after_the_planner_settings() {
        assert_eq!(with_planner_settings(None), PLANNER_SETTINGS);
        assert_eq!(with_planner_settings(Some("  ")), PLANNER_SETTINGS);
        // PostgreSQL applies `-c` options in order, so the URL's own come last and win.
        assert_eq!(
            with_planner_settings(Some("-c enable_seqscan=on")),
            format!("{PLANNER_SETTINGS} -c enable_seqscan=on")
        );
    }

    #[test]
    fn channel_fits_an_identifier() {
        let config = PgConfig::default().with_schema("a".repeat(63));
        assert!(config.channel().len() <= 63);
        assert_eq!(PgConfig::default().channel(), "annals_events");
    }
}
