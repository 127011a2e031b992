use annals::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(crate = "event source")]
enum AccountEvent {
    Opened,
}

fn main() {}
