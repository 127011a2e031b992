use annals::{Aggregate, Command, Event};
use serde::{Deserialize, Serialize};

// No `#[event(apply = Account)]`, so `Account` has no `Apply<AccountEvent>`.
#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened,
}

#[derive(Clone, Default, Aggregate)]
#[aggregate(event = AccountEvent, command = AccountCommand, error = std::fmt::Error)]
struct Account;

#[derive(Command)]
#[command(aggregate = Account)]
enum AccountCommand {
    Open,
}

impl Account {
    fn open(&self) -> Result<Vec<AccountEvent>, std::fmt::Error> {
        Ok(vec![AccountEvent::Opened])
    }
}

fn main() {}
