use annals::{Aggregate, Event};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened,
}

#[derive(Clone, Default, Aggregate)]
#[aggregate(event = AccountEvent, command = (), error = std::fmt::Error, snapshot = 10)]
struct Account;

fn main() {}
