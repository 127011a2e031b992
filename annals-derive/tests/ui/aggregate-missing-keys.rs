use annals::Aggregate;

#[derive(Clone, Default, Aggregate)]
#[aggregate(name = "account")]
struct Account;

fn main() {}
