use annals::{Aggregate, Event};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(name = "")]
    Opened,
}

#[derive(Clone, Default, Aggregate)]
#[aggregate(name = "", event = AccountEvent, command = (), error = std::fmt::Error)]
struct Account;

fn main() {}
