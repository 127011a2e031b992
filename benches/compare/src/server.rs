//! The PostgreSQL server every contender runs on: a throwaway cluster started like the tests
//! start theirs, or the server `DATABASE_URL` names; and a fresh database per contender.

use annals_postgres::testing::{ClusterOptions, TestCluster};
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::Result;

/// The server of one run.
#[derive(Debug)]
pub(crate) struct Server {
    admin_url: String,
    /// Held so the throwaway cluster lives as long as the run; `None` with `DATABASE_URL`.
    cluster: Option<TestCluster>,
    sync_commit_off: bool,
    run_id: String,
    created: Vec<String>,
}

impl Server {
    /// Starts a throwaway cluster with fsync on and `synchronous_commit` on (or off), or
    /// takes the server of `DATABASE_URL`.
    pub(crate) fn start(sync_commit_off: bool) -> Result<Server> {
        let run_id = Uuid::new_v4().simple().to_string()[..8].to_owned();
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Ok(Server {
                admin_url: url,
                cluster: None,
                sync_commit_off,
                run_id,
                created: Vec::new(),
            }),
            _ => {
                let cluster = TestCluster::start_with(ClusterOptions {
                    fsync: true,
                    synchronous_commit: !sync_commit_off,
                })?;
                Ok(Server {
                    admin_url: cluster.url().to_owned(),
                    cluster: Some(cluster),
                    sync_commit_off,
                    run_id,
                    created: Vec::new(),
                })
            }
        }
    }

    /// Where the server came from, for the table's heading.
    pub(crate) fn origin(&self) -> &'static str {
        if self.cluster.is_some() {
            "a throwaway cluster started by the harness"
        } else {
            "the server of DATABASE_URL"
        }
    }

    async fn admin(&self) -> Result<tokio_postgres::Client> {
        connect(&self.admin_url).await
    }

    /// Creates a new, empty database for `contender` and returns its URL.
    pub(crate) async fn fresh_database(&mut self, contender: &str) -> Result<String> {
        let name = format!("bench_{}_{}", self.run_id, contender);
        let admin = self.admin().await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        self.created.push(name.clone());
        if self.sync_commit_off {
            // Also right on a DATABASE_URL server, whose own setting the harness cannot change.
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE {name} SET synchronous_commit = off"
                ))
                .await?;
        }
        with_database(&self.admin_url, &name)
    }

    /// The server version and the settings a contender's database runs with.
    pub(crate) async fn describe(&mut self) -> Result<(String, String)> {
        let url = self.fresh_database("settings").await?;
        let client = connect(&url).await?;
        let show = |name: &'static str| {
            let client = &client;
            async move {
                let row = client.query_one(&format!("SHOW {name}"), &[]).await?;
                Ok::<String, crate::BoxError>(row.try_get(0)?)
            }
        };
        let version = show("server_version").await?;
        let settings = format!(
            "fsync={}, synchronous_commit={}, full_page_writes={}, shared_buffers={} ({})",
            show("fsync").await?,
            show("synchronous_commit").await?,
            show("full_page_writes").await?,
            show("shared_buffers").await?,
            self.origin(),
        );
        Ok((version, settings))
    }

    /// Drops the databases this run created (a throwaway cluster goes away anyway, but a
    /// `DATABASE_URL` server is someone's).
    pub(crate) async fn drop_databases(&mut self) -> Result<()> {
        if self.cluster.is_some() {
            return Ok(());
        }
        let admin = self.admin().await?;
        for name in self.created.drain(..) {
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
        }
        Ok(())
    }
}

/// Connects one plain tokio-postgres client, its connection driven by a task.
pub(crate) async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("a benchmark connection failed: {error}");
        }
    });
    Ok(client)
}

/// `url` with its database replaced by `database`: `postgres://u@h:p/old?x` becomes
/// `postgres://u@h:p/database?x`.
pub(crate) fn with_database(url: &str, database: &str) -> Result<String> {
    let scheme_end = url
        .find("://")
        .map(|i| i + 3)
        .ok_or("DATABASE_URL must be a URL (postgres://user@host:port/database)")?;
    let (head, rest) = url.split_at(scheme_end);
    let query = rest.find('?').map_or("", |i| &rest[i..]);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    Ok(format!("{head}{authority}/{database}{query}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database() -> Result<()> {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b")?,
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "b")?,
            "postgresql://u:p@h/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "b")?, "postgres://h:1/b");
        assert_eq!(
            with_database("postgres://h?x=1", "b")?,
            "postgres://h/b?x=1"
        );
        assert!(with_database("host=h dbname=x", "b").is_err());
        Ok(())
    }
}
