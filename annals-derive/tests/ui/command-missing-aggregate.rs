use annals::Command;

#[derive(Command)]
enum AccountCommand {
    Open,
}

fn main() {}
