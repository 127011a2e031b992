use annals::{Aggregate, Command, Event};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(apply = Account)]
enum AccountEvent {
    Opened,
}

#[derive(Debug, Command)]
#[command(aggregate = Account)]
enum AccountCommand {
    Open,
}

#[derive(Debug)]
struct AccountError;

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

impl std::error::Error for AccountError {}

#[derive(Clone, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(event = AccountEvent, command = AccountCommand, error = AccountError, snapshot_every = "ten")]
struct Account;

#[derive(Clone, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(event = AccountEvent, command = AccountCommand, error = AccountError, snapshot_every = 99999999999999999999999)]
struct Other;

impl Account {
    fn opened(&mut self) {}
    fn open(&self) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(vec![])
    }
}

fn main() {}
