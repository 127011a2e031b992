use annals::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn step(body: Value) -> Result<Value, String> {
    Ok(body)
}

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2, upcast(1 => step, 2 => step))]
    Opened,
    #[event(upcast(0 => step))]
    Closed,
}

fn main() {}
