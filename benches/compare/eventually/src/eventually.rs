//! eventually: the bank account as an eventually `Aggregate`, run through its `Repository`
//! (`get`, `AggregateRoot::handle`, `add`) over eventually-postgres's `EventStore`.
//!
//! eventually-postgres 0.2 is built on tokio 0.2 and tokio-postgres 0.5: its connection runs
//! on a tokio 0.2 runtime in a thread of its own (as its documentation spawns it), while the
//! workloads drive the client from the tokio 1 runtime the other contenders share. Its store
//! takes one client (`Arc<Client>`), so all writers share one connection, by its design.

use std::sync::Arc;

use eventually::aggregate::AggregateRootBuilder;
use eventually::{Aggregate, Repository};
use eventually_postgres::{EventStore, EventStoreBuilder};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::bank::{Account, AccountError, Bank};
use crate::Result;

/// The aggregate: eventually keeps the state apart, in [`AccountState`].
#[derive(Debug, Clone, Copy)]
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

impl Aggregate for BankAccount {
    type Id = String;
    type State = AccountState;
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = AccountError;

    fn apply(
        state: Self::State,
        event: Self::Event,
    ) -> std::result::Result<Self::State, Self::Error> {
        Ok(match event {
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
        })
    }

    fn handle<'a, 's: 'a>(
        &'a self,
        _id: &'s Self::Id,
        state: &'s Self::State,
        command: Self::Command,
    ) -> BoxFuture<'a, std::result::Result<Option<Vec<Self::Event>>, Self::Error>>
    where
        Self: Sized,
    {
        Box::pin(async move {
            let events = match command {
                AccountCommand::Open { .. } if state.open => return Err(AccountError::AlreadyOpen),
                AccountCommand::Open { owner } => vec![AccountEvent::Opened { owner }],
                _ if !state.open => return Err(AccountError::NotOpen),
                AccountCommand::Deposit { amount } => vec![AccountEvent::Deposited { amount }],
                AccountCommand::Withdraw { amount } if state.balance < amount as i64 => {
                    return Err(AccountError::Overdrawn)
                }
                AccountCommand::Withdraw { amount } => vec![AccountEvent::Withdrawn { amount }],
                AccountCommand::DepositMany { count, amount } => (0..count)
                    .map(|_| AccountEvent::Deposited { amount })
                    .collect(),
            };
            Ok(Some(events))
        })
    }
}

type Store = EventStore<String, AccountEvent>;

/// The bank on eventually: each command is `Repository::get`, `AggregateRoot::handle`,
/// `Repository::add` (which appends with the loaded version as the expected one).
pub(crate) struct EventuallyBank {
    accounts: Repository<BankAccount, Store>,
}

/// Connects a bank to the empty database at `url`: migrates it and builds the store on a
/// tokio 0.2 runtime that then keeps driving the connection, until the bank is dropped.
pub(crate) async fn postgres(url: &str) -> Result<EventuallyBank> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let url = url.to_owned();
    std::thread::Builder::new()
        .name("eventually-tokio-0.2".to_owned())
        .spawn(move || drive(url, sender))?;
    let store = receiver
        .await
        .map_err(|_| "the eventually runtime stopped before it built a store")??;
    Ok(EventuallyBank {
        accounts: Repository::new(AggregateRootBuilder::from(BankAccount), store),
    })
}

/// The body of the tokio 0.2 thread: connect, migrate, build the store, hand it over, then
/// drive the connection until every client handle is gone.
fn drive(url: String, store: tokio::sync::oneshot::Sender<std::result::Result<Store, String>>) {
    let runtime = tokio02::runtime::Builder::new()
        .basic_scheduler()
        .enable_all()
        .build();
    let mut runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = store.send(Err(format!("cannot start a tokio 0.2 runtime: {error}")));
            return;
        }
    };
    runtime.block_on(async move {
        let (mut client, connection) =
            match tokio_postgres05::connect(&url, tokio_postgres05::NoTls).await {
                Ok(pair) => pair,
                Err(error) => {
                    let _ = store.send(Err(format!("cannot connect: {error}")));
                    return;
                }
            };
        let connection = tokio02::spawn(connection);
        let built = async {
            let builder = EventStoreBuilder::migrate_database(&mut client)
                .await
                .map_err(|e| format!("cannot migrate: {e:#}"))?
                .builder(Arc::new(client));
            builder
                .build::<String, AccountEvent>("account")
                .await
                .map_err(|e| format!("cannot build the store: {e}"))
        }
        .await;
        if store.send(built).is_err() {
            return;
        }
        if let Ok(Err(error)) = connection.await {
            eprintln!("the eventually connection failed: {error}");
        }
    });
}

impl EventuallyBank {
    async fn run(&self, account: &Account, command: AccountCommand) -> Result<()> {
        // `add` takes `&mut self`; a clone shares the store's client.
        let mut accounts = self.accounts.clone();
        let mut root = accounts
            .get(account.name.clone())
            .await
            .map_err(|e| e.to_string())?;
        root.handle(command).await?;
        accounts.add(root).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl Bank for EventuallyBank {
    async fn open(&self, account: &Account) -> Result<()> {
        let owner = account.name.clone();
        self.run(account, AccountCommand::Open { owner }).await
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
        let root = self
            .accounts
            .get(account.name.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(root.state().balance)
    }
}
