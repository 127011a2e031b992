//! Expansion snapshots: what the derives generate for the bank account of the design, formatted
//! with prettyplease. Review a changed snapshot like code: it is what every user compiles.

use proc_macro2::TokenStream;
use syn::{parse_quote, DeriveInput};

use crate::expand;

fn pretty(tokens: TokenStream) -> String {
    prettyplease::unparse(&syn::parse2(tokens).unwrap())
}

#[test]
fn event_enum() {
    let input: DeriveInput = parse_quote! {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
        #[event(apply = BankAccount)]
        pub enum AccountEvent {
            #[event(version = 2)]
            Opened { owner: String, overdraft_limit: u64 },
            #[event(name = "account.deposited")]
            #[serde(rename = "deposited")]
            Deposited { amount: u64 },
            #[event(apply = on_withdrawal)]
            Withdrawn(u64),
            Closed,
        }
    };
    insta::assert_snapshot!(pretty(expand::derive_event(&input)));
}

#[test]
fn event_enum_with_evolution() {
    let input: DeriveInput = parse_quote! {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
        #[event(apply = BankAccount, removed("AuditPinged"))]
        pub enum AccountEvent {
            #[event(version = 4, upcast(1 => upcast::opened_v1, 2 => upcast::opened_v2), upcast_from(3 => OpenedV3))]
            Opened { owner: String, overdraft_limit: u64 },
            #[event(name = "account.deposited", alias = "MoneyDeposited")]
            Deposited { amount: u64 },
            #[event(version = 3, upcast_from(1 => WithdrawnV1, 2 => WithdrawnV2))]
            Withdrawn(u64),
        }
    };
    insta::assert_snapshot!(pretty(expand::derive_event(&input)));
}

#[test]
fn aggregate_struct_with_snapshots() {
    let input: DeriveInput = parse_quote! {
        #[derive(Debug, Clone, Default, Serialize, Deserialize, Aggregate)]
        #[aggregate(event = AccountEvent, command = AccountCommand, error = AccountError,
                    snapshot_every = 100, snapshot_version = 2)]
        pub struct BankAccount {
            open: bool,
            balance: i64,
        }
    };
    insta::assert_snapshot!(pretty(expand::derive_aggregate(&input)));
}

#[test]
fn aggregate_struct() {
    let input: DeriveInput = parse_quote! {
        #[derive(Debug, Clone, Default, Aggregate)]
        #[aggregate(event = AccountEvent, command = AccountCommand, error = AccountError)]
        pub struct BankAccount {
            open: bool,
            balance: i64,
            overdraft_limit: u64,
        }
    };
    insta::assert_snapshot!(pretty(expand::derive_aggregate(&input)));
}

#[test]
fn command_enum() {
    let input: DeriveInput = parse_quote! {
        #[derive(Debug, Command)]
        #[command(aggregate = BankAccount)]
        pub enum AccountCommand {
            Open { owner: String, overdraft_limit: u64 },
            Deposit(u64),
            #[command(async, services)]
            Withdraw { amount: u64 },
            #[command(handler = BankAccount::close_account)]
            Close,
        }
    };
    insta::assert_snapshot!(pretty(expand::derive_command(&input)));
}

#[test]
fn sync_command_enum_with_services() {
    let input: DeriveInput = parse_quote! {
        #[command(aggregate = BankAccount, services)]
        pub enum AccountCommand {
            Open { owner: String },
            #[command(handler = audit)]
            Audit,
        }
    };
    insta::assert_snapshot!(pretty(expand::derive_command(&input)));
}

#[test]
fn generic_types_and_crate_path() {
    let event: DeriveInput = parse_quote! {
        #[event(crate = "crate::reexport::es", apply = Ledger<T>)]
        pub enum LedgerEvent<T> {
            Recorded(T),
        }
    };
    let command: DeriveInput = parse_quote! {
        #[command(crate = "crate::reexport::es", aggregate = Ledger<T>)]
        pub enum LedgerCommand<T> {
            Record(T),
        }
    };
    let aggregate: DeriveInput = parse_quote! {
        #[aggregate(
            crate = "crate::reexport::es",
            name = "ledger",
            event = LedgerEvent<T>,
            command = LedgerCommand<T>,
            error = LedgerError,
            services = Clock,
        )]
        pub struct Ledger<T> {
            entries: Vec<T>,
        }
    };
    let mut tokens = expand::derive_event(&event);
    tokens.extend(expand::derive_command(&command));
    tokens.extend(expand::derive_aggregate(&aggregate));
    insta::assert_snapshot!(pretty(tokens));
}

#[test]
fn errors_come_with_stub_impls() {
    let input: DeriveInput = parse_quote! {
        #[event(apply = BankAccount, colour = "red")]
        pub enum AccountEvent {
            #[event(version = 0)]
            Opened,
        }
    };
    insta::assert_snapshot!(pretty(expand::derive_event(&input)));
}
