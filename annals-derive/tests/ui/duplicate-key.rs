use annals::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[event(version = 3)]
    Opened,
}

fn main() {}
