use annals::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn v1(body: Value) -> Result<Value, String> {
    Ok(body)
}

fn v3(body: Value) -> Result<Value, String> {
    Ok(body)
}

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    // No step from 2 to 3.
    #[event(version = 4, upcast(1 => v1, 3 => v3))]
    Opened,
    // No step from 2 to the current version 3.
    #[event(version = 3, upcast(1 => v1))]
    Closed,
}

fn main() {}
