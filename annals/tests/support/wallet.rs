//! The wallet every repository test works on: events of two schema versions, sync and async
//! commands (one with a service), an error type.

#![allow(
    dead_code,
    reason = "each test file uses the part of the wallet it needs"
)]

use std::fmt;

use annals::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Wallet)]
pub(crate) enum WalletEvent {
    Credited {
        amount: u64,
    },
    #[event(version = 2)]
    Debited {
        amount: u64,
        reason: String,
    },
    Noted(String),
}

#[derive(Debug, Clone, PartialEq, Command)]
#[command(aggregate = Wallet)]
pub(crate) enum WalletCommand {
    Credit {
        amount: u64,
    },
    CreditTwice {
        amount: u64,
    },
    Debit {
        amount: u64,
    },
    #[command(async, services)]
    CheckedCredit {
        amount: u64,
    },
    Nothing,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WalletError {
    Insufficient { balance: u64, requested: u64 },
    Blocked,
}

impl fmt::Display for WalletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for WalletError {}

/// A service the async handler asks before crediting.
#[derive(Default)]
pub(crate) struct Limits {
    pub(crate) blocked: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Aggregate)]
#[aggregate(event = WalletEvent, command = WalletCommand, error = WalletError, services = Limits)]
pub(crate) struct Wallet {
    pub(crate) balance: u64,
    pub(crate) notes: Vec<String>,
}

impl Wallet {
    fn credited(&mut self, amount: &u64) {
        self.balance += amount;
    }
    fn debited(&mut self, amount: &u64, _reason: &str) {
        self.balance -= amount;
    }
    fn noted(&mut self, note: &str) {
        self.notes.push(note.to_owned());
    }

    fn credit(&self, amount: &u64) -> Result<Vec<WalletEvent>, WalletError> {
        Ok(vec![WalletEvent::Credited { amount: *amount }])
    }
    fn credit_twice(&self, amount: &u64) -> Result<Vec<WalletEvent>, WalletError> {
        Ok(vec![
            WalletEvent::Credited { amount: *amount },
            WalletEvent::Credited { amount: *amount },
        ])
    }
    fn debit(&self, amount: &u64) -> Result<Vec<WalletEvent>, WalletError> {
        if *amount > self.balance {
            return Err(WalletError::Insufficient {
                balance: self.balance,
                requested: *amount,
            });
        }
        Ok(vec![WalletEvent::Debited {
            amount: *amount,
            reason: "debit".into(),
        }])
    }
    async fn checked_credit(
        &self,
        amount: &u64,
        limits: &Limits,
    ) -> Result<Vec<WalletEvent>, WalletError> {
        tokio::task::yield_now().await;
        if limits.blocked {
            return Err(WalletError::Blocked);
        }
        Ok(vec![WalletEvent::Credited { amount: *amount }])
    }
    fn nothing(&self) -> Result<Vec<WalletEvent>, WalletError> {
        Ok(Vec::new())
    }
}

pub(crate) fn wallet(id: &str) -> StreamId {
    StreamId::for_aggregate::<Wallet>(id).unwrap()
}
