//! Embedded, versioned schema migrations, applied in one transaction under an advisory lock.
//!
//! Each migration is a SQL file compiled into the crate. Applying them is idempotent and safe
//! from several processes at once: the transaction first takes a transaction-level advisory
//! lock derived from the schema name, so concurrent callers queue, and each applies only the
//! versions `schema_migrations` does not list yet.

use tokio_postgres::Client;

use crate::error::PgError;

/// One embedded migration.
struct Migration {
    version: u32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in version order. Append only: never edit an applied one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "drop_streams",
        sql: include_str!("../migrations/0002_drop_streams.sql"),
    },
    Migration {
        version: 3,
        name: "json_bodies",
        sql: include_str!("../migrations/0003_json_bodies.sql"),
    },
    Migration {
        version: 4,
        name: "log_key",
        sql: include_str!("../migrations/0004_log_key.sql"),
    },
    Migration {
        version: 5,
        name: "index_plans",
        sql: include_str!("../migrations/0005_index_plans.sql"),
    },
    Migration {
        version: 6,
        name: "inbox",
        sql: include_str!("../migrations/0006_inbox.sql"),
    },
];

/// The latest schema version this crate knows: the version
/// [`PgEventStore::migrate`](crate::PgEventStore::migrate) brings a schema to.
pub const SCHEMA_VERSION: u32 = 6;

/// The advisory lock key of `schema`'s migrations: a stable 64-bit FNV-1a hash, so every
/// process and every version of this crate agree on it.
fn lock_key(schema: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "annals-postgres migrations ".bytes().chain(schema.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Applies the migrations `schema` lacks, in one transaction. Returns the versions applied.
///
/// `schema` must have been validated: it is written into the SQL as a quoted identifier.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<Vec<u32>, PgError> {
    let quoted = format!("\"{schema}\"");
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
        .await?;
    // Checked before creating, because CREATE ... IF NOT EXISTS still demands the privilege
    // to create: a role that may only use an existing schema can run this too.
    let schema_exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .await?
        .try_get(0)?;
    if !schema_exists {
        tx.batch_execute(&format!("CREATE SCHEMA {quoted}")).await?;
    }
    let table_exists: bool = tx
        .query_one(
            "SELECT to_regclass(format('%I.schema_migrations', $1::text)) IS NOT NULL",
            &[&schema],
        )
        .await?
        .try_get(0)?;
    if !table_exists {
        tx.batch_execute(&format!(
            "CREATE TABLE {quoted}.schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )"
        ))
        .await?;
    }
    let applied: Vec<i32> = tx
        .query(
            &format!("SELECT version FROM {quoted}.schema_migrations"),
            &[],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    if let Some(newer) = applied.iter().filter(|&&v| v > SCHEMA_VERSION as i32).max() {
        tracing::warn!(
            schema,
            newer,
            known = SCHEMA_VERSION,
            "the schema was migrated by a newer annals-postgres"
        );
    }
    let mut done = Vec::new();
    for migration in MIGRATIONS {
        let version = migration.version as i32;
        if applied.contains(&version) {
            continue;
        }
        let failed = |source| PgError::Migration {
            version: migration.version,
            name: migration.name,
            source,
        };
        tx.batch_execute(&migration.sql.replace("__SCHEMA__", &quoted))
            .await
            .map_err(failed)?;
        tx.execute(
            &format!("INSERT INTO {quoted}.schema_migrations (version, name) VALUES ($1, $2)"),
            &[&version, &migration.name],
        )
        .await
        .map_err(failed)?;
        tracing::info!(schema, version, name = migration.name, "applied migration");
        done.push(migration.version);
    }
    tx.commit().await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version as usize, index + 1);
        }
        assert_eq!(MIGRATIONS.len() as u32, SCHEMA_VERSION);
    }

    #[test]
    fn lock_keys_differ_by_schema() {
        assert_ne!(lock_key("a"), lock_key("b"));
        assert_eq!(lock_key("annals"), lock_key("annals"));
    }
}
