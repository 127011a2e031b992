//! The account both profiling benches run: opened, then deposited into one event at a time
//! (`append_profile`) or a hundred at a time (`load_profile`).

// Each bench sends only some of the commands.
#![allow(dead_code)]

use std::convert::Infallible;

use annals::prelude::*;
use annals::EventStore;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Account)]
pub(crate) enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[derive(Debug, Command)]
#[command(aggregate = Account)]
pub(crate) enum AccountCommand {
    Open { owner: String },
    Deposit { amount: u64 },
    DepositMany { count: u32, amount: u64 },
}

#[derive(Debug, Clone, Default, Aggregate)]
#[aggregate(name = "account", event = AccountEvent, command = AccountCommand, error = Infallible)]
pub(crate) struct Account {
    pub(crate) balance: u64,
}

impl Account {
    fn opened(&mut self, _owner: &str) {}

    fn deposited(&mut self, amount: &u64) {
        self.balance += amount;
    }

    fn open(&self, owner: &str) -> Result<Vec<AccountEvent>, Infallible> {
        Ok(vec![AccountEvent::Opened {
            owner: owner.to_owned(),
        }])
    }

    fn deposit(&self, amount: &u64) -> Result<Vec<AccountEvent>, Infallible> {
        Ok(vec![AccountEvent::Deposited { amount: *amount }])
    }

    fn deposit_many(&self, count: &u32, amount: &u64) -> Result<Vec<AccountEvent>, Infallible> {
        Ok((0..*count)
            .map(|_| AccountEvent::Deposited { amount: *amount })
            .collect())
    }
}

/// Opens `count` accounts named `{prefix}-{n}` through `accounts`.
pub(crate) async fn open_accounts<S: EventStore>(
    accounts: &Repository<Account, S>,
    prefix: &str,
    count: usize,
) -> Result<Vec<StreamId>, Box<dyn std::error::Error + Send + Sync>> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let id = StreamId::for_aggregate::<Account>(&format!("{prefix}-{n}"))?;
        accounts
            .execute(
                &id,
                AccountCommand::Open {
                    owner: "ann".into(),
                },
            )
            .await?;
        ids.push(id);
    }
    Ok(ids)
}
