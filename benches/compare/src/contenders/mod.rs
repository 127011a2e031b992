//! The contenders: this framework, its peers and raw SQL, each implementing the same bank
//! account (Opened, Deposited, Withdrawn; Open, Deposit, Withdraw with the rule that the
//! balance may not go below 0) in its own idiom.

pub(crate) mod annals;
pub(crate) mod cqrs;
pub(crate) mod disintegrate;
pub(crate) mod esrs;
pub(crate) mod raw;
