use eventsource::Aggregate;

#[derive(Default, Aggregate)]
#[aggregate(name = "account")]
struct Account;

fn main() {}
