use annals::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(crate = annals)]
enum AccountEvent {
    #[event(version = "2")]
    Opened,
    #[event(name = 3)]
    Closed,
}

fn main() {}
