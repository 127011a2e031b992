use annals::Event;
use serde::{Deserialize, Serialize};

fn opened_v1(body: String) -> String {
    body
}

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2, upcast(1 => opened_v1))]
    Opened,
}

fn main() {}
