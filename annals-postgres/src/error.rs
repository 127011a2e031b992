//! The errors of setting up or running a [`PgEventStore`](crate::PgEventStore), and how a
//! failed statement maps to the core's [`StoreError`]: which SQLSTATEs and constraints mean a
//! refused value, a stored event id or a stale version.

use annals::{StoreError, StreamId};
use tokio_postgres::error::{DbError, SqlState};

/// Setting up or running a [`PgEventStore`](crate::PgEventStore) failed.
///
/// The [`EventStore`](annals::EventStore) methods return
/// [`StoreError`]s; their `Backend` variant carries one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The configured schema name is not allowed.
    #[error("invalid schema name {schema:?}: {reason} (expected `[a-z_][a-z0-9_]{{0,62}}`)")]
    InvalidSchema {
        /// The rejected name.
        schema: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The connection URL does not parse.
    #[error("invalid PostgreSQL connection URL: {0}")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// The connection pool could not be built.
    #[error("cannot build the connection pool: {0}")]
    Pool(#[from] deadpool_postgres::BuildError),
    /// No connection could be had from the pool.
    #[error("cannot get a database connection: {0}")]
    Connection(#[from] deadpool_postgres::PoolError),
    /// A schema migration failed; the migration transaction was rolled back.
    #[error("schema migration {version} ({name}) failed: {source}")]
    Migration {
        /// The migration's version.
        version: u32,
        /// The migration's name.
        name: &'static str,
        /// The database error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A database operation failed.
    #[error("database error: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// A stored row does not hold what the store wrote.
    #[error("cannot decode stored {what}: {detail}")]
    Decode {
        /// The value that failed to decode.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// The TLS connector could not be built.
    #[cfg(feature = "tls")]
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] native_tls::Error),
}

impl PgError {
    pub(crate) fn decode(what: &'static str, detail: impl std::fmt::Display) -> Self {
        PgError::Decode {
            what,
            detail: detail.to_string(),
        }
    }
}

impl From<PgError> for annals::StoreError {
    fn from(error: PgError) -> Self {
        annals::StoreError::backend(error)
    }
}

/// Why an append statement wrote nothing, when that is not simply a version that does not
/// match (which each statement reports in its rows).
pub(crate) enum AppendFailure {
    /// An event id of the append is stored already: an exact retry, a reused id, or a
    /// concurrent writer of the same events; only the resolution of the refusal
    /// ([`crate::append`]) tells them apart. A transaction the statement ran in is aborted.
    EventIdStored,
    /// The append is refused (a value PostgreSQL cannot hold) or the backend failed: final.
    Error(StoreError),
}

impl From<PgError> for AppendFailure {
    fn from(error: PgError) -> Self {
        AppendFailure::Error(error.into())
    }
}

impl From<tokio_postgres::Error> for AppendFailure {
    fn from(error: tokio_postgres::Error) -> Self {
        AppendFailure::Error(PgError::from(error).into())
    }
}

/// The unique key of `events.event_id`.
const EVENT_ID_KEY: &str = "events_event_id_key";
/// The `(stream_id, version)` key of the events table.
const STREAM_VERSION_KEY: &str = "events_stream_version_key";

/// Maps a failed write to `stream`: a stored event id, a value PostgreSQL cannot hold (a NUL
/// character in an event type, an over-long value...), or a backend failure.
pub(crate) fn classify(stream: &StreamId, error: tokio_postgres::Error) -> AppendFailure {
    if let Some(db) = error.as_db_error() {
        if *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(EVENT_ID_KEY) {
            return AppendFailure::EventIdStored;
        }
        if let Some(reason) = rejection(db) {
            return AppendFailure::Error(StoreError::Rejected {
                stream: stream.clone(),
                reason,
            });
        }
    }
    AppendFailure::Error(PgError::from(error).into())
}

/// A failed write to `stream` other than an append's (a snapshot) as the core's error: a value
/// PostgreSQL cannot hold is [`StoreError::Rejected`].
pub(crate) fn refused_write(stream: &StreamId, error: PgError) -> StoreError {
    match error {
        PgError::Database(error) => match classify(stream, error) {
            AppendFailure::Error(error) => error,
            AppendFailure::EventIdStored => StoreError::backend("unexpected duplicate event id"),
        },
        other => other.into(),
    }
}

/// Why PostgreSQL refused a value, if the error is about the data rather than the backend:
/// SQLSTATE class 22 (data exception, e.g. 22P05 untranslatable character, 22021 invalid byte
/// sequence) or 54 (program limit exceeded, e.g. a JSON value too large).
pub(crate) fn rejection(db: &DbError) -> Option<String> {
    let code = db.code().code();
    (code.starts_with("22") || code.starts_with("54")).then(|| {
        format!(
            "PostgreSQL cannot store it: {} (SQLSTATE {code})",
            db.message()
        )
    })
}

/// Whether `error` is the `(stream_id, version)` key refusing an event: the version an append
/// read was stale (an append committed after the statement's snapshot was taken).
pub(crate) fn is_stale_version(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(STREAM_VERSION_KEY)
    })
}
