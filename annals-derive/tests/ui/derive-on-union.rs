use annals::{Aggregate, Command, Event};

#[derive(Event)]
union EventUnion {
    a: u32,
}

#[derive(Command)]
union CommandUnion {
    a: u32,
}

#[derive(Aggregate)]
#[aggregate(event = EventUnion, command = CommandUnion, error = std::io::Error)]
union AggregateUnion {
    a: u32,
}

fn main() {}
