use annals::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened,
    #[event(name = "Opened")]
    Reopened,
    #[event(name = "account.closed")]
    Closed,
    #[event(name = "account.closed")]
    ClosedAgain,
}

fn main() {}
