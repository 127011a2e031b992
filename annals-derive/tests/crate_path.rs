//! `crate = ".."` points the generated code at a re-export of `annals`.

mod reexport {
    pub(crate) use ::annals as es;
}

use reexport::es::{Aggregate, Command, Event, Handle};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(crate = "crate::reexport::es", apply = Counter)]
enum CounterEvent {
    Added(u64),
}

#[derive(Debug, Command)]
#[command(crate = "crate::reexport::es", aggregate = Counter)]
enum CounterCommand {
    Add(u64),
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct CounterError;

#[derive(Debug, Clone, Default, Aggregate)]
#[aggregate(
    crate = "crate::reexport::es",
    event = CounterEvent,
    command = CounterCommand,
    error = CounterError
)]
struct Counter {
    total: u64,
}

impl Counter {
    fn added(&mut self, n: &u64) {
        self.total += n;
    }

    fn add(&self, n: &u64) -> Result<Vec<CounterEvent>, CounterError> {
        Ok(vec![CounterEvent::Added(*n)])
    }
}

#[tokio::test]
async fn all_three_derives_use_the_given_crate_path() {
    let mut counter = Counter::default();
    let events = Handle::handle(&counter, &CounterCommand::Add(3), &())
        .await
        .unwrap();
    assert_eq!(events[0].encode().unwrap().as_str(), "3");
    Aggregate::apply(&mut counter, &events[0]);
    assert_eq!(counter.total, 3);
    assert_eq!(Counter::TYPE, "counter");
}
