//! [`PgEventStore`]: construction and the [`EventStore`] implementation. Appends are
//! [`crate::append`]'s, waiting for new events [`crate::notify`]'s.

use std::fmt;
use std::ops::ControlFlow;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use annals::{
    AppendResult, Checkpoint, EventStore, HeldTurn, Lease, RecordedEvent, ReplayedEvent, Snapshot,
    StoreError, StreamAppend, StreamId, Version,
};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::TryStreamExt;
use tokio::time::Instant;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Socket};
use uuid::Uuid;

// Where the projection runner finds it.
use crate::checkpoint::save_checkpoint_over;
use crate::config::{with_planner_settings, PgConfig};
use crate::error::{refused_write, PgError};
use crate::lease;
use crate::migrate;
use crate::notify::{Announcer, Listen, ListenWith, Notifier};
use crate::prepared::{Frequent, PreparedStatements};
use crate::rows::{
    checkpoint_of, events_of, page_of, replayed_event, signed, snapshot_of, unsigned,
};
use crate::sql::Statements;

/// The histogram of waits for a pooled connection, in seconds (no labels).
pub const POOL_WAIT_SECONDS: &str = "annals_pool_wait_seconds";

/// How long a new connection may take unless the URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a caller waits for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// An [`EventStore`] on PostgreSQL.
///
/// Cheap to clone: clones share one connection pool. See the [crate documentation](crate)
/// for the schema, the append statement and the guarantees of the global log.
#[derive(Clone)]
pub struct PgEventStore {
    /// What the store's modules share; each reads what its concern needs.
    pub(crate) inner: Arc<Inner>,
}

/// The parts of a store, shared by its clones.
pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) config: PgConfig,
    pub(crate) sql: Statements,
    /// The notification channel of the schema.
    pub(crate) channel: String,
    pub(crate) notifier: Notifier,
    pub(crate) announcer: Announcer,
    /// The frequent statements per connection, when the store made its pool (so no recycling
    /// deallocates them behind its back).
    pub(crate) prepared: Option<PreparedStatements>,
    /// How long callers wait for a pooled connection (`annals_pool_wait_seconds`).
    pub(crate) pool_wait: metrics::Histogram,
}

impl fmt::Debug for PgEventStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgEventStore")
            .field("schema", &self.inner.config.schema)
            .field("pool", &self.inner.pool.status())
            .field("notifier", &self.inner.notifier)
            .finish()
    }
}

impl PgEventStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`)
    /// with the default [`PgConfig`], and applies the schema migrations.
    pub async fn connect(url: &str) -> Result<Self, PgError> {
        Self::connect_with(url, PgConfig::default()).await
    }

    /// Connects to the database at `url` with `config`, and applies the schema migrations.
    pub async fn connect_with(url: &str, config: PgConfig) -> Result<Self, PgError> {
        Self::connect_through(url, config, NoTls).await
    }

    /// Connects over TLS with `connector`, and applies the schema migrations.
    #[cfg(feature = "tls")]
    pub async fn connect_tls(
        url: &str,
        config: PgConfig,
        connector: native_tls::TlsConnector,
    ) -> Result<Self, PgError> {
        Self::connect_through(
            url,
            config,
            postgres_native_tls::MakeTlsConnector::new(connector),
        )
        .await
    }

    /// Connects through any TLS connector (or [`NoTls`]), and applies the schema migrations.
    pub async fn connect_through<T>(url: &str, config: PgConfig, tls: T) -> Result<Self, PgError>
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + Sync + 'static,
        T::TlsConnect: Send + Sync,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        config.validate()?;
        let mut pg_config: tokio_postgres::Config = url.parse().map_err(PgError::InvalidUrl)?;
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(CONNECT_TIMEOUT);
        }
        let options = with_planner_settings(pg_config.get_options());
        pg_config.options(&options);
        let manager = Manager::from_config(
            pg_config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()?;
        let store = Self::build(
            pool,
            config,
            Some(Arc::new(ListenWith {
                config: pg_config,
                tls,
            })),
            Some(PreparedStatements::default()),
        );
        store.migrate().await?;
        Ok(store)
    }

    /// A store on an existing pool. It applies no migrations (call
    /// [`migrate`](PgEventStore::migrate)), and without a connection of its own to listen
    /// on, [`wait_for_events`](PgEventStore::wait_for_events) polls; see
    /// [`from_pool_with_listener`](PgEventStore::from_pool_with_listener).
    ///
    /// Open the pool's connections with [`PLANNER_SETTINGS`](crate::PLANNER_SETTINGS) as
    /// their startup options, as the store's own connections are: without them, a plan
    /// PostgreSQL cached while the events table was small can scan the whole table later.
    pub fn from_pool(pool: Pool, config: PgConfig) -> Result<Self, PgError> {
        config.validate()?;
        Ok(Self::build(pool, config, None, None))
    }

    /// A store on an existing pool whose notification listener connects with `listen`
    /// through `tls`. It applies no migrations (call [`migrate`](PgEventStore::migrate)).
    pub fn from_pool_with_listener<T>(
        pool: Pool,
        config: PgConfig,
        listen: tokio_postgres::Config,
        tls: T,
    ) -> Result<Self, PgError>
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + Sync + 'static,
        T::TlsConnect: Send + Sync,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        config.validate()?;
        Ok(Self::build(
            pool,
            config,
            Some(Arc::new(ListenWith {
                config: listen,
                tls,
            })),
            None,
        ))
    }

    fn build(
        pool: Pool,
        config: PgConfig,
        listen: Option<Arc<dyn Listen>>,
        prepared: Option<PreparedStatements>,
    ) -> Self {
        let channel = config.channel();
        PgEventStore {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(&config.schema),
                notifier: Notifier::new(listen, channel.clone()),
                announcer: Announcer::new(),
                channel,
                config,
                prepared,
                pool_wait: metrics::histogram!(POOL_WAIT_SECONDS),
            }),
        }
    }

    /// Applies the schema migrations the database lacks, in one transaction under an advisory
    /// lock, and returns the versions applied (none when the schema is up to date). Safe to
    /// call again and from several processes at once.
    pub async fn migrate(&self) -> Result<Vec<u32>, PgError> {
        let mut client = self.checkout().await?;
        let client: &mut tokio_postgres::Client = &mut client;
        migrate::migrate(client, &self.inner.config.schema).await
    }

    /// The connection pool, for work of your own beside the store's (a read model written in
    /// the same database, for example). Connections the store opened itself carry
    /// [`PLANNER_SETTINGS`](crate::PLANNER_SETTINGS).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The configuration.
    pub fn config(&self) -> &PgConfig {
        &self.inner.config
    }

    /// The schema that holds the store's tables.
    pub fn schema(&self) -> &str {
        &self.inner.config.schema
    }

    /// The statements of this store's schema.
    pub(crate) fn sql(&self) -> &Statements {
        &self.inner.sql
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.checkout().await?)
    }

    /// A pooled connection, the wait for it recorded in `annals_pool_wait_seconds`.
    pub(crate) async fn checkout(&self) -> Result<deadpool_postgres::Object, PgError> {
        let started = std::time::Instant::now();
        let client = self.inner.pool.get().await;
        self.inner.pool_wait.record(started.elapsed());
        Ok(client?)
    }
}

/// A `LIMIT` parameter.
fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl EventStore for PgEventStore {
    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let mut client = self.client().await?;
        self.append_on(&mut client, &appends).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let params: [&(dyn ToSql + Sync); 3] =
            [&stream.as_str(), &signed(from.0), &self::limit(limit)];
        let rows = self.query(&self.inner.sql.read_stream, &params).await?;
        events_of(&rows, Some(stream))
    }

    /// Streams the rows: each is handed to `visit` as it arrives, while the server still
    /// sends the next ones, and only the columns a replay needs are read.
    async fn replay_stream(
        &self,
        stream: &StreamId,
        from: Version,
        limit: usize,
        visit: &mut (dyn for<'e> FnMut(ReplayedEvent<'e>) -> ControlFlow<()> + Send),
    ) -> Result<usize, StoreError> {
        if limit == 0 {
            return Ok(0);
        }
        let client = self.client().await?;
        let statement = self.prepared(&client, Frequent::Replay).await?;
        let params: [&(dyn ToSql + Sync); 3] =
            [&stream.as_str(), &signed(from.0), &self::limit(limit)];
        let rows = client
            .query_raw(&statement, params)
            .await
            .map_err(PgError::from)?;
        let mut rows = pin!(rows);
        let mut visited = 0;
        while let Some(row) = rows.try_next().await.map_err(PgError::from)? {
            visited += 1;
            if visit(replayed_event(&row)?).is_break() {
                break;
            }
        }
        Ok(visited)
    }

    /// One statement reads the page and tells, from the same snapshot, whether committed
    /// events after it wait behind a transaction that writes events; a short page with
    /// events held back is read again (after a pause that doubles up to 50 ms) until that
    /// transaction ends or [`PgConfig::read_settle`] passes.
    async fn read_all(
        &self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let commit = after.commit.to_string();
        let position = signed(after.position.0);
        let deadline = Instant::now() + self.inner.config.read_settle;
        let mut pause = Duration::from_millis(1);
        loop {
            let rows = self
                .query(
                    &self.inner.sql.read_all,
                    &[&commit, &position, &self::limit(limit)],
                )
                .await?;
            let (events, held_back) = page_of(&rows)?;
            if events.len() >= limit || !held_back || Instant::now() >= deadline {
                return Ok(events);
            }
            // Committed events wait behind a transaction still writing events; give it a
            // moment to end, so a reader sees what was just appended.
            tokio::time::sleep_until(deadline.min(Instant::now() + pause)).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    async fn log_head(&self) -> Result<Checkpoint, StoreError> {
        let rows = self.query(&self.inner.sql.log_head, &[]).await?;
        match rows.first() {
            None => Ok(Checkpoint::START),
            Some(row) => Ok(checkpoint_of(row)?),
        }
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Version, StoreError> {
        let rows = self
            .query(&self.inner.sql.stream_version, &[&stream.as_str()])
            .await?;
        match rows.first() {
            Some(row) => Ok(Version(unsigned(
                row.try_get(0).map_err(PgError::from)?,
                "stream version",
            )?)),
            None => Ok(Version::INITIAL),
        }
    }

    async fn read_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let rows = self.query(&self.inner.sql.read_event, &[&event_id]).await?;
        Ok(events_of(&rows, None)?.pop())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let snapshot_version =
            i32::try_from(snapshot.snapshot_version).map_err(|_| StoreError::Rejected {
                stream: snapshot.stream_id.clone(),
                reason: format!(
                    "snapshot version {} is larger than PostgreSQL's integer",
                    snapshot.snapshot_version
                ),
            })?;
        self.query(
            &self.inner.sql.save_snapshot,
            &[
                &snapshot.stream_id.as_str(),
                &signed(snapshot.version.0),
                &snapshot_version,
                &snapshot.state.as_str(),
                &snapshot.taken_at,
            ],
        )
        .await
        .map_err(|error| refused_write(&snapshot.stream_id, error))?;
        Ok(())
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let rows = self
            .query(&self.inner.sql.load_snapshot, &[&stream.as_str()])
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(snapshot_of(row, stream)?))
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, StoreError> {
        let rows = self
            .query(&self.inner.sql.load_checkpoint, &[&name])
            .await?;
        Ok(rows.first().map(checkpoint_of).transpose()?)
    }

    async fn save_checkpoint(&self, name: &str, checkpoint: Checkpoint) -> Result<(), StoreError> {
        self.query(
            &self.inner.sql.save_checkpoint,
            &[
                &name,
                &signed(checkpoint.commit),
                &signed(checkpoint.position.0),
            ],
        )
        .await?;
        Ok(())
    }

    async fn save_checkpoint_if(
        &self,
        name: &str,
        expected: Option<Checkpoint>,
        checkpoint: Checkpoint,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let saved = save_checkpoint_over(&client, self.sql(), name, expected, checkpoint)
            .await
            .map_err(PgError::from)?;
        drop(client);
        if saved {
            return Ok(());
        }
        Err(StoreError::CheckpointMoved {
            name: name.to_owned(),
            expected,
            actual: self.load_checkpoint(name).await?,
        })
    }

    /// A session-level advisory lock keyed by the store's schema and `name`, held on a
    /// connection of its own (taken out of the pool): it dies with that connection, so a
    /// runner that exits, is killed or loses its connection gives the lease up at once, and
    /// the next runner waiting for it takes over.
    async fn acquire_lease(&self, name: &str) -> Result<Box<dyn Lease>, StoreError> {
        Ok(Box::new(lease::acquire(self, name).await?))
    }

    /// The stream's advisory lock, the one every append takes, held at session level on one
    /// pooled connection: appends to the stream from every other connection, in this process
    /// or any other, wait until it is released.
    async fn hold_turn(&self, stream: &StreamId) -> Result<Option<Box<dyn HeldTurn>>, StoreError> {
        Ok(Some(Box::new(lease::hold_turn(self, stream).await?)))
    }

    async fn wait_for_events(
        &self,
        after: Checkpoint,
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        PgEventStore::wait_for_events(self, after, timeout).await
    }
}
