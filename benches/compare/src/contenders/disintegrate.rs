//! disintegrate: the bank account as events with an `#[id]`, a `StateQuery` that folds them,
//! and one `Decision` per command, run by a `DecisionMaker` over disintegrate-postgres.

use disintegrate::serde::json::Json;
use disintegrate::{
    Decision, DecisionError, EventSourcedStateStore, LoadState, NoSnapshot, StateMutate, StateQuery,
};
use disintegrate_postgres::{PgDecisionMaker, PgEventId, PgEventStore};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres};

use crate::bank::{Account, AccountError, Bank};
use crate::Result;

/// Everything that happens in the bank; the account's events form the `AccountEvent` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, disintegrate::Event)]
#[stream(AccountEvent, [AccountOpened, AmountDeposited, AmountWithdrawn])]
pub(crate) enum DomainEvent {
    /// The account was opened.
    AccountOpened {
        /// The account.
        #[id]
        account_id: String,
        /// The holder.
        owner: String,
    },
    /// Money came in, in cents.
    AmountDeposited {
        /// The account.
        #[id]
        account_id: String,
        /// In cents.
        amount: u64,
    },
    /// Money went out, in cents.
    AmountWithdrawn {
        /// The account.
        #[id]
        account_id: String,
        /// In cents.
        amount: u64,
    },
}

/// The state a decision on one account needs.
#[derive(Debug, Default, Clone, Serialize, Deserialize, StateQuery)]
#[state_query(AccountEvent)]
pub(crate) struct AccountState {
    #[id]
    account_id: String,
    open: bool,
    balance: i64,
}

impl AccountState {
    fn new(account_id: &str) -> Self {
        AccountState {
            account_id: account_id.to_owned(),
            ..AccountState::default()
        }
    }
}

impl StateMutate for AccountState {
    fn mutate(&mut self, event: Self::Event) {
        match event {
            AccountEvent::AccountOpened { .. } => self.open = true,
            AccountEvent::AmountDeposited { amount, .. } => self.balance += amount as i64,
            AccountEvent::AmountWithdrawn { amount, .. } => self.balance -= amount as i64,
        }
    }
}

/// Open an account.
pub(crate) struct OpenAccount {
    account_id: String,
    owner: String,
}

impl Decision for OpenAccount {
    type Event = DomainEvent;
    type StateQuery = AccountState;
    type Error = AccountError;

    fn state_query(&self) -> Self::StateQuery {
        AccountState::new(&self.account_id)
    }

    fn process(
        &self,
        state: &Self::StateQuery,
    ) -> std::result::Result<Vec<Self::Event>, Self::Error> {
        if state.open {
            return Err(AccountError::AlreadyOpen);
        }
        Ok(vec![DomainEvent::AccountOpened {
            account_id: self.account_id.clone(),
            owner: self.owner.clone(),
        }])
    }
}

/// Put money in, `count` times (1 for a plain deposit).
pub(crate) struct DepositAmount {
    account_id: String,
    count: u32,
    amount: u64,
}

impl Decision for DepositAmount {
    type Event = DomainEvent;
    type StateQuery = AccountState;
    type Error = AccountError;

    fn state_query(&self) -> Self::StateQuery {
        AccountState::new(&self.account_id)
    }

    fn process(
        &self,
        state: &Self::StateQuery,
    ) -> std::result::Result<Vec<Self::Event>, Self::Error> {
        if !state.open {
            return Err(AccountError::NotOpen);
        }
        Ok((0..self.count)
            .map(|_| DomainEvent::AmountDeposited {
                account_id: self.account_id.clone(),
                amount: self.amount,
            })
            .collect())
    }
}

/// Take money out; the balance may not go below 0.
pub(crate) struct WithdrawAmount {
    account_id: String,
    amount: u64,
}

impl Decision for WithdrawAmount {
    type Event = DomainEvent;
    type StateQuery = AccountState;
    type Error = AccountError;

    fn state_query(&self) -> Self::StateQuery {
        AccountState::new(&self.account_id)
    }

    fn process(
        &self,
        state: &Self::StateQuery,
    ) -> std::result::Result<Vec<Self::Event>, Self::Error> {
        if !state.open {
            return Err(AccountError::NotOpen);
        }
        if state.balance < self.amount as i64 {
            return Err(AccountError::Overdrawn);
        }
        Ok(vec![DomainEvent::AmountWithdrawn {
            account_id: self.account_id.clone(),
            amount: self.amount,
        }])
    }
}

type Store = PgEventStore<DomainEvent, Json<DomainEvent>>;

/// The bank on disintegrate: a `DecisionMaker` without snapshots makes each decision; loads
/// go through an `EventSourcedStateStore`, the state store the decision maker uses.
pub(crate) struct DisintegrateBank {
    decisions: PgDecisionMaker<DomainEvent, Json<DomainEvent>, NoSnapshot>,
    states: EventSourcedStateStore<PgEventId, DomainEvent, Store, NoSnapshot>,
}

/// Before PostgreSQL 16, which reads hexadecimal integer literals, `event_store_begin_epoch`
/// of disintegrate-postgres 4 does not compile (`id & 0xFFFFFFFF`). The same function with the
/// literal in decimal, created after disintegrate's own migration ran with function bodies
/// unchecked.
const BEGIN_EPOCH_BEFORE_PG16: &str = "
CREATE OR REPLACE FUNCTION event_store_begin_epoch() RETURNS void AS $$
DECLARE
    id BIGINT;
    db_id INT;
BEGIN
    SELECT last_value INTO id FROM seq_event_event_id;
    SELECT oid INTO db_id FROM pg_database WHERE datname = current_database();
    PERFORM pg_try_advisory_xact_lock_shared(db_id, 0);
    PERFORM pg_try_advisory_xact_lock_shared(1, (id & 4294967295)::bit(32)::integer);
    PERFORM pg_try_advisory_xact_lock_shared(2, (id >> 32)::bit(32)::integer);
END;
$$ LANGUAGE plpgsql";

/// Whether the server at `pool` needs [`BEGIN_EPOCH_BEFORE_PG16`].
pub(crate) async fn needs_shim(pool: &Pool<Postgres>) -> Result<bool> {
    let version: String = sqlx::query_scalar("SHOW server_version_num")
        .fetch_one(pool)
        .await?;
    Ok(version.parse::<u32>()? < 160_000)
}

/// Connects a bank to the empty database at `url` (the store creates its tables). Returns
/// whether the PostgreSQL 15 shim was applied.
pub(crate) async fn postgres(
    url: &str,
    pool_size: u32,
) -> Result<(DisintegrateBank, Pool<Postgres>, bool)> {
    let pool = PgPoolOptions::new()
        .max_connections(pool_size)
        .connect(url)
        .await?;
    let serde = Json::<DomainEvent>::default();
    let shim = needs_shim(&pool).await?;
    let store: Store = if shim {
        // disintegrate's own migration, on a connection that does not check function bodies,
        // then the one function PostgreSQL 15 cannot compile, rewritten.
        let options = PgConnectOptions::from_str(url)?.options([("check_function_bodies", "off")]);
        let migration = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        PgEventStore::<DomainEvent, _>::try_new(migration.clone(), serde.clone()).await?;
        sqlx::raw_sql(BEGIN_EPOCH_BEFORE_PG16)
            .execute(&migration)
            .await?;
        migration.close().await;
        PgEventStore::new_uninitialized(pool.clone(), serde)
    } else {
        PgEventStore::try_new(pool.clone(), serde).await?
    };
    Ok((
        DisintegrateBank {
            decisions: disintegrate_postgres::decision_maker(store.clone(), NoSnapshot),
            states: EventSourcedStateStore::new(store, NoSnapshot),
        },
        pool,
        shim,
    ))
}

/// How many times a decision is made before a concurrency error is given up on.
const MAX_ATTEMPTS: u32 = 64;

/// A random pause before attempt `attempt`, up to 2^attempt ms (at most 64 ms), so writers
/// that keep failing each other spread out.
async fn backoff(attempt: u32) {
    let ceiling = 1u128 << attempt.min(6);
    let millis = uuid::Uuid::new_v4().as_u128() % (ceiling + 1);
    tokio::time::sleep(std::time::Duration::from_millis(millis as u64)).await;
}

impl DisintegrateBank {
    /// Makes the decision `decision()` builds, again while disintegrate reports a concurrent
    /// modification. Its appends run SERIALIZABLE, so writers on different accounts can fail
    /// each other (PostgreSQL's predicate locks are coarser than one account's rows); a
    /// caller has to retry, as annals's repository does on a version conflict. Up to
    /// [`MAX_ATTEMPTS`] times, with a random backoff.
    async fn make<D>(
        &self,
        decision: impl Fn() -> D,
    ) -> std::result::Result<(), DecisionError<AccountError>>
    where
        D: Decision<Event = DomainEvent, StateQuery = AccountState, Error = AccountError>,
    {
        let mut attempt = 1;
        loop {
            match self.decisions.make(decision()).await {
                Ok(_) => return Ok(()),
                Err(DecisionError::StateStore(error))
                    if attempt < MAX_ATTEMPTS && is_concurrency_error(&*error) =>
                {
                    backoff(attempt).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Whether `error` is disintegrate's concurrency error, or a serialization failure it lets
/// through as a plain database error (one raised at commit).
fn is_concurrency_error(error: &(dyn std::error::Error + 'static)) -> bool {
    match error.downcast_ref::<disintegrate_postgres::Error>() {
        Some(disintegrate_postgres::Error::Concurrency) => true,
        Some(disintegrate_postgres::Error::Database(sqlx::Error::Database(database))) => {
            database.code().as_deref() == Some("40001")
        }
        _ => false,
    }
}

impl Bank for DisintegrateBank {
    async fn open(&self, account: &Account) -> Result<()> {
        self.make(|| OpenAccount {
            account_id: account.name.clone(),
            owner: account.name.clone(),
        })
        .await?;
        Ok(())
    }

    async fn deposit(&self, account: &Account, amount: u64) -> Result<()> {
        self.deposit_many(account, 1, amount).await
    }

    async fn withdraw(&self, account: &Account, amount: u64) -> Result<bool> {
        let decision = || WithdrawAmount {
            account_id: account.name.clone(),
            amount,
        };
        match self.make(decision).await {
            Ok(_) => Ok(true),
            Err(DecisionError::Domain(AccountError::Overdrawn)) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn deposit_many(&self, account: &Account, count: u32, amount: u64) -> Result<()> {
        self.make(|| DepositAmount {
            account_id: account.name.clone(),
            count,
            amount,
        })
        .await?;
        Ok(())
    }

    async fn balance(&self, account: &Account) -> Result<i64> {
        let loaded = self.states.load(AccountState::new(&account.name)).await?;
        Ok(loaded.state().balance)
    }
}
