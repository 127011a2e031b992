//! The inventory service: stock per product, reserved for orders and released again.

use std::collections::BTreeMap;
use std::fmt;

use annals::prelude::*;
use serde::{Deserialize, Serialize};

/// What happened to a product's stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Stock)]
pub enum StockEvent {
    /// Goods arrived.
    #[event(name = "stock.restocked")]
    Restocked {
        /// How many.
        quantity: u32,
    },
    /// Stock was set aside for an order.
    #[event(name = "stock.reserved")]
    Reserved {
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
    /// An order asked for more than is available.
    #[event(name = "stock.reservation-rejected")]
    ReservationRejected {
        /// The order.
        order_id: String,
        /// How many it asked for.
        quantity: u32,
        /// How many were available.
        available: u32,
    },
    /// An order's reservation was given back.
    #[event(name = "stock.released")]
    Released {
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
}

/// What is asked of a product's stock.
#[derive(Debug, Clone, Command)]
#[command(aggregate = Stock)]
pub enum StockCommand {
    /// Goods arrived.
    Restock {
        /// How many.
        quantity: u32,
    },
    /// Set stock aside for an order (sent by the inventory policy).
    Reserve {
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
    /// Give an order's reservation back (sent by the inventory policy).
    Release {
        /// The order.
        order_id: String,
    },
}

/// Why the stock refused a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockError {
    /// A restock of nothing.
    NothingToRestock,
}

impl fmt::Display for StockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a restock needs a quantity")
    }
}

impl std::error::Error for StockError {}

/// A product's stock.
#[derive(Debug, Clone, Default, PartialEq, Aggregate)]
#[aggregate(name = "stock", event = StockEvent, command = StockCommand, error = StockError)]
pub struct Stock {
    /// Available, not reserved.
    pub available: u32,
    /// Reservations by order.
    pub reserved: BTreeMap<String, u32>,
}

type Decision = Result<Vec<StockEvent>, StockError>;

impl Stock {
    fn restocked(&mut self, quantity: &u32) {
        self.available += quantity;
    }

    fn reserved(&mut self, order_id: &str, quantity: &u32) {
        self.available -= quantity;
        self.reserved.insert(order_id.to_owned(), *quantity);
    }

    fn reservation_rejected(&mut self, _order_id: &str, _quantity: &u32, _available: &u32) {}

    fn released(&mut self, order_id: &str, quantity: &u32) {
        self.available += quantity;
        self.reserved.remove(order_id);
    }

    fn restock(&self, quantity: &u32) -> Decision {
        if *quantity == 0 {
            return Err(StockError::NothingToRestock);
        }
        Ok(vec![StockEvent::Restocked {
            quantity: *quantity,
        }])
    }

    fn reserve(&self, order_id: &str, quantity: &u32) -> Decision {
        if self.reserved.contains_key(order_id) {
            return Ok(vec![]);
        }
        if *quantity > self.available {
            return Ok(vec![StockEvent::ReservationRejected {
                order_id: order_id.to_owned(),
                quantity: *quantity,
                available: self.available,
            }]);
        }
        Ok(vec![StockEvent::Reserved {
            order_id: order_id.to_owned(),
            quantity: *quantity,
        }])
    }

    fn release(&self, order_id: &str) -> Decision {
        Ok(match self.reserved.get(order_id) {
            Some(quantity) => vec![StockEvent::Released {
                order_id: order_id.to_owned(),
                quantity: *quantity,
            }],
            None => vec![],
        })
    }
}
