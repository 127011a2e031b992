use annals::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(nmae = "account.opened")]
    Opened,
}

fn main() {}
