use annals::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[serde(rename(serialize = "opened", deserialize = "open"))]
    Opened { owner: String },
}

fn main() {}
