use annals::{Aggregate, Command, Event};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(apply = Account)]
enum AccountEvent {
    Opened,
}

#[derive(Clone, Default, Aggregate)]
#[aggregate(event = AccountEvent, command = AccountCommand, error = std::fmt::Error)]
struct Account;

impl Account {
    fn opened(&mut self) {}

    fn open(&self) -> Result<Vec<AccountEvent>, std::fmt::Error> {
        Ok(vec![AccountEvent::Opened])
    }
}

#[derive(Command)]
#[command(aggregate = Account)]
enum AccountCommand {
    Open,
    Archive { reason: String },
}

fn main() {}
