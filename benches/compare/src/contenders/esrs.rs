//! esrs: the bank account as an esrs `Aggregate`, run by an `AggregateManager` over a
//! `PgStore` (sqlx).

use esrs::manager::AggregateManager;
use esrs::store::postgres::{PgStore, PgStoreBuilder};
use esrs::AggregateState;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Pool, Postgres};

use crate::bank::{Account, AccountError, Bank};
use crate::Result;

/// The aggregate: esrs keeps the state apart, in [`AccountState`].
pub(crate) struct BankAccount;

/// The state of an account.
#[derive(Debug, Default, Clone)]
pub(crate) struct AccountState {
    open: bool,
    balance: i64,
}

/// What happened to an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

impl esrs::Aggregate for BankAccount {
    const NAME: &'static str = "account";
    type State = AccountState;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle_command(
        state: &Self::State,
        command: Self::Command,
    ) -> std::result::Result<Vec<Self::Event>, Self::Error> {
        match command {
            AccountCommand::Open { .. } if state.open => Err(AccountError::AlreadyOpen),
            AccountCommand::Open { owner } => Ok(vec![AccountEvent::Opened { owner }]),
            _ if !state.open => Err(AccountError::NotOpen),
            AccountCommand::Deposit { amount } => Ok(vec![AccountEvent::Deposited { amount }]),
            AccountCommand::Withdraw { amount } if state.balance < amount as i64 => {
                Err(AccountError::Overdrawn)
            }
            AccountCommand::Withdraw { amount } => Ok(vec![AccountEvent::Withdrawn { amount }]),
            AccountCommand::DepositMany { count, amount } => Ok((0..count)
                .map(|_| AccountEvent::Deposited { amount })
                .collect()),
        }
    }

    fn apply_event(state: Self::State, payload: Self::Event) -> Self::State {
        match payload {
            AccountEvent::Opened { .. } => AccountState {
                open: true,
                ..state
            },
            AccountEvent::Deposited { amount } => AccountState {
                balance: state.balance + amount as i64,
                ..state
            },
            AccountEvent::Withdrawn { amount } => AccountState {
                balance: state.balance - amount as i64,
                ..state
            },
        }
    }
}

/// The bank on esrs: load the state with `AggregateManager::load`, then
/// `AggregateManager::handle_command`, which decides and persists.
pub(crate) struct EsrsBank {
    manager: AggregateManager<PgStore<BankAccount>>,
}

/// Connects a bank to the empty database at `url` (the store runs its own migrations).
pub(crate) async fn postgres(url: &str, pool_size: u32) -> Result<(EsrsBank, Pool<Postgres>)> {
    let pool = PgPoolOptions::new()
        .max_connections(pool_size)
        .connect(url)
        .await?;
    let store: PgStore<BankAccount> = PgStoreBuilder::new(pool.clone()).try_build().await?;
    Ok((
        EsrsBank {
            manager: AggregateManager::new(store),
        },
        pool,
    ))
}

impl EsrsBank {
    async fn run(&self, account: &Account, command: AccountCommand) -> Result<()> {
        let state = self
            .manager
            .load(account.uuid)
            .await?
            .unwrap_or_else(|| AggregateState::with_id(account.uuid));
        self.manager.handle_command(state, command).await??;
        Ok(())
    }
}

impl Bank for EsrsBank {
    async fn open(&self, account: &Account) -> Result<()> {
        // A new aggregate: nothing to load.
        let state = AggregateState::with_id(account.uuid);
        let owner = account.name.clone();
        self.manager
            .handle_command(state, AccountCommand::Open { owner })
            .await??;
        Ok(())
    }

    async fn deposit(&self, account: &Account, amount: u64) -> Result<()> {
        self.run(account, AccountCommand::Deposit { amount }).await
    }

    async fn withdraw(&self, account: &Account, amount: u64) -> Result<bool> {
        match self.run(account, AccountCommand::Withdraw { amount }).await {
            Ok(()) => Ok(true),
            Err(error) if error.downcast_ref() == Some(&AccountError::Overdrawn) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn deposit_many(&self, account: &Account, count: u32, amount: u64) -> Result<()> {
        self.run(account, AccountCommand::DepositMany { count, amount })
            .await
    }

    async fn balance(&self, account: &Account) -> Result<i64> {
        let state = self
            .manager
            .load(account.uuid)
            .await?
            .ok_or_else(|| format!("account {} has no events", account.name))?;
        Ok(state.inner().balance)
    }
}
