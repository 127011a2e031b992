//! Raw SQL: what a careful hand-written tokio-postgres program does, as the limit. One
//! connection per writer, prepared statements, a plain table, autocommit (each statement is
//! its own transaction).

use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, ToSql, Type};
use tokio_postgres::{Client, Statement};

use crate::bank::{per_second, Account, AccountError, Bank, Counts, AMOUNT};
use crate::server::connect;
use crate::Result;

/// The type of the hand-written table's `payload` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// `jsonb`: what a hand-written event table usually holds; the reference.
    Jsonb,
    /// `json`, as annals stores bodies: shows what the column type alone is worth.
    Json,
}

impl Body {
    fn sql(self) -> &'static str {
        match self {
            Body::Jsonb => "jsonb",
            Body::Json => "json",
        }
    }
}

/// The hand-written table, its payload column of type `body`.
fn schema(body: Body) -> String {
    format!(
        "CREATE TABLE events (
    position bigserial PRIMARY KEY,
    stream_id text NOT NULL,
    version bigint NOT NULL,
    event_type text NOT NULL,
    payload {} NOT NULL,
    UNIQUE (stream_id, version)
)",
        body.sql()
    )
}

const SELECT_STREAM: &str =
    "SELECT version, event_type, payload::text FROM events WHERE stream_id = $1 ORDER BY version";
const INSERT_ONE: &str =
    "INSERT INTO events (stream_id, version, event_type, payload) VALUES ($1, $2, $3, $4)";
/// The multi-event INSERT of the command loop, for a payload column of type `body`.
fn insert_unnest(body: Body) -> String {
    format!(
        "INSERT INTO events (stream_id, version, event_type, payload) \
         SELECT $1, v, t, p::{} FROM unnest($2::bigint[], $3::text[], $4::text[]) AS e(v, t, p)",
        body.sql()
    )
}
const COPY_IN: &str =
    "COPY events (stream_id, version, event_type, payload) FROM STDIN (FORMAT binary)";

/// The body of an `Opened` event.
#[derive(Debug, Serialize, Deserialize)]
struct Opened {
    owner: String,
}

/// The body of a `Deposited` or `Withdrawn` event.
#[derive(Debug, Serialize, Deserialize)]
struct Amount {
    amount: u64,
}

/// An account folded from its rows.
#[derive(Debug, Default)]
struct State {
    version: i64,
    open: bool,
    balance: i64,
}

/// One connection with its prepared statements.
pub(crate) struct RawBank {
    client: Client,
    select_stream: Statement,
    insert_one: Statement,
    insert_unnest: Statement,
}

/// Creates the table, its payload column of type `body`, in the empty database at `url`.
pub(crate) async fn create_schema(url: &str, body: Body) -> Result<()> {
    connect(url).await?.batch_execute(&schema(body)).await?;
    Ok(())
}

impl RawBank {
    /// Connects to `url`, whose table (payload column of type `body`) exists, and prepares
    /// the statements.
    pub(crate) async fn connect(url: &str, body: Body) -> Result<RawBank> {
        let client = connect(url).await?;
        Ok(RawBank {
            select_stream: client.prepare(SELECT_STREAM).await?,
            insert_one: client.prepare(INSERT_ONE).await?,
            insert_unnest: client.prepare(&insert_unnest(body)).await?,
            client,
        })
    }

    /// SELECTs the stream and decodes each row with serde_json into the state.
    async fn load(&self, stream: &str) -> Result<State> {
        let rows = self.client.query(&self.select_stream, &[&stream]).await?;
        let mut state = State::default();
        for row in &rows {
            let version: i64 = row.try_get(0)?;
            let event_type: &str = row.try_get(1)?;
            let payload: &str = row.try_get(2)?;
            match event_type {
                "Opened" => {
                    serde_json::from_str::<Opened>(payload)?;
                    state.open = true;
                }
                "Deposited" => {
                    state.balance += serde_json::from_str::<Amount>(payload)?.amount as i64
                }
                "Withdrawn" => {
                    state.balance -= serde_json::from_str::<Amount>(payload)?.amount as i64
                }
                other => return Err(format!("unknown event type `{other}` in `{stream}`").into()),
            }
            state.version = version;
        }
        Ok(state)
    }

    /// Appends one event at `version`; the unique key rejects a concurrent writer's.
    async fn insert<T: Serialize + Sync + std::fmt::Debug>(
        &self,
        stream: &str,
        version: i64,
        event_type: &str,
        body: &T,
    ) -> Result<()> {
        self.client
            .execute(
                &self.insert_one,
                &[&stream, &version, &event_type, &Json(body)],
            )
            .await?;
        Ok(())
    }
}

impl Bank for RawBank {
    async fn open(&self, account: &Account) -> Result<()> {
        let state = self.load(&account.name).await?;
        if state.open {
            return Err(AccountError::AlreadyOpen.into());
        }
        let body = Opened {
            owner: account.name.clone(),
        };
        self.insert(&account.name, state.version + 1, "Opened", &body)
            .await
    }

    async fn deposit(&self, account: &Account, amount: u64) -> Result<()> {
        let state = self.load(&account.name).await?;
        if !state.open {
            return Err(AccountError::NotOpen.into());
        }
        self.insert(
            &account.name,
            state.version + 1,
            "Deposited",
            &Amount { amount },
        )
        .await
    }

    async fn withdraw(&self, account: &Account, amount: u64) -> Result<bool> {
        let state = self.load(&account.name).await?;
        if !state.open {
            return Err(AccountError::NotOpen.into());
        }
        if state.balance < amount as i64 {
            return Ok(false);
        }
        self.insert(
            &account.name,
            state.version + 1,
            "Withdrawn",
            &Amount { amount },
        )
        .await?;
        Ok(true)
    }

    async fn deposit_many(&self, account: &Account, count: u32, amount: u64) -> Result<()> {
        let state = self.load(&account.name).await?;
        if !state.open {
            return Err(AccountError::NotOpen.into());
        }
        let versions: Vec<i64> = (1..=i64::from(count)).map(|n| state.version + n).collect();
        let types = vec!["Deposited"; count as usize];
        let body = serde_json::to_string(&Amount { amount })?;
        let payloads = vec![body; count as usize];
        self.client
            .execute(
                &self.insert_unnest,
                &[&account.name, &versions, &types, &payloads],
            )
            .await?;
        Ok(())
    }

    async fn balance(&self, account: &Account) -> Result<i64> {
        Ok(self.load(&account.name).await?.balance)
    }
}

/// Raw (b), one writer: `w1_commands` single-row INSERTs round-robin over `w1_accounts`
/// streams, with no load (the writer trusts its own count of versions). Commands per second.
pub(crate) async fn insert_only_w1(url: &str, counts: &Counts, run: usize) -> Result<f64> {
    let bank = RawBank::connect(url, Body::Jsonb).await?;
    let streams = counts.w1_accounts;
    let start = Instant::now();
    for n in 0..counts.w1_commands {
        let stream = format!("io1-r{run}-{}", n % streams);
        let version = (n / streams) as i64 + 1;
        bank.insert(&stream, version, "Deposited", &Amount { amount: AMOUNT })
            .await?;
    }
    Ok(per_second(counts.w1_commands, start.elapsed()))
}

/// Raw (b), W2's shape: `w2_writers` connections, each INSERTing `w2_commands_per_writer`
/// single rows into streams of its own, with no load. Commands per second.
pub(crate) async fn insert_only_w2(url: &str, counts: &Counts, run: usize) -> Result<f64> {
    let mut banks = Vec::with_capacity(counts.w2_writers);
    for _ in 0..counts.w2_writers {
        banks.push(Arc::new(RawBank::connect(url, Body::Jsonb).await?));
    }
    let streams = counts.w2_accounts_per_writer;
    let per_writer = counts.w2_commands_per_writer;
    let start = Instant::now();
    let tasks: Vec<_> = banks
        .into_iter()
        .enumerate()
        .map(|(writer, bank)| {
            tokio::spawn(async move {
                for n in 0..per_writer {
                    let stream = format!("io2-r{run}-w{writer}-{}", n % streams);
                    let version = (n / streams) as i64 + 1;
                    bank.insert(&stream, version, "Deposited", &Amount { amount: AMOUNT })
                        .await?;
                }
                Ok::<(), crate::BoxError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(per_second(counts.w2_commands(), start.elapsed()))
}

/// Raw (c): `w4_commands` transactions, each one INSERT of `w4_events_per_command` rows
/// (a multi-row VALUES list, prepared once) into a new stream. Events per second.
pub(crate) async fn multi_row_insert(url: &str, counts: &Counts, run: usize) -> Result<f64> {
    let client = connect(url).await?;
    let rows = counts.w4_events_per_command as usize;
    let values: Vec<String> = (0..rows)
        .map(|i| {
            format!(
                "(${}, ${}, ${}, ${})",
                4 * i + 1,
                4 * i + 2,
                4 * i + 3,
                4 * i + 4
            )
        })
        .collect();
    let insert = client
        .prepare(&format!(
            "INSERT INTO events (stream_id, version, event_type, payload) VALUES {}",
            values.join(", ")
        ))
        .await?;
    let body = Json(Amount { amount: AMOUNT });
    let start = Instant::now();
    for command in 0..counts.w4_commands {
        let stream = format!("mr-r{run}-{command}");
        let versions: Vec<i64> = (1..=rows as i64).collect();
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(4 * rows);
        for version in &versions {
            params.extend([&stream as &(dyn ToSql + Sync), version, &"Deposited", &body]);
        }
        client.execute(&insert, &params).await?;
    }
    Ok(per_second(counts.w4_events(), start.elapsed()))
}

/// Raw (d): `w4_commands` transactions, each a binary COPY of `w4_events_per_command` rows
/// into a new stream. Events per second.
pub(crate) async fn copy(url: &str, counts: &Counts, run: usize) -> Result<f64> {
    let client = connect(url).await?;
    let copy = client.prepare(COPY_IN).await?;
    let types = [Type::TEXT, Type::INT8, Type::TEXT, Type::JSONB];
    let body = Json(Amount { amount: AMOUNT });
    let start = Instant::now();
    for command in 0..counts.w4_commands {
        let stream = format!("cp-r{run}-{command}");
        let sink = client.copy_in(&copy).await?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        for version in 1..=i64::from(counts.w4_events_per_command) {
            writer
                .as_mut()
                .write(&[&stream, &version, &"Deposited", &body])
                .await?;
        }
        writer.finish().await?;
    }
    Ok(per_second(counts.w4_events(), start.elapsed()))
}
