//! The bank account domain: events, commands and the aggregate, shared by the example binary
//! and its tests.

use std::fmt;

use annals::prelude::*;
use serde::{Deserialize, Serialize};

/// What happened to an account.
///
/// Its stored form has changed once: `Opened` version 1 had no overdraft limit (accounts had
/// none then) and named the holder `name`. Stored v1 events still load, through
/// [`upcast::opened_v1`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = BankAccount)]
pub enum AccountEvent {
    /// The account was opened for `owner`, allowed to go `overdraft_limit` below zero.
    #[event(version = 2, upcast(1 => upcast::opened_v1))]
    Opened {
        /// The account holder.
        owner: String,
        /// How far below zero the balance may go, in cents.
        overdraft_limit: u64,
    },
    /// Money came in. Stored as `MoneyDeposited` before it was renamed.
    #[event(name = "account.deposited", alias = "MoneyDeposited")]
    Deposited {
        /// In cents.
        amount: u64,
    },
    /// Money went out.
    Withdrawn {
        /// In cents.
        amount: u64,
    },
    /// The account was closed.
    Closed,
}

/// Upcasters: each brings a stored body one schema version forward.
pub mod upcast {
    use serde_json::{json, Value};

    /// `Opened` v1 → v2: `name` became `owner`, and `overdraft_limit` appeared (0 before).
    pub fn opened_v1(mut body: Value) -> Result<Value, String> {
        let fields = body
            .as_object_mut()
            .ok_or("an `Opened` v1 body is a JSON object")?;
        let owner = fields
            .remove("name")
            .ok_or("an `Opened` v1 body has a `name`")?;
        fields.insert("owner".into(), owner);
        fields.insert("overdraft_limit".into(), json!(0));
        Ok(body)
    }
}

/// What a client asks of an account.
#[derive(Debug, Clone, PartialEq, Command)]
#[command(aggregate = BankAccount)]
pub enum AccountCommand {
    /// Open the account.
    Open {
        /// The account holder.
        owner: String,
        /// How far below zero the balance may go, in cents.
        overdraft_limit: u64,
    },
    /// Put money in.
    Deposit {
        /// In cents.
        amount: u64,
    },
    /// Take money out, within the overdraft limit.
    Withdraw {
        /// In cents.
        amount: u64,
    },
    /// Close the account; only an account with a zero balance can be closed.
    #[command(handler = BankAccount::close_account)]
    Close,
}

/// Why an account refused a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountError {
    /// `Open` on an account that is already open.
    AlreadyOpen,
    /// Any command but `Open` on an account that is not open.
    NotOpen,
    /// A deposit or withdrawal of nothing.
    ZeroAmount,
    /// A withdrawal that would take the balance below the overdraft limit.
    InsufficientFunds {
        /// The balance before the withdrawal, in cents.
        balance: i64,
        /// The amount asked for, in cents.
        requested: u64,
        /// The overdraft limit, in cents.
        overdraft_limit: u64,
    },
    /// `Close` on an account whose balance is not zero.
    NonZeroBalance(i64),
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountError::AlreadyOpen => f.write_str("the account is already open"),
            AccountError::NotOpen => f.write_str("the account is not open"),
            AccountError::ZeroAmount => f.write_str("the amount must not be zero"),
            AccountError::InsufficientFunds {
                balance,
                requested,
                overdraft_limit,
            } => write!(
                f,
                "cannot withdraw {requested} from a balance of {balance} with an overdraft limit of {overdraft_limit}"
            ),
            AccountError::NonZeroBalance(balance) => {
                write!(f, "cannot close an account with a balance of {balance}")
            }
        }
    }
}

impl std::error::Error for AccountError {}

/// The state of an account, rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(
    name = "bank-account",
    event = AccountEvent,
    command = AccountCommand,
    error = AccountError,
    snapshot_every = 100
)]
pub struct BankAccount {
    /// The account holder.
    pub owner: String,
    /// Whether the account is open.
    pub open: bool,
    /// The balance in cents; negative when overdrawn.
    pub balance: i64,
    /// How far below zero the balance may go, in cents.
    pub overdraft_limit: u64,
}

// Apply methods: one per event, named after it. They never fail.
impl BankAccount {
    fn opened(&mut self, owner: &str, overdraft_limit: &u64) {
        self.owner = owner.to_owned();
        self.open = true;
        self.overdraft_limit = *overdraft_limit;
    }

    fn deposited(&mut self, amount: &u64) {
        self.balance += *amount as i64;
    }

    fn withdrawn(&mut self, amount: &u64) {
        self.balance -= *amount as i64;
    }

    fn closed(&mut self) {
        self.open = false;
    }
}

// Command handlers: one per command, deciding against the current state.
impl BankAccount {
    fn open(&self, owner: &str, overdraft_limit: &u64) -> Result<Vec<AccountEvent>, AccountError> {
        if self.open {
            return Err(AccountError::AlreadyOpen);
        }
        Ok(vec![AccountEvent::Opened {
            owner: owner.to_owned(),
            overdraft_limit: *overdraft_limit,
        }])
    }

    fn deposit(&self, amount: &u64) -> Result<Vec<AccountEvent>, AccountError> {
        self.ensure_open()?;
        if *amount == 0 {
            return Err(AccountError::ZeroAmount);
        }
        Ok(vec![AccountEvent::Deposited { amount: *amount }])
    }

    fn withdraw(&self, amount: &u64) -> Result<Vec<AccountEvent>, AccountError> {
        self.ensure_open()?;
        if *amount == 0 {
            return Err(AccountError::ZeroAmount);
        }
        if self.balance - (*amount as i64) < -(self.overdraft_limit as i64) {
            return Err(AccountError::InsufficientFunds {
                balance: self.balance,
                requested: *amount,
                overdraft_limit: self.overdraft_limit,
            });
        }
        Ok(vec![AccountEvent::Withdrawn { amount: *amount }])
    }

    fn close_account(&self) -> Result<Vec<AccountEvent>, AccountError> {
        self.ensure_open()?;
        if self.balance != 0 {
            return Err(AccountError::NonZeroBalance(self.balance));
        }
        Ok(vec![AccountEvent::Closed])
    }

    fn ensure_open(&self) -> Result<(), AccountError> {
        if self.open {
            Ok(())
        } else {
            Err(AccountError::NotOpen)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use annals::testing::given;

    fn opened(overdraft_limit: u64) -> AccountEvent {
        AccountEvent::Opened {
            owner: "ann".into(),
            overdraft_limit,
        }
    }

    #[test]
    fn opens_once() {
        given::<BankAccount>([])
            .when(AccountCommand::Open {
                owner: "ann".into(),
                overdraft_limit: 50,
            })
            .then_events([opened(50)]);
        given::<BankAccount>([opened(0)])
            .when(AccountCommand::Open {
                owner: "bob".into(),
                overdraft_limit: 0,
            })
            .then_error(AccountError::AlreadyOpen);
    }

    #[test]
    fn withdraws_within_the_overdraft_limit() {
        given::<BankAccount>([opened(50), AccountEvent::Deposited { amount: 100 }])
            .when(AccountCommand::Withdraw { amount: 150 })
            .then_events([AccountEvent::Withdrawn { amount: 150 }])
            .then_state(|account| assert_eq!(account.balance, -50));
        given::<BankAccount>([opened(50), AccountEvent::Deposited { amount: 100 }])
            .when(AccountCommand::Withdraw { amount: 151 })
            .then_error(AccountError::InsufficientFunds {
                balance: 100,
                requested: 151,
                overdraft_limit: 50,
            });
    }

    #[test]
    fn closes_only_at_zero() {
        given::<BankAccount>([opened(0), AccountEvent::Deposited { amount: 1 }])
            .when(AccountCommand::Close)
            .then_error(AccountError::NonZeroBalance(1));
        given::<BankAccount>([opened(0)])
            .when(AccountCommand::Close)
            .then_events([AccountEvent::Closed]);
        given::<BankAccount>([opened(0), AccountEvent::Closed])
            .when(AccountCommand::Deposit { amount: 5 })
            .then_error(AccountError::NotOpen);
    }

    /// The stored form of every event: a change that would break stored data fails here.
    #[test]
    fn stored_form_is_stable() {
        insta::assert_snapshot!(annals::testing::stored_form(&[
            opened(50),
            AccountEvent::Deposited { amount: 100 },
            AccountEvent::Withdrawn { amount: 30 },
            AccountEvent::Closed,
        ]));
    }

    #[test]
    fn version_1_opened_events_load_through_the_upcaster() {
        let v1 = annals::Payload::from_json(r#"{"name":"ann"}"#).unwrap();
        assert_eq!(
            AccountEvent::decode("Opened", 1, v1.as_str()).unwrap(),
            Some(opened(0))
        );
        let renamed = annals::Payload::from_json(r#"{"amount":5}"#).unwrap();
        assert_eq!(
            AccountEvent::decode("MoneyDeposited", 1, renamed.as_str()).unwrap(),
            Some(AccountEvent::Deposited { amount: 5 })
        );
        let broken = annals::Payload::from_json(r#"{"owner":"ann"}"#).unwrap();
        let error = AccountEvent::decode("Opened", 1, broken.as_str()).unwrap_err();
        assert!(error.to_string().contains("has a `name`"), "{error}");
    }

    #[test]
    fn rejects_zero_amounts() {
        given::<BankAccount>([opened(0)])
            .when(AccountCommand::Deposit { amount: 0 })
            .then_error(AccountError::ZeroAmount);
    }
}
