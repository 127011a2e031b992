use annals::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(aply = Account)]
enum AccountEvent {
    Opened,
}

fn main() {}
