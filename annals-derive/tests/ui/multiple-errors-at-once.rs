use annals::{Aggregate, Command, Event};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(apply = Account, colour = "red")]
enum AccountEvent {
    #[event(version = 0, name = "opened")]
    Opened,
    #[event(name = "opened", name = "again")]
    Reopened,
}

#[derive(Clone, Default, Aggregate)]
#[aggregate(event = AccountEvent, commands = AccountCommand, error = std::fmt::Error)]
struct Account;

#[derive(Command)]
#[command(aggregate = Account, sync)]
enum AccountCommand {
    #[command(handler = 1)]
    Open,
}

impl Account {
    fn opened(&mut self) {}
    fn reopened(&mut self) {}
}

fn main() {}
