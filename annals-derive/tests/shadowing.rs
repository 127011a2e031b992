//! The generated code uses absolute paths only: it compiles without warnings next to user code
//! that shadows prelude names and the crate's own name.

#![deny(warnings)]
#![allow(dead_code, non_upper_case_globals, non_camel_case_types, clippy::all)]

use ::annals::{Aggregate, Event as _};
use serde::{Deserialize, Serialize};

type Result<T> = ::core::result::Result<T, ()>;
type Vec = ();
type Box = ();
struct Option;
struct Some;
struct None;
struct Ok;
struct Err;
struct String;
trait Send {}
trait Sync {}
trait Future {}
trait Default {}
mod annals {}
mod core {}
mod std {}
mod serde_json {}

// A constant named like a command field: a binding by the field's name would become a constant
// pattern. (serde_derive's own impls would break on constants named like event fields.)
const services: u64 = 0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ::annals::Event)]
#[event(apply = BankAccount)]
enum AccountEvent {
    Opened {
        owner: ::std::string::String,
    },
    #[event(name = "account.deposited", version = 2)]
    Deposited {
        amount: u64,
    },
    Moved(u64, u64),
    Closed,
}

#[derive(Debug, PartialEq)]
struct AccountError;

impl ::std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        f.write_str("rejected")
    }
}

impl ::std::error::Error for AccountError {}

struct Services {
    bonus: u64,
}

#[derive(Debug, ::core::clone::Clone, ::core::default::Default, ::annals::Aggregate)]
#[aggregate(event = AccountEvent, command = AccountCommand, error = AccountError, services = Services)]
struct BankAccount {
    open: bool,
    balance: u64,
}

type Decided = ::core::result::Result<::std::vec::Vec<AccountEvent>, AccountError>;

impl BankAccount {
    fn opened(&mut self, _: &str) {
        self.open = true;
    }
    fn deposited(&mut self, value: &u64) {
        self.balance += value;
    }
    fn moved(&mut self, _: &u64, _: &u64) {}
    fn closed(&mut self) {
        self.open = false;
    }

    fn open(&self, who: &str) -> Decided {
        ::core::result::Result::Ok(::std::vec![AccountEvent::Opened { owner: who.into() }])
    }
    async fn deposit(&self, value: &u64, services_: &Services) -> Decided {
        ::core::result::Result::Ok(::std::vec![AccountEvent::Deposited {
            amount: value + services_.bonus,
        }])
    }
    fn grant(&self, value: &u64, services_: &Services) -> Decided {
        ::core::result::Result::Ok(::std::vec![AccountEvent::Deposited {
            amount: value * services_.bonus,
        }])
    }
    fn close(&self) -> Decided {
        ::core::result::Result::Err(AccountError)
    }
}

#[derive(Debug, ::annals::Command)]
#[command(aggregate = BankAccount)]
enum AccountCommand {
    Open {
        owner: ::std::string::String,
    },
    #[command(async, services)]
    Deposit {
        amount: u64,
    },
    #[command(services)]
    Grant {
        services: u64,
    },
    Close,
}

#[test]
fn derived_impls_work_beside_shadowed_names() {
    let runtime = ::tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let services_ = Services { bonus: 1 };
    let mut account = <BankAccount as ::core::default::Default>::default();
    for command in [
        AccountCommand::Open {
            owner: "ann".into(),
        },
        AccountCommand::Deposit { amount: 5 },
        AccountCommand::Grant { services: 4 },
    ] {
        let events = runtime
            .block_on(Aggregate::handle(&account, &command, &services_))
            .unwrap();
        for event in &events {
            let payload = event.encode().unwrap();
            let decoded =
                AccountEvent::decode(event.event_type(), event.schema_version(), payload.as_str());
            assert_eq!(
                decoded.unwrap().as_ref(),
                ::core::option::Option::Some(event)
            );
            Aggregate::apply(&mut account, event);
        }
    }
    assert!(account.open);
    assert_eq!(account.balance, 10);
    assert_eq!(
        runtime.block_on(Aggregate::handle(
            &account,
            &AccountCommand::Close,
            &services_
        )),
        ::core::result::Result::Err(AccountError)
    );
    assert_eq!(
        AccountEvent::Deposited { amount: 1 }.event_type(),
        "account.deposited"
    );
    assert_eq!(BankAccount::TYPE, "bank-account");
}
