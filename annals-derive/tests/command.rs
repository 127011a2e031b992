//! `#[derive(Command)]` at run time: sync and async handlers, injected services, handler
//! overrides, and handlers that decide on no events.

use annals::{Aggregate, Command, Event, Handle};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Account)]
enum AccountEvent {
    Opened { owner: String },
    Deposited(u64),
    Withdrawn { amount: u64, fee: u64 },
    Closed,
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum AccountError {
    #[error("the account is closed")]
    Closed,
    #[error("not enough money")]
    Insufficient,
}

/// The services handlers of `services` commands get.
struct Fees {
    withdrawal: u64,
}

#[derive(Debug, Clone, Default, Aggregate)]
#[aggregate(event = AccountEvent, command = AccountCommand, error = AccountError, services = Fees)]
struct Account {
    open: bool,
    balance: u64,
}

impl Account {
    fn opened(&mut self, _owner: &str) {
        self.open = true;
    }
    fn deposited(&mut self, amount: &u64) {
        self.balance += amount;
    }
    fn withdrawn(&mut self, amount: &u64, fee: &u64) {
        self.balance -= amount + fee;
    }
    fn closed(&mut self) {
        self.open = false;
    }
}

#[derive(Debug, Command)]
#[command(aggregate = Account)]
enum AccountCommand {
    Open {
        owner: String,
    },
    Deposit(u64),
    #[command(async, services)]
    Withdraw {
        amount: u64,
    },
    #[command(handler = Account::close_account)]
    Close,
    #[command(handler = check)]
    Check,
    #[command(handler = audit::log)]
    Audit(String, u64),
}

impl Account {
    fn open(&self, owner: &str) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(vec![AccountEvent::Opened {
            owner: owner.to_owned(),
        }])
    }

    fn deposit(&self, amount: &u64) -> Result<Vec<AccountEvent>, AccountError> {
        if !self.open {
            return Err(AccountError::Closed);
        }
        Ok(vec![AccountEvent::Deposited(*amount)])
    }

    async fn withdraw(&self, amount: &u64, fees: &Fees) -> Result<Vec<AccountEvent>, AccountError> {
        tokio::task::yield_now().await;
        if self.balance < amount + fees.withdrawal {
            return Err(AccountError::Insufficient);
        }
        Ok(vec![AccountEvent::Withdrawn {
            amount: *amount,
            fee: fees.withdrawal,
        }])
    }

    fn close_account(&self) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(vec![AccountEvent::Closed])
    }

    fn check(&self) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(vec![])
    }
}

mod audit {
    use super::{Account, AccountError, AccountEvent};

    pub(crate) fn log(
        account: &Account,
        _who: &str,
        _at: &u64,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        assert!(account.open);
        Ok(Vec::new())
    }
}

/// A second command enum of the same aggregate, with enum-level `async` and `services`.
#[derive(Debug, Command)]
#[command(aggregate = Account, async, services)]
enum AdminCommand {
    Refund(u64),
    #[command(handler = Account::admin_close)]
    Close,
}

impl Account {
    async fn refund(&self, amount: &u64, fees: &Fees) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(vec![AccountEvent::Deposited(amount + fees.withdrawal)])
    }

    async fn admin_close(&self, _fees: &Fees) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(vec![AccountEvent::Closed])
    }
}

const FEES: Fees = Fees { withdrawal: 1 };

fn with(events: &[AccountEvent]) -> Account {
    let mut account = Account::default();
    for event in events {
        Aggregate::apply(&mut account, event);
    }
    account
}

#[tokio::test]
async fn sync_handlers_get_fields_by_reference() {
    let account = with(&[]);
    let command = AccountCommand::Open {
        owner: "ann".into(),
    };
    let events = Handle::handle(&account, &command, &FEES).await;
    assert_eq!(
        events,
        Ok(vec![AccountEvent::Opened {
            owner: "ann".into()
        }])
    );

    let events = Handle::handle(&account, &AccountCommand::Deposit(5), &FEES).await;
    assert_eq!(events, Err(AccountError::Closed));
}

#[tokio::test]
async fn async_handlers_with_services_are_awaited() {
    let account = with(&[
        AccountEvent::Opened {
            owner: "ann".into(),
        },
        AccountEvent::Deposited(10),
    ]);
    let events = Handle::handle(&account, &AccountCommand::Withdraw { amount: 4 }, &FEES).await;
    assert_eq!(
        events,
        Ok(vec![AccountEvent::Withdrawn { amount: 4, fee: 1 }])
    );

    let events = Handle::handle(&account, &AccountCommand::Withdraw { amount: 10 }, &FEES).await;
    assert_eq!(events, Err(AccountError::Insufficient));
}

#[tokio::test]
async fn a_command_can_be_handled_again() {
    let account = with(&[AccountEvent::Opened {
        owner: "ann".into(),
    }]);
    let command = AccountCommand::Deposit(3);
    let first = Handle::handle(&account, &command, &FEES).await;
    let second = Handle::handle(&account, &command, &FEES).await;
    assert_eq!(first, second);
}

#[tokio::test]
async fn handler_overrides_call_the_named_function() {
    let account = with(&[AccountEvent::Opened {
        owner: "ann".into(),
    }]);
    let events = Handle::handle(&account, &AccountCommand::Close, &FEES).await;
    assert_eq!(events, Ok(vec![AccountEvent::Closed]));

    let events = Handle::handle(&account, &AccountCommand::Audit("ann".into(), 7), &FEES).await;
    assert_eq!(events, Ok(vec![]));
}

#[tokio::test]
async fn a_handler_may_decide_on_no_events() {
    let account = with(&[]);
    let events = Handle::handle(&account, &AccountCommand::Check, &FEES).await;
    assert_eq!(events, Ok(vec![]));
}

#[tokio::test]
async fn enum_level_async_and_services_apply_to_every_variant() {
    let account = with(&[AccountEvent::Opened {
        owner: "ann".into(),
    }]);
    let events = Handle::<AdminCommand>::handle(&account, &AdminCommand::Refund(5), &FEES).await;
    assert_eq!(events, Ok(vec![AccountEvent::Deposited(6)]));

    let events = Handle::<AdminCommand>::handle(&account, &AdminCommand::Close, &FEES).await;
    assert_eq!(events, Ok(vec![AccountEvent::Closed]));
}

#[tokio::test]
async fn the_aggregate_dispatches_to_the_command_enum() {
    let account = with(&[AccountEvent::Opened {
        owner: "ann".into(),
    }]);
    let events = Aggregate::handle(&account, &AccountCommand::Deposit(2), &FEES).await;
    assert_eq!(events, Ok(vec![AccountEvent::Deposited(2)]));
}

#[test]
fn the_handle_future_is_send() {
    fn assert_send<T: Send>(_: T) {}
    let account = Account::default();
    assert_send(Handle::handle(
        &account,
        &AccountCommand::Withdraw { amount: 1 },
        &FEES,
    ));
    assert_send(Handle::handle(&account, &AdminCommand::Refund(1), &FEES));
}

#[test]
fn each_command_is_named_by_its_variant() {
    let commands = [
        AccountCommand::Open {
            owner: "ann".into(),
        },
        AccountCommand::Deposit(1),
        AccountCommand::Withdraw { amount: 1 },
        AccountCommand::Close,
        AccountCommand::Audit("x".into(), 1),
    ];
    let names: Vec<_> = commands
        .iter()
        .map(<Account as Aggregate>::command_name)
        .collect();
    assert_eq!(names, ["Open", "Deposit", "Withdraw", "Close", "Audit"]);
    assert_eq!(
        <Account as Handle<AdminCommand>>::command_name(&AdminCommand::Refund(1)),
        "Refund"
    );
}
