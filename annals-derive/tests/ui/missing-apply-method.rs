use annals::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(apply = Account)]
enum AccountEvent {
    Opened { owner: String },
    Deposited(u64),
}

#[derive(Default)]
struct Account;

impl Account {
    fn opened(&mut self, _owner: &String) {}
}

fn main() {}
