//! cqrs-es: the bank account as a cqrs-es `Aggregate`, run by a `CqrsFramework` over
//! postgres-es's `PostgresEventRepository`, or over cqrs-es's in-memory `MemStore`.

use cqrs_es::mem_store::MemStore;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{
    Aggregate, AggregateContext, AggregateError, CqrsFramework, DomainEvent, EventStore,
};
use postgres_es::PostgresEventRepository;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Pool, Postgres};

use crate::bank::{Account, AccountError, Bank};
use crate::Result;

/// The state of an account.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct BankAccount {
    open: bool,
    balance: i64,
}

/// What happened to an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum AccountEvent {
    /// The account was opened.
    Opened {
        /// The holder.
        owner: String,
    },
    /// Money came in, in cents.
    Deposited {
        /// In cents.
        amount: u64,
    },
    /// Money went out, in cents.
    Withdrawn {
        /// In cents.
        amount: u64,
    },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            AccountEvent::Opened { .. } => "Opened",
            AccountEvent::Deposited { .. } => "Deposited",
            AccountEvent::Withdrawn { .. } => "Withdrawn",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// What a client asks of an account.
#[derive(Debug)]
pub(crate) enum AccountCommand {
    /// Open the account.
    Open {
        /// The holder.
        owner: String,
    },
    /// Put money in.
    Deposit {
        /// In cents.
        amount: u64,
    },
    /// Take money out; the balance may not go below 0.
    Withdraw {
        /// In cents.
        amount: u64,
    },
    /// Put money in `count` times: one command, `count` events.
    DepositMany {
        /// How many deposits.
        count: u32,
        /// Each, in cents.
        amount: u64,
    },
}

impl Aggregate for BankAccount {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> std::result::Result<(), Self::Error> {
        match command {
            AccountCommand::Open { owner } => {
                if self.open {
                    return Err(AccountError::AlreadyOpen);
                }
                sink.write(AccountEvent::Opened { owner }, self).await;
            }
            AccountCommand::Deposit { amount } => {
                if !self.open {
                    return Err(AccountError::NotOpen);
                }
                sink.write(AccountEvent::Deposited { amount }, self).await;
            }
            AccountCommand::Withdraw { amount } => {
                if !self.open {
                    return Err(AccountError::NotOpen);
                }
                if self.balance < amount as i64 {
                    return Err(AccountError::Overdrawn);
                }
                sink.write(AccountEvent::Withdrawn { amount }, self).await;
            }
            AccountCommand::DepositMany { count, amount } => {
                if !self.open {
                    return Err(AccountError::NotOpen);
                }
                for _ in 0..count {
                    sink.write(AccountEvent::Deposited { amount }, self).await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { amount } => self.balance += amount as i64,
            AccountEvent::Withdrawn { amount } => self.balance -= amount as i64,
        }
    }
}

/// The bank on cqrs-es: a `CqrsFramework` runs the commands; loads go through an event store
/// of the same kind (`EventStore::load_aggregate`), as a query side would.
pub(crate) struct CqrsBank<ES: EventStore<BankAccount>> {
    cqrs: CqrsFramework<BankAccount, ES>,
    loads: ES,
}

/// cqrs-es's event store on PostgreSQL.
pub(crate) type PgStore = PersistedEventStore<PostgresEventRepository, BankAccount>;

/// The table postgres-es expects (the shape of its `db/init.sql`).
const SCHEMA: &str = "
CREATE TABLE events (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    sequence bigint CHECK (sequence >= 0) NOT NULL,
    event_type text NOT NULL,
    event_version text NOT NULL,
    payload json NOT NULL,
    metadata json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE TABLE snapshots (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);";

/// Connects a bank to the empty database at `url`, creating postgres-es's tables.
pub(crate) async fn postgres(
    url: &str,
    pool_size: u32,
) -> Result<(CqrsBank<PgStore>, Pool<Postgres>)> {
    let pool = PgPoolOptions::new()
        .max_connections(pool_size)
        .connect(url)
        .await?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    let cqrs = postgres_es::postgres_cqrs(pool.clone(), vec![], ());
    let loads = PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone()));
    Ok((CqrsBank { cqrs, loads }, pool))
}

/// A bank on cqrs-es's in-memory store.
pub(crate) fn memory() -> CqrsBank<MemStore<BankAccount>> {
    let store = MemStore::<BankAccount>::default();
    CqrsBank {
        cqrs: CqrsFramework::new(store.clone(), vec![], ()),
        loads: store,
    }
}

impl<ES> Bank for CqrsBank<ES>
where
    ES: EventStore<BankAccount> + 'static,
    ES::AC: Send,
{
    async fn open(&self, account: &Account) -> Result<()> {
        let owner = account.name.clone();
        self.cqrs
            .execute(&account.name, AccountCommand::Open { owner })
            .await?;
        Ok(())
    }

    async fn deposit(&self, account: &Account, amount: u64) -> Result<()> {
        self.cqrs
            .execute(&account.name, AccountCommand::Deposit { amount })
            .await?;
        Ok(())
    }

    async fn withdraw(&self, account: &Account, amount: u64) -> Result<bool> {
        match self
            .cqrs
            .execute(&account.name, AccountCommand::Withdraw { amount })
            .await
        {
            Ok(()) => Ok(true),
            Err(AggregateError::UserError(AccountError::Overdrawn)) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn deposit_many(&self, account: &Account, count: u32, amount: u64) -> Result<()> {
        self.cqrs
            .execute(&account.name, AccountCommand::DepositMany { count, amount })
            .await?;
        Ok(())
    }

    async fn balance(&self, account: &Account) -> Result<i64> {
        let mut context = self.loads.load_aggregate(&account.name).await?;
        Ok(context.aggregate().balance)
    }
}
