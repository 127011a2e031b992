//! The orders service: an order is placed, waits for stock, is paid and shipped, or cancelled.

use std::fmt;

use annals::prelude::*;
use serde::{Deserialize, Serialize};

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Order)]
pub enum OrderEvent {
    /// A customer placed the order.
    #[event(name = "order.placed")]
    Placed {
        /// The customer.
        customer: String,
        /// The product.
        sku: String,
        /// How many.
        quantity: u32,
    },
    /// Inventory set the stock aside.
    #[event(name = "order.stock-reserved")]
    StockReserved,
    /// The customer paid.
    #[event(name = "order.paid")]
    Paid {
        /// In cents.
        amount: u64,
    },
    /// The order left the warehouse.
    #[event(name = "order.shipped")]
    Shipped,
    /// The order was cancelled.
    #[event(name = "order.cancelled")]
    Cancelled {
        /// Why.
        reason: String,
        /// The product ordered, whose reservation (if any) the inventory releases.
        sku: String,
    },
}

/// What is asked of an order.
#[derive(Debug, Clone, Command)]
#[command(aggregate = Order)]
pub enum OrderCommand {
    /// Place the order.
    Place {
        /// The customer.
        customer: String,
        /// The product.
        sku: String,
        /// How many.
        quantity: u32,
    },
    /// Record that inventory reserved the stock (sent by the order policy).
    ConfirmReservation,
    /// Pay.
    Pay {
        /// In cents.
        amount: u64,
    },
    /// Ship; only a reserved and paid order ships.
    Ship,
    /// Cancel; a shipped order cannot be.
    Cancel {
        /// Why.
        reason: String,
    },
}

/// Where an order is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Not placed yet.
    #[default]
    New,
    /// Placed, waiting for stock.
    Placed,
    /// Stock reserved, waiting for payment.
    Reserved,
    /// Reserved and paid.
    Paid,
    /// Shipped.
    Shipped,
    /// Cancelled.
    Cancelled,
}

/// Why an order refused a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderError {
    /// The order's status when the command came.
    pub status: OrderStatus,
    /// What was asked.
    pub command: &'static str,
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} an order that is {:?}",
            self.command, self.status
        )
    }
}

impl std::error::Error for OrderError {}

/// An order's state.
#[derive(Debug, Clone, Default, PartialEq, Aggregate)]
#[aggregate(name = "order", event = OrderEvent, command = OrderCommand, error = OrderError)]
pub struct Order {
    /// Where it is.
    pub status: OrderStatus,
    /// The product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

type Decision = Result<Vec<OrderEvent>, OrderError>;

impl Order {
    fn placed(&mut self, _customer: &str, sku: &str, quantity: &u32) {
        self.status = OrderStatus::Placed;
        self.sku = sku.to_owned();
        self.quantity = *quantity;
    }

    fn stock_reserved(&mut self) {
        self.status = OrderStatus::Reserved;
    }

    fn paid(&mut self, _amount: &u64) {
        self.status = OrderStatus::Paid;
    }

    fn shipped(&mut self) {
        self.status = OrderStatus::Shipped;
    }

    fn cancelled(&mut self, _reason: &str, _sku: &str) {
        self.status = OrderStatus::Cancelled;
    }

    fn refuse(&self, command: &'static str) -> Decision {
        Err(OrderError {
            status: self.status,
            command,
        })
    }

    fn place(&self, customer: &str, sku: &str, quantity: &u32) -> Decision {
        match self.status {
            OrderStatus::New => Ok(vec![OrderEvent::Placed {
                customer: customer.to_owned(),
                sku: sku.to_owned(),
                quantity: *quantity,
            }]),
            _ => self.refuse("place"),
        }
    }

    fn confirm_reservation(&self) -> Decision {
        match self.status {
            OrderStatus::Placed => Ok(vec![OrderEvent::StockReserved]),
            // A reservation that arrives after a cancellation changes nothing here; the
            // inventory policy releases it.
            OrderStatus::Cancelled => Ok(vec![]),
            _ => self.refuse("confirm the reservation of"),
        }
    }

    fn pay(&self, amount: &u64) -> Decision {
        match self.status {
            OrderStatus::Placed | OrderStatus::Reserved => {
                Ok(vec![OrderEvent::Paid { amount: *amount }])
            }
            _ => self.refuse("pay"),
        }
    }

    fn ship(&self) -> Decision {
        match self.status {
            OrderStatus::Paid => Ok(vec![OrderEvent::Shipped]),
            _ => self.refuse("ship"),
        }
    }

    fn cancel(&self, reason: &str) -> Decision {
        match self.status {
            OrderStatus::Cancelled => Ok(vec![]),
            OrderStatus::Shipped | OrderStatus::New => self.refuse("cancel"),
            _ => Ok(vec![OrderEvent::Cancelled {
                reason: reason.to_owned(),
                sku: self.sku.clone(),
            }]),
        }
    }
}
