use annals::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(removed("Pinged", "Opened", "Legacy"))]
enum AccountEvent {
    #[event(alias = "AccountOpened")]
    Opened,
    // An alias that is another variant's name, one that is another variant's alias, an empty one.
    #[event(alias = "Opened", alias = "AccountOpened", alias = "")]
    Deposited,
    #[event(alias = "Legacy")]
    Closed,
}

fn main() {}
