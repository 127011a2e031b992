use annals::Command;

#[derive(Command)]
#[command(aggregate = Account)]
struct Open {
    owner: String,
}

fn main() {}
