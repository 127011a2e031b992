//! `#[derive(Aggregate)]` at run time: the type name, the associated types, and the delegation
//! to the `Apply` and `Handle` impls.

use std::any::TypeId;

use annals::{Aggregate, Command, Event};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = BankAccount)]
enum AccountEvent {
    Deposited { amount: u64 },
}

#[derive(Debug, Command)]
#[command(aggregate = BankAccount)]
enum AccountCommand {
    Deposit { amount: u64 },
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct AccountError;

#[derive(Debug, Clone, Default, Aggregate)]
#[aggregate(event = AccountEvent, command = AccountCommand, error = AccountError)]
struct BankAccount {
    balance: u64,
}

impl BankAccount {
    fn deposited(&mut self, amount: &u64) {
        self.balance += amount;
    }

    fn deposit(&self, amount: &u64) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(vec![AccountEvent::Deposited { amount: *amount }])
    }
}

/// An aggregate with its type name and services set.
#[derive(Debug, Clone, Default, Aggregate)]
#[aggregate(
    name = "ledger.v2",
    event = AccountEvent,
    command = AccountCommand,
    error = AccountError,
    services = Clock
)]
struct HTTPLedger;

struct Clock;

impl annals::Apply<AccountEvent> for HTTPLedger {
    fn apply(&mut self, _: &AccountEvent) {}
}

impl annals::Handle<AccountCommand> for HTTPLedger {
    async fn handle(
        &self,
        _: &AccountCommand,
        _: &Clock,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(vec![])
    }
}

#[test]
fn the_type_name_defaults_to_kebab_case_of_the_struct() {
    assert_eq!(BankAccount::TYPE, "bank-account");
}

#[test]
fn the_type_name_can_be_set() {
    assert_eq!(HTTPLedger::TYPE, "ledger.v2");
}

#[test]
fn the_associated_types_are_the_named_ones() {
    fn types<A: Aggregate>() -> [TypeId; 4] {
        [
            TypeId::of::<A::Event>(),
            TypeId::of::<A::Command>(),
            TypeId::of::<A::Error>(),
            TypeId::of::<A::Services>(),
        ]
    }
    let named = [
        TypeId::of::<AccountEvent>(),
        TypeId::of::<AccountCommand>(),
        TypeId::of::<AccountError>(),
    ];
    assert_eq!(types::<BankAccount>()[..3], named);
    assert_eq!(
        types::<BankAccount>()[3],
        TypeId::of::<()>(),
        "services default to ()"
    );
    assert_eq!(types::<HTTPLedger>()[3], TypeId::of::<Clock>());
}

#[tokio::test]
async fn apply_and_handle_delegate_to_the_derived_dispatch() {
    let mut account = BankAccount::default();
    let events = Aggregate::handle(&account, &AccountCommand::Deposit { amount: 7 }, &())
        .await
        .unwrap();
    for event in &events {
        Aggregate::apply(&mut account, event);
    }
    assert_eq!(account.balance, 7);
}
