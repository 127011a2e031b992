use annals::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn step(body: Value) -> Result<Value, String> {
    Ok(body)
}

#[derive(Deserialize)]
struct OpenedV1;

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 3, upcast(1 => step, 1 => step, 2 => step))]
    Opened,
    #[event(version = 2, upcast(1 => step), upcast_from(1 => OpenedV1))]
    Closed,
}

fn main() {}
