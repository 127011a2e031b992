use annals::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(apply = Account)]
enum AccountEvent {
    #[event(apply = "on_opened")]
    Opened,
}

struct Account;

fn main() {}
