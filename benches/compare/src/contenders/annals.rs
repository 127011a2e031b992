//! This framework: the bank account written with its derives, on any `EventStore`.

use annals::prelude::*;
use annals::EventStore;
use serde::{Deserialize, Serialize};

use crate::bank::{Account, AccountError, Bank};
use crate::Result;

/// What happened to an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = BankAccount)]
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
#[derive(Debug, Command)]
#[command(aggregate = BankAccount)]
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
    /// Put money in `count` times at once (W4): one command, `count` events.
    DepositMany {
        /// How many deposits.
        count: u32,
        /// Each, in cents.
        amount: u64,
    },
}

/// The state of an account.
#[derive(Debug, Clone, Default, Aggregate)]
#[aggregate(name = "account", event = AccountEvent, command = AccountCommand, error = AccountError)]
pub(crate) struct BankAccount {
    open: bool,
    balance: i64,
}

impl BankAccount {
    fn opened(&mut self, _owner: &str) {
        self.open = true;
    }

    fn deposited(&mut self, amount: &u64) {
        self.balance += *amount as i64;
    }

    fn withdrawn(&mut self, amount: &u64) {
        self.balance -= *amount as i64;
    }

    fn open(&self, owner: &str) -> std::result::Result<Vec<AccountEvent>, AccountError> {
        if self.open {
            return Err(AccountError::AlreadyOpen);
        }
        Ok(vec![AccountEvent::Opened {
            owner: owner.to_owned(),
        }])
    }

    fn deposit(&self, amount: &u64) -> std::result::Result<Vec<AccountEvent>, AccountError> {
        self.ensure_open()?;
        Ok(vec![AccountEvent::Deposited { amount: *amount }])
    }

    fn withdraw(&self, amount: &u64) -> std::result::Result<Vec<AccountEvent>, AccountError> {
        self.ensure_open()?;
        if self.balance < *amount as i64 {
            return Err(AccountError::Overdrawn);
        }
        Ok(vec![AccountEvent::Withdrawn { amount: *amount }])
    }

    fn deposit_many(
        &self,
        count: &u32,
        amount: &u64,
    ) -> std::result::Result<Vec<AccountEvent>, AccountError> {
        self.ensure_open()?;
        Ok((0..*count)
            .map(|_| AccountEvent::Deposited { amount: *amount })
            .collect())
    }

    fn ensure_open(&self) -> std::result::Result<(), AccountError> {
        if self.open {
            Ok(())
        } else {
            Err(AccountError::NotOpen)
        }
    }
}

/// How loads are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loads {
    /// Through the bank's repository, with its cache of recent states (the default).
    Repository,
    /// Through a fresh repository with no cache, per load: every load replays the stream.
    Cold,
}

/// The bank on annals: one `Repository` over `S`.
pub(crate) struct AnnalsBank<S> {
    accounts: Repository<BankAccount, S>,
    loads: Loads,
}

impl<S: EventStore + Clone + 'static> AnnalsBank<S> {
    /// A bank over `store` whose repository keeps `cache_capacity` states (the default is
    /// `annals::DEFAULT_CACHE_CAPACITY`; 0 keeps none).
    pub(crate) fn new(store: S, cache_capacity: usize, loads: Loads) -> Self {
        AnnalsBank {
            accounts: Repository::new(store).with_cache_capacity(cache_capacity),
            loads,
        }
    }

    async fn run(&self, account: &Account, command: AccountCommand) -> Result<()> {
        let id = StreamId::for_aggregate::<BankAccount>(&account.name)?;
        self.accounts.execute(&id, command).await?;
        Ok(())
    }
}

impl<S: EventStore + Clone + 'static> Bank for AnnalsBank<S> {
    async fn open(&self, account: &Account) -> Result<()> {
        self.run(
            account,
            AccountCommand::Open {
                owner: account.name.clone(),
            },
        )
        .await
    }

    async fn deposit(&self, account: &Account, amount: u64) -> Result<()> {
        self.run(account, AccountCommand::Deposit { amount }).await
    }

    async fn withdraw(&self, account: &Account, amount: u64) -> Result<bool> {
        let id = StreamId::for_aggregate::<BankAccount>(&account.name)?;
        match self
            .accounts
            .execute(&id, AccountCommand::Withdraw { amount })
            .await
        {
            Ok(_) => Ok(true),
            Err(RepositoryError::Rejected(AccountError::Overdrawn)) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn deposit_many(&self, account: &Account, count: u32, amount: u64) -> Result<()> {
        self.run(account, AccountCommand::DepositMany { count, amount })
            .await
    }

    async fn balance(&self, account: &Account) -> Result<i64> {
        let id = StreamId::for_aggregate::<BankAccount>(&account.name)?;
        let loaded = match self.loads {
            Loads::Repository => self.accounts.load(&id).await?,
            Loads::Cold => {
                Repository::<BankAccount, S>::new(self.accounts.store().clone())
                    .with_cache_capacity(0)
                    .load(&id)
                    .await?
            }
        };
        Ok(loaded.state.balance)
    }
}

#[cfg(test)]
mod tests {
    use annals::testing::given;

    use super::*;

    #[test]
    fn the_overdraft_rule_holds() {
        let opened = AccountEvent::Opened {
            owner: "ann".into(),
        };
        given::<BankAccount>([opened.clone(), AccountEvent::Deposited { amount: 5 }])
            .when(AccountCommand::Withdraw { amount: 6 })
            .then_error(AccountError::Overdrawn);
        given::<BankAccount>([opened])
            .when(AccountCommand::DepositMany {
                count: 3,
                amount: 1,
            })
            .then_events([
                AccountEvent::Deposited { amount: 1 },
                AccountEvent::Deposited { amount: 1 },
                AccountEvent::Deposited { amount: 1 },
            ]);
    }
}
