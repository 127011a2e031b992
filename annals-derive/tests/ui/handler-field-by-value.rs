use annals::{Aggregate, Command, Event};
use serde::{Deserialize, Serialize};

#[derive(Debug)]
struct AccountError;

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

impl std::error::Error for AccountError {}

#[derive(Serialize, Deserialize, Event)]
#[event(apply = Account)]
enum AccountEvent {
    Deposited { amount: u64 },
}

#[derive(Clone, Default, Aggregate)]
#[aggregate(event = AccountEvent, command = AccountCommand, error = AccountError)]
struct Account {
    balance: u64,
}

#[derive(Command)]
#[command(aggregate = Account)]
enum AccountCommand {
    Deposit { amount: u64 },
}

impl Account {
    fn deposited(&mut self, amount: &u64) {
        self.balance += amount;
    }

    fn deposit(&self, amount: u64) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(vec![AccountEvent::Deposited { amount }])
    }
}

fn main() {}
