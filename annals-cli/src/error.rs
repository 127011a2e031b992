//! The tool's errors, each with the exit code it ends the process with.

use std::process::ExitCode;

/// What went wrong, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The command line asks for something impossible (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// An operation was refused, for example a reset without confirmation (exit code 2).
    #[error("{0}")]
    Refused(String),
    /// Something looked for is not stored (exit code 1).
    #[error("{0}")]
    NotFound(String),
    /// The database cannot be reached (exit code 3).
    #[error("cannot connect to {target}: {source}; check DATABASE_URL")]
    Connect {
        /// Where the tool tried to connect, without the password.
        target: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// The schema holds no annals tables (exit code 3).
    #[error("schema `{0}` has no annals tables; run `annals migrate`")]
    NoSchema(String),
    /// The schema was migrated by a newer annals (exit code 3).
    #[error(
        "schema version {found} is newer than this binary (knows {known}); upgrade annals-cli"
    )]
    NewerSchema {
        /// The schema's version.
        found: i32,
        /// The latest version this binary knows.
        known: i32,
    },
    /// A statement failed (exit code 3).
    #[error("database error: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// The store failed, for example while migrating (exit code 3).
    #[error("store error: {0}")]
    Store(#[from] annals_postgres::PgError),
    /// Reading the log failed (exit code 3).
    #[error("cannot read the log: {0}")]
    Read(#[from] annals::StoreError),
    /// Writing the output failed (exit code 3).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The process exit code of this error: 1 a finding, 2 usage or refused, 3 the database.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            CliError::NotFound(_) => ExitCode::from(1),
            CliError::Usage(_) | CliError::Refused(_) => ExitCode::from(2),
            CliError::Connect { .. }
            | CliError::NoSchema(_)
            | CliError::NewerSchema { .. }
            | CliError::Database(_)
            | CliError::Store(_)
            | CliError::Read(_)
            | CliError::Output(_) => ExitCode::from(3),
        }
    }
}
