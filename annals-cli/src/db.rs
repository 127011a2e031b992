//! Connecting to the database and checking the schema the tool reads.

use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls};

use crate::error::CliError;

/// The latest schema version this binary knows: annals-postgres's, as the version column of
/// `schema_migrations` holds it (an `int4`; the versions are small).
pub(crate) const KNOWN_SCHEMA_VERSION: i32 = annals_postgres::SCHEMA_VERSION as i32;

/// How long a connection attempt may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// SQL that prints the `timestamptz` expression `column` as RFC 3339 in UTC with
/// microseconds (`2026-01-31T23:59:59.123456Z`), whatever the session's time zone and
/// date style: the format `annals tail` prints too.
pub(crate) fn rfc3339(column: &str) -> String {
    format!("to_char(({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

/// Checks a schema name as annals-postgres does (`[a-z_][a-z0-9_]{0,62}`).
pub(crate) fn validate_schema(schema: &str) -> Result<(), CliError> {
    annals_postgres::PgConfig::default()
        .with_schema(schema)
        .validate()
        .map_err(|error| CliError::Usage(error.to_string()))
}

/// The schema name quoted for SQL text; only a validated name is ever written there.
pub(crate) fn quoted(schema: &str) -> String {
    format!("\"{schema}\"")
}

/// Parses `url`, and describes its server without the password, for messages.
pub(crate) fn parse_url(url: &str) -> Result<(tokio_postgres::Config, String), CliError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|error| {
        CliError::Usage(format!("invalid database URL: {error}; check DATABASE_URL"))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or("").to_owned();
    Ok((config, format!("{host}:{port}/{database}")))
}

/// Opens one connection to `url`; the connection runs on a task of its own.
pub(crate) async fn connect(url: &str) -> Result<Client, CliError> {
    let (config, target) = parse_url(url)?;
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|source| CliError::Connect { target, source })?;
    tokio::spawn(async move {
        // The connection ends with an error only when the server goes away; the statement
        // in flight then fails with it, and says so.
        let _ = connection.await;
    });
    Ok(client)
}

/// The schema's version: the latest migration `schema_migrations` lists, `None` when the
/// schema holds no annals tables.
pub(crate) async fn schema_version(client: &Client, schema: &str) -> Result<Option<i32>, CliError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass(format('%I.schema_migrations', $1::text)) IS NOT NULL",
            &[&schema],
        )
        .await?
        .try_get(0)?;
    if !exists {
        return Ok(None);
    }
    let version: Option<i32> = client
        .query_one(
            &format!(
                "SELECT max(version) FROM {}.schema_migrations",
                quoted(schema)
            ),
            &[],
        )
        .await?
        .try_get(0)?;
    Ok(version)
}

/// Connects and checks that `schema` holds annals tables this binary can read.
pub(crate) async fn open(url: &str, schema: &str) -> Result<Client, CliError> {
    validate_schema(schema)?;
    let client = connect(url).await?;
    check_version(schema_version(&client, schema).await?, schema)?;
    Ok(client)
}

/// Refuses a schema with no annals tables or one newer than this binary.
pub(crate) fn check_version(version: Option<i32>, schema: &str) -> Result<i32, CliError> {
    match version {
        None => Err(CliError::NoSchema(schema.to_owned())),
        Some(found) if found > KNOWN_SCHEMA_VERSION => Err(CliError::NewerSchema {
            found,
            known: KNOWN_SCHEMA_VERSION,
        }),
        Some(found) => Ok(found),
    }
}
