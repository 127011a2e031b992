use annals::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[serde(tag = "type")]
enum AccountEvent {
    Opened { owner: String },
}

fn main() {}
