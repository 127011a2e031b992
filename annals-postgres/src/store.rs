//! [`PgEventStore`]: construction, the [`EventStore`] implementation, appends inside a
//! caller's transaction, and waiting for new events.

use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use annals::{
    AppendResult, Checkpoint, EventStore, HeldTurn, Lease, Payload, Position, RecordedEvent,
    ReplayedEvent, Snapshot, StoreError, StreamAppend, StreamId, Version,
};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, ObjectId, Pool, RecyclingMethod, Runtime};
use futures_util::TryStreamExt;
use tokio::time::Instant;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Socket, Statement};
use uuid::Uuid;

use crate::append::{self, Failed};
use crate::config::{with_planner_settings, Notifications, PgConfig};
use crate::error::PgError;
use crate::lease;
use crate::migrate;
use crate::notify::{Announcer, Listen, ListenWith, Notifier};
use crate::rows::{recorded_event, replayed_event, schema_version, signed, unsigned, JsonText};
use crate::sql::{Numbering, Sql};

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
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    config: PgConfig,
    sql: Sql,
    channel: String,
    notifier: Notifier,
    announcer: Announcer,
    /// The hot statements per connection, when the store made its pool (so no recycling
    /// deallocates them behind its back).
    hot: Option<HotStatements>,
}

/// A statement run on every append or load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Hot {
    Append,
    /// A lean append ([`Sql::lean`]): its numbering, and whether it has exactly one event.
    Lean(Numbering, bool),
    Replay,
}

/// The hot statements prepared on each connection, found again by the connection's id.
///
/// deadpool's statement cache finds a statement by hashing its whole SQL text: for the
/// append statement that was a fifth of an append's instructions in the client (callgrind).
/// A miss here falls back to that cache, so a statement is still prepared once per connection.
#[derive(Default)]
struct HotStatements(Mutex<HashMap<(ObjectId, Hot), Statement>>);

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
            Some(HotStatements::default()),
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
        hot: Option<HotStatements>,
    ) -> Self {
        let channel = config.channel();
        PgEventStore {
            inner: Arc::new(Inner {
                pool,
                sql: Sql::new(&config.schema),
                notifier: Notifier::new(listen, channel.clone()),
                announcer: Announcer::new(),
                channel,
                config,
                hot,
            }),
        }
    }

    /// Applies the schema migrations the database lacks, in one transaction under an advisory
    /// lock, and returns the versions applied (none when the schema is up to date). Safe to
    /// call again and from several processes at once.
    pub async fn migrate(&self) -> Result<Vec<u32>, PgError> {
        let mut client = self.inner.pool.get().await?;
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

    /// Appends inside the caller's transaction `tx`, with the same checks and results as
    /// [`EventStore::append_streams`]: the events commit (and their notification goes out)
    /// when `tx` commits, together with whatever else `tx` wrote.
    ///
    /// Call it before `tx` writes anything else. A transaction that already has a transaction
    /// id (it wrote to another table) when it starts writing events is refused with
    /// [`StoreError::Rejected`]: readers pass over transactions that write no events, so its
    /// events could commit behind a reader that already went past it. (A
    /// [`PgProjectionRunner`](crate::PgProjectionRunner)'s transaction may append in its
    /// handlers: it holds readers back from its start.)
    ///
    /// In a REPEATABLE READ or SERIALIZABLE transaction whose snapshot predates the stream's
    /// last append, the append cannot see the stream's version: it is refused with
    /// [`StoreError::Backend`], and only a new transaction can append.
    ///
    /// The append runs in a savepoint, so a refused append leaves `tx` usable. Until `tx`
    /// ends, readers of the global log see none of the events written after it started
    /// (see [`EventStore::read_all`]): keep such transactions short.
    pub async fn append_in(
        &self,
        tx: &mut tokio_postgres::Transaction<'_>,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let encoded = append::encode(&appends)?;
        if encoded.is_empty() {
            return Ok(Vec::new());
        }
        // Checked before the append statement is prepared: preparing an INSERT locks the
        // events table already.
        let may_append: bool = tx
            .query_one(self.inner.sql.may_append_in.as_str(), &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(PgError::from)?;
        if !may_append {
            return Err(StoreError::Rejected {
                stream: appends[0].stream_id.clone(),
                reason: "append_in must come before the transaction writes anything else: a \
                         transaction that already has a transaction id when it starts writing \
                         events could commit them behind a reader that passed it"
                    .to_owned(),
            });
        }
        let statement = tx
            .prepare(&self.inner.sql.append)
            .await
            .map_err(PgError::from)?;
        {
            let savepoint = tx.transaction().await.map_err(PgError::from)?;
            append::lock_streams(&savepoint, &self.inner.sql, &encoded).await?;
            // The caller commits: only a notification inside its transaction is sent then.
            let channel = Some(self.inner.channel.as_str());
            match append::fast(&savepoint, &statement, channel, &encoded).await {
                Ok(Some(results)) => {
                    savepoint.commit().await.map_err(PgError::from)?;
                    return Ok(results);
                }
                Ok(None) | Err(Failed::DuplicateId) => {
                    savepoint.rollback().await.map_err(PgError::from)?
                }
                Err(Failed::Store(error)) => {
                    savepoint.rollback().await.map_err(PgError::from)?;
                    return Err(error);
                }
            }
        }
        append::slow(
            tx,
            &statement,
            &self.inner.sql,
            Some(self.inner.channel.as_str()),
            &encoded,
        )
        .await
    }

    /// Waits until events after `after` may be readable in the global log, or `timeout`
    /// passes.
    ///
    /// Returns `true` at once when events after `after` are visible to
    /// [`read_all`](EventStore::read_all), and otherwise as soon as a notification arrives
    /// (an append committed, or the listener reconnected and may have missed one): read the
    /// log then. Returns `false` when the timeout passes with nothing new. Notifications are
    /// only a wake-up: the log is also polled every [`PgConfig::poll_interval`], so a lost
    /// notification delays a reader at most that long. The listener starts on the first call,
    /// on its own connection.
    pub async fn wait_for_events(
        &self,
        after: Checkpoint,
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        let deadline = Instant::now() + timeout;
        let poll_interval = self.inner.config.poll_interval;
        let mut wakeups = self.inner.notifier.subscribe();
        if let Some(receiver) = wakeups.as_mut() {
            // A notification sent before the listener listens is lost: wait for it (a
            // little), then check the log.
            let ready = deadline.min(Instant::now() + poll_interval);
            let _ = tokio::time::timeout_at(ready, receiver.wait_for(|s| s.listening)).await;
            receiver.borrow_and_update();
        }
        loop {
            if self.events_visible(after).await? {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let tick = deadline.min(now + poll_interval);
            match wakeups.as_mut() {
                Some(receiver) => {
                    tokio::select! {
                        changed = receiver.changed() => {
                            if changed.is_ok() {
                                return Ok(true);
                            }
                            tokio::time::sleep_until(tick).await;
                        }
                        () = tokio::time::sleep_until(tick) => {}
                    }
                }
                None => tokio::time::sleep_until(tick).await,
            }
        }
    }

    /// Appends on `client`, a pooled connection: the body of
    /// [`append_streams`](EventStore::append_streams), and of a [`HeldTurn`]'s appends.
    pub(crate) async fn append_on(
        &self,
        client: &mut deadpool_postgres::Object,
        appends: &[StreamAppend],
    ) -> Result<Vec<AppendResult>, StoreError> {
        let encoded = append::encode(appends)?;
        if encoded.is_empty() {
            return Ok(Vec::new());
        }
        let inner = &*self.inner;
        let channel = match inner.config.notifications {
            Notifications::InTransaction => Some(inner.channel.as_str()),
            Notifications::AfterCommit => None,
        };
        let fast = if encoded.len() == 1 && channel.is_none() && encoded[0].writes() {
            // The common case: one lean statement, its own transaction, one round trip.
            let hot = Hot::Lean(encoded[0].numbering(), encoded[0].is_one());
            let statement = self.hot_statement(client, hot).await?;
            append::fast_written(&***client, &statement, &encoded[0])
                .await
                .map(|written| written.map(|result| vec![result]))
        } else {
            let statement = self.hot_statement(client, Hot::Append).await?;
            if encoded.len() == 1 {
                // One statement, its own transaction: one round trip.
                append::fast(&***client, &statement, channel, &encoded).await
            } else {
                let tx = append::read_committed(client)
                    .await
                    .map_err(PgError::from)?;
                append::lock_streams(&tx, &inner.sql, &encoded).await?;
                let fast = append::fast(&tx, &statement, channel, &encoded).await;
                match fast {
                    Ok(Some(results)) => {
                        tx.commit().await.map_err(PgError::from)?;
                        Ok(Some(results))
                    }
                    other => {
                        tx.rollback().await.map_err(PgError::from)?;
                        other
                    }
                }
            }
        };
        let results = match fast {
            Ok(Some(results)) => results,
            Ok(None) | Err(Failed::DuplicateId) => {
                let statement = self.hot_statement(client, Hot::Append).await?;
                let pg: &mut tokio_postgres::Client = client;
                append::slow(pg, &statement, &inner.sql, channel, &encoded).await?
            }
            Err(Failed::Store(error)) => return Err(error),
        };
        self.announce(&results);
        Ok(results)
    }

    /// Wakes this store's waiting readers, and other processes' when notifications are sent
    /// after commit, if `results` wrote events.
    pub(crate) fn announce(&self, results: &[AppendResult]) {
        if results.iter().any(|r| r.written) {
            let inner = &*self.inner;
            inner.notifier.wake_local();
            if inner.config.notifications == Notifications::AfterCommit {
                inner.announcer.request(&inner.pool, &inner.channel);
            }
        }
    }

    /// Whether appends notify inside their transaction.
    pub(crate) fn notifies_in_transaction(&self) -> bool {
        self.inner.config.notifications == Notifications::InTransaction
    }

    async fn events_visible(&self, after: Checkpoint) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.visible_after)
            .await
            .map_err(PgError::from)?;
        let row = client
            .query_one(
                &statement,
                &[&after.commit.to_string(), &signed(after.position.0)],
            )
            .await
            .map_err(PgError::from)?;
        Ok(row.try_get(0).map_err(PgError::from)?)
    }

    /// The statements of this store's schema.
    pub(crate) fn sql(&self) -> &Sql {
        &self.inner.sql
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.inner.pool.get().await.map_err(PgError::from)?)
    }

    /// The prepared `hot` statement on `client`.
    pub(crate) async fn hot_statement(
        &self,
        client: &deadpool_postgres::Object,
        hot: Hot,
    ) -> Result<Statement, StoreError> {
        let sql = match hot {
            Hot::Append => &self.inner.sql.append,
            Hot::Lean(numbering, one) => &self.inner.sql.lean[numbering as usize][usize::from(one)],
            Hot::Replay => &self.inner.sql.replay_stream,
        };
        let Some(cache) = &self.inner.hot else {
            return Ok(client.prepare_cached(sql).await.map_err(PgError::from)?);
        };
        let key = (Object::id(client), hot);
        let lock = || cache.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(statement) = lock().get(&key) {
            return Ok(statement.clone());
        }
        let statement = client.prepare_cached(sql).await.map_err(PgError::from)?;
        let mut statements = lock();
        // Entries of connections the pool has closed since: start over now and then.
        if statements.len() >= 4 * self.inner.pool.status().max_size.max(1) {
            statements.clear();
        }
        statements.insert(key, statement.clone());
        Ok(statement)
    }

    async fn read_events(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        stream: Option<&StreamId>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(PgError::from)?;
        let rows = client
            .query(&statement, params)
            .await
            .map_err(PgError::from)?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            match recorded_event(row, stream) {
                Ok(event) => events.push(event),
                // The events before an unreadable one make a short page; the next read starts
                // at it and names it, so the error is always the first one after the caller's
                // place and a reader can skip exactly that event.
                Err(StoreError::CorruptEvent { .. }) if !events.is_empty() => break,
                Err(error) => return Err(error),
            }
        }
        Ok(events)
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
        self.read_events(
            &self.inner.sql.read_stream,
            &[&stream.as_str(), &signed(from.0), &self::limit(limit)],
            Some(stream),
        )
        .await
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
        let statement = self.hot_statement(&client, Hot::Replay).await?;
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
            let (events, held_back) = {
                let client = self.client().await?;
                let statement = client
                    .prepare_cached(&self.inner.sql.read_all)
                    .await
                    .map_err(PgError::from)?;
                let rows = client
                    .query(&statement, &[&commit, &position, &self::limit(limit)])
                    .await
                    .map_err(PgError::from)?;
                page_of(&rows)?
            };
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
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.log_head)
            .await
            .map_err(PgError::from)?;
        let row = client
            .query_opt(&statement, &[])
            .await
            .map_err(PgError::from)?;
        match row {
            None => Ok(Checkpoint::START),
            Some(row) => Ok(checkpoint_of(&row)?),
        }
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Version, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.stream_version)
            .await
            .map_err(PgError::from)?;
        let row = client
            .query_opt(&statement, &[&stream.as_str()])
            .await
            .map_err(PgError::from)?;
        match row {
            Some(row) => Ok(Version(unsigned(
                row.try_get(0).map_err(PgError::from)?,
                "stream version",
            )?)),
            None => Ok(Version::INITIAL),
        }
    }

    async fn read_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        Ok(self
            .read_events(&self.inner.sql.read_event, &[&event_id], None)
            .await?
            .pop())
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
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.save_snapshot)
            .await
            .map_err(PgError::from)?;
        client
            .execute(
                &statement,
                &[
                    &snapshot.stream_id.as_str(),
                    &signed(snapshot.version.0),
                    &snapshot_version,
                    &snapshot.state.as_str(),
                    &snapshot.taken_at,
                ],
            )
            .await
            .map_err(|error| match append::classify(&snapshot.stream_id, error) {
                Failed::Store(error) => error,
                Failed::DuplicateId => StoreError::backend("unexpected duplicate event id"),
            })?;
        Ok(())
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.load_snapshot)
            .await
            .map_err(PgError::from)?;
        let Some(row) = client
            .query_opt(&statement, &[&stream.as_str()])
            .await
            .map_err(PgError::from)?
        else {
            return Ok(None);
        };
        let decode = |row: &tokio_postgres::Row| -> Result<Snapshot, PgError> {
            let JsonText(state) = row.try_get(2)?;
            Ok(Snapshot {
                stream_id: stream.clone(),
                version: Version(unsigned(row.try_get(0)?, "snapshot version")?),
                snapshot_version: schema_version(row.try_get(1)?)?,
                state: Payload::from_json(state)
                    .map_err(|e| PgError::decode("snapshot state", e))?,
                taken_at: row.try_get(3)?,
            })
        };
        Ok(Some(decode(&row)?))
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.load_checkpoint)
            .await
            .map_err(PgError::from)?;
        let Some(row) = client
            .query_opt(&statement, &[&name])
            .await
            .map_err(PgError::from)?
        else {
            return Ok(None);
        };
        Ok(Some(checkpoint_of(&row)?))
    }

    async fn save_checkpoint(&self, name: &str, checkpoint: Checkpoint) -> Result<(), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.save_checkpoint)
            .await
            .map_err(PgError::from)?;
        client
            .execute(
                &statement,
                &[
                    &name,
                    &signed(checkpoint.commit),
                    &signed(checkpoint.position.0),
                ],
            )
            .await
            .map_err(PgError::from)?;
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

/// The events of a page of [`Sql::read_all`](crate::sql) and whether events after it are
/// held back. An empty page is one row of NULL event columns. As in
/// [`read_events`](PgEventStore::read_events), an unreadable event ends the page before it,
/// and is the error when it comes first.
fn page_of(rows: &[tokio_postgres::Row]) -> Result<(Vec<RecordedEvent>, bool), StoreError> {
    let mut held_back = false;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        held_back = row.try_get(10).map_err(PgError::from)?;
        if row
            .try_get::<_, Option<Uuid>>(0)
            .map_err(PgError::from)?
            .is_none()
        {
            continue;
        }
        match recorded_event(row, None) {
            Ok(event) => events.push(event),
            // A short page, returned at once: the next read starts at the unreadable event.
            Err(StoreError::CorruptEvent { .. }) if !events.is_empty() => {
                return Ok((events, false))
            }
            Err(error) => return Err(error),
        }
    }
    Ok((events, held_back))
}

/// A `(commit, position)` row.
pub(crate) fn checkpoint_of(row: &tokio_postgres::Row) -> Result<Checkpoint, PgError> {
    Ok(Checkpoint {
        commit: unsigned(row.try_get(0)?, "checkpoint commit")?,
        position: Position(unsigned(row.try_get(1)?, "checkpoint position")?),
    })
}

/// Saves `checkpoint` under `name` through `client` if the stored one is `expected`; `false`
/// when another is stored. In a transaction, the row stays locked until it ends, so a second
/// saver waits and then finds the checkpoint moved.
pub(crate) async fn save_checkpoint_over<C: deadpool_postgres::GenericClient + Sync>(
    client: &C,
    sql: &Sql,
    name: &str,
    expected: Option<Checkpoint>,
    checkpoint: Checkpoint,
) -> Result<bool, tokio_postgres::Error> {
    let (commit, position) = (signed(checkpoint.commit), signed(checkpoint.position.0));
    let rows = match expected {
        None => {
            let statement = client.prepare_cached(&sql.save_first_checkpoint).await?;
            client
                .query(&statement, &[&name, &commit, &position])
                .await?
        }
        Some(old) => {
            let statement = client.prepare_cached(&sql.save_checkpoint_over).await?;
            let (old_commit, old_position) = (signed(old.commit), signed(old.position.0));
            client
                .query(
                    &statement,
                    &[&name, &commit, &position, &old_commit, &old_position],
                )
                .await?
        }
    };
    Ok(!rows.is_empty())
}
