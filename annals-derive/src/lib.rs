//! Derive macros for [`annals`](https://docs.rs/annals): `#[derive(Event)]`,
//! `#[derive(Command)]` and `#[derive(Aggregate)]`.
//!
//! Use them through `annals` (its default `derive` feature re-exports them), not from this
//! crate directly: the generated code names `::annals::__private::..` paths only, so a
//! program needs `annals` and `serde` in its `Cargo.toml` and nothing else.
//!
//! The pipeline follows serde_derive: `attr` parses the helper attributes (their names are the
//! constants of `symbol`), `ast` builds a typed model with the conventions filled in, or none,
//! `check` applies the rules that span several items, and `expand` generates the impls. Every error of one input is collected and
//! reported in one build, spanned on the offending token, beside stub impls so that one mistake
//! does not cascade.

mod ast;
mod attr;
mod case;
mod check;
mod ctxt;
mod expand;
mod symbol;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Implements `Event` for an enum whose variants are event types, and optionally `Apply<Enum>`
/// for the aggregate state.
///
/// The enum must also derive serde's `Serialize` and `Deserialize` in the default, externally
/// tagged representation. An event is stored as its type name, its schema version, and the JSON
/// body of the variant alone, without the enum tag: `{"amount":100}`, not
/// `{"Deposited":{"amount":100}}`. The body is produced by the enum's own serde impls, so every
/// field-level serde attribute (`rename`, `default`, `skip_serializing_if`, `with`, ..) keeps
/// working.
///
/// # Attributes on the enum
///
/// | Attribute                           | Meaning                                                                        |
/// |-------------------------------------|--------------------------------------------------------------------------------|
/// | `#[event(apply = State)]`           | also implement `Apply<Enum> for State`, calling one method of `State` per variant |
/// | `#[event(removed("A", "B"))]`       | type names of events that no longer exist: stored events of these types decode to `None` and are skipped |
/// | `#[event(crate = "path")]`          | where the `annals` crate is, when it is renamed or re-exported (default `::annals`) |
///
/// # Attributes on a variant
///
/// | Attribute                           | Default                                   | Meaning                                  |
/// |-------------------------------------|-------------------------------------------|------------------------------------------|
/// | `#[event(name = "account.opened")]` | the variant's name, as written: `Opened`  | the stored type name; must not be empty and must be unique in the enum |
/// | `#[event(alias = "OldName")]`       | none; repeatable                          | a former type name: accepted on read, never written |
/// | `#[event(version = 2)]`             | `1`                                       | the schema version this code writes and reads; counts from 1 |
/// | `#[event(upcast(1 => f, 2 => g))]`  | none                                      | JSON upcasters: `fn(serde_json::Value) -> Result<serde_json::Value, E>` bringing the body of version N to N + 1 (`E` is any error, or `String`) |
/// | `#[event(upcast_from(2 => OpenedV2))]` | none                                   | typed upcasters: the stored body of version N deserializes into the named type, which converts with `TryFrom`/`From` into the type of version N + 1, or into the event enum after the last step |
/// | `#[event(apply = on_opened)]`       | snake_case of the variant: `MoneyDeposited` → `money_deposited` | the method of the `apply` state called for this variant |
///
/// Stored events of the current version decode straight into the enum, from the stored bytes.
/// An older version runs through every remaining step of its chain (JSON steps first, then
/// typed steps), and only old versions pay for that. The chain is checked at compile time: the
/// steps must lead one version at a time to the current version, with no gap, no duplicate, no
/// step from the current version or later; names and aliases must be unique across the enum
/// and its removed types. At run time, a version the chain does not cover fails with
/// `DecodeError::FutureVersion` (newer) or `DecodeError::NoUpcaster` (older), a failing
/// upcaster with `DecodeError::Upcast`, a body that does not fit with `DecodeError::Body`, and an
/// unknown type name with `DecodeError::UnknownType`.
///
/// # Apply methods
///
/// With `#[event(apply = State)]`, each variant calls `State::method(&mut self, ..)` with its
/// fields by reference: a struct variant passes its fields in declaration order, a tuple or
/// newtype variant passes each element, a unit variant passes nothing. A missing method is a
/// compile error that points at the variant.
///
/// # serde attributes
///
/// `#[serde(rename = "..")]` on a variant is honoured (it changes the serde name, not the stored
/// type name). The derive rejects, with an error on the key, what would break the stored form:
/// `tag`, `content`, `untagged` and `rename_all` on the enum; `skip`, `skip_serializing`,
/// `skip_deserializing`, `other`, `untagged` and `rename(serialize = .., deserialize = ..)` on a
/// variant. Every other serde attribute is left to serde.
///
/// # Example
///
/// ```
/// use annals::prelude::*;
/// use serde::{Deserialize, Serialize};
/// # #[derive(Default)]
/// # pub struct BankAccount { balance: i64 }
/// # impl BankAccount {
/// #     fn opened(&mut self, _owner: &str, _limit: &u64) {}
/// #     fn deposited(&mut self, amount: &u64) { self.balance += *amount as i64 }
/// #     fn on_withdrawal(&mut self, amount: &u64) { self.balance -= *amount as i64 }
/// #     fn closed(&mut self) {}
/// # }
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
/// #[event(apply = BankAccount)]
/// pub enum AccountEvent {
///     Opened { owner: String, overdraft_limit: u64 },   // BankAccount::opened(&mut self, &str, &u64)
///     #[event(name = "account.deposited", version = 2)]
///     Deposited { amount: u64 },                        // BankAccount::deposited(&mut self, &u64)
///     #[event(apply = on_withdrawal)]
///     Withdrawn(u64),                                   // BankAccount::on_withdrawal(&mut self, &u64)
///     Closed,                                           // BankAccount::closed(&mut self)
/// }
///
/// let deposited = AccountEvent::Deposited { amount: 100 };
/// assert_eq!((deposited.event_type(), deposited.schema_version()), ("account.deposited", 2));
/// assert_eq!(deposited.encode()?.as_str(), r#"{"amount":100}"#);
/// # Ok::<(), annals::EncodeError>(())
/// ```
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive_event(&input).into()
}

/// Implements `Handle<Enum>` for an aggregate: each command variant calls one handler.
///
/// A handler decides on a command against the current state and returns the events to append:
/// `fn open(&self, owner: &str, overdraft_limit: &u64) -> Result<Vec<AccountEvent>, AccountError>`.
/// Fields are passed by reference, like apply methods: a struct variant passes its fields in
/// declaration order, a tuple or newtype variant each element, a unit variant nothing. (The
/// repository may run a command again after a concurrent write, so handlers never take it by
/// value.) Returning no events is fine: nothing is appended. A missing handler is a compile error
/// that points at the variant.
///
/// # Attributes on the enum
///
/// | Attribute                          | Meaning                                                                     |
/// |------------------------------------|-----------------------------------------------------------------------------|
/// | `#[command(aggregate = Account)]`  | required: the aggregate that handles these commands                         |
/// | `#[command(async)]`                | every handler is an `async fn`                                              |
/// | `#[command(services)]`             | every handler takes `&Services` (the aggregate's `Services` type) as its last argument |
/// | `#[command(crate = "path")]`       | where the `annals` crate is (default `::annals`)                 |
///
/// # Attributes on a variant
///
/// | Attribute                                         | Meaning                                                   |
/// |---------------------------------------------------|-----------------------------------------------------------|
/// | `#[command(handler = close_account)]`             | a method of the aggregate other than the default, which is snake_case of the variant (`Open` → `open`) |
/// | `#[command(handler = handlers::close)]`           | a path with several segments is called as written, with the aggregate as first argument |
/// | `#[command(async)]`                               | this handler is an `async fn`                             |
/// | `#[command(services)]`                            | this handler takes `&Services` as its last argument       |
///
/// # Example
///
/// ```
/// # use annals::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Serialize, Deserialize, Event)]
/// # #[event(apply = BankAccount)]
/// # pub enum AccountEvent { Opened }
/// # #[derive(Debug)]
/// # pub struct AccountError;
/// # impl std::fmt::Display for AccountError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("refused") }
/// # }
/// # impl std::error::Error for AccountError {}
/// # #[derive(Default)]
/// # pub struct Fraud;
/// # #[derive(Clone, Default, Aggregate)]
/// # #[aggregate(event = AccountEvent, command = AccountCommand, error = AccountError, services = Fraud)]
/// # pub struct BankAccount;
/// # type Decided = Result<Vec<AccountEvent>, AccountError>;
/// # impl BankAccount {
/// #     fn opened(&mut self) {}
/// #     fn open(&self, _owner: &str, _limit: &u64) -> Decided { Ok(vec![AccountEvent::Opened]) }
/// #     fn deposit(&self, _amount: &u64) -> Decided { Ok(vec![]) }
/// #     async fn withdraw(&self, _amount: &u64, _fraud: &Fraud) -> Decided { Ok(vec![]) }
/// #     fn close_account(&self) -> Decided { Err(AccountError) }
/// # }
/// #[derive(Debug, Command)]
/// #[command(aggregate = BankAccount)]
/// pub enum AccountCommand {
///     Open { owner: String, overdraft_limit: u64 },  // BankAccount::open(&self, &str, &u64)
///     Deposit(u64),                                   // BankAccount::deposit(&self, &u64)
///     #[command(async, services)]
///     Withdraw { amount: u64 },                       // async BankAccount::withdraw(&self, &u64, &Services)
///     #[command(handler = BankAccount::close_account)]
///     Close,                                          // BankAccount::close_account(&self)
/// }
/// ```
#[proc_macro_derive(Command, attributes(command))]
pub fn derive_command(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive_command(&input).into()
}

/// Implements `Aggregate` for the aggregate's state struct.
///
/// The state starts as `Default`; `apply` dispatches to the `Apply` impl that
/// `#[derive(Event)]` generates with `#[event(apply = ..)]`, and `handle` to the `Handle` impl
/// of `#[derive(Command)]`.
///
/// # Attributes
///
/// | Attribute                            | Default                                  | Meaning                                 |
/// |--------------------------------------|------------------------------------------|-----------------------------------------|
/// | `#[aggregate(event = AccountEvent)]` | required                                 | the event enum                          |
/// | `#[aggregate(command = AccountCommand)]` | required                             | the command enum                        |
/// | `#[aggregate(error = AccountError)]` | required                                 | the error a rejected command returns    |
/// | `#[aggregate(name = "bank-account")]`| kebab-case of the struct: `BankAccount` → `bank-account` | `Aggregate::TYPE`, the prefix of stream ids; must not be empty |
/// | `#[aggregate(services = Clock)]`     | `()`                                     | the services injected into handlers     |
/// | `#[aggregate(snapshot_every = 100)]` | no snapshots                             | store a snapshot of the state every 100 events; the state must implement serde's `Serialize` and `Deserialize` |
/// | `#[aggregate(snapshot_version = 2)]` | `1`                                      | the snapshot encoding's version: bump it when the state's shape changes, and older snapshots are ignored |
/// | `#[aggregate(crate = "path")]`       | `::annals`                          | where the `annals` crate is        |
///
/// # Example
///
/// ```
/// # use annals::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Serialize, Deserialize, Event)]
/// # #[event(apply = BankAccount)]
/// # pub enum AccountEvent { Opened }
/// # #[derive(Debug, Command)]
/// # #[command(aggregate = BankAccount)]
/// # pub enum AccountCommand { Open }
/// # #[derive(Debug)]
/// # pub struct AccountError;
/// # impl std::fmt::Display for AccountError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("refused") }
/// # }
/// # impl std::error::Error for AccountError {}
/// # impl BankAccount {
/// #     fn opened(&mut self) { self.open = true }
/// #     fn open(&self) -> Result<Vec<AccountEvent>, AccountError> { Ok(vec![AccountEvent::Opened]) }
/// # }
/// #[derive(Debug, Clone, Default, Aggregate)]
/// #[aggregate(event = AccountEvent, command = AccountCommand, error = AccountError)]
/// pub struct BankAccount {
///     open: bool,
///     balance: i64,
/// }
///
/// assert_eq!(<BankAccount as Aggregate>::TYPE, "bank-account");
/// ```
#[proc_macro_derive(Aggregate, attributes(aggregate))]
pub fn derive_aggregate(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive_aggregate(&input).into()
}
