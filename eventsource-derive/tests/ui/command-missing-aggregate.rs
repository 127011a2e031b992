use eventsource::Command;

#[derive(Command)]
enum AccountCommand {
    Open,
}

fn main() {}
