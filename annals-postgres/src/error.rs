//! The errors of setting up or running a [`PgEventStore`](crate::PgEventStore).

/// Setting up or running a [`PgEventStore`](crate::PgEventStore) failed.
///
/// The [`EventStore`](annals::EventStore) methods return
/// [`StoreError`](annals::StoreError)s; their `Backend` variant carries one of these.
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
