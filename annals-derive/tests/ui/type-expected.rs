use annals::{Aggregate, Event};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened,
}

#[derive(Clone, Default, Aggregate)]
#[aggregate(event = AccountEvent, command = "AccountCommand", error = std::fmt::Error)]
struct Account;

fn main() {}
