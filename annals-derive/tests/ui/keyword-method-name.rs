use annals::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(apply = Shipment)]
enum ShipmentEvent {
    Crate,
    #[event(apply = crated)]
    Super,
}

struct Shipment;

impl Shipment {
    fn crated(&mut self) {}
}

fn main() {}
