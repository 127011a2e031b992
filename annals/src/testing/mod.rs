//! Testing helpers (feature `testing`): a given/when/then fixture for aggregates and the
//! conformance suite every [`EventStore`](crate::EventStore) backend runs.
//!
//! ```
//! # #[cfg(feature = "derive")] {
//! use annals::prelude::*;
//! use annals::testing::given;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
//! #[event(apply = Counter)]
//! enum CounterEvent { Added { n: u32 } }
//!
//! #[derive(Debug, Command)]
//! #[command(aggregate = Counter)]
//! enum CounterCommand { Add { n: u32 } }
//!
//! #[derive(Debug, PartialEq, thiserror::Error)]
//! #[error("the counter is full")]
//! struct Full;
//!
//! #[derive(Debug, Clone, Default, Aggregate)]
//! #[aggregate(event = CounterEvent, command = CounterCommand, error = Full)]
//! struct Counter { total: u32 }
//!
//! impl Counter {
//!     fn added(&mut self, n: &u32) { self.total += n; }
//!     fn add(&self, n: &u32) -> Result<Vec<CounterEvent>, Full> {
//!         if self.total + n > 10 { return Err(Full); }
//!         Ok(vec![CounterEvent::Added { n: *n }])
//!     }
//! }
//!
//! given::<Counter>([CounterEvent::Added { n: 4 }])
//!     .when(CounterCommand::Add { n: 5 })
//!     .then_events([CounterEvent::Added { n: 5 }]);
//! given::<Counter>([CounterEvent::Added { n: 8 }])
//!     .when(CounterCommand::Add { n: 5 })
//!     .then_error(Full);
//! # }
//! ```

// Test helpers report a failed expectation by panicking, as `assert!` does.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod conformance;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::aggregate::Aggregate;
use crate::event::Event;

/// Starts a fixture: the aggregate `A` after `events`, with default services.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A>
where
    A::Services: Default,
{
    Given::new(A::Services::default()).and(events)
}

/// An aggregate in a known state, about to receive a command.
#[must_use = "a fixture does nothing until `when` runs a command"]
pub struct Given<A: Aggregate> {
    state: A,
    services: A::Services,
}

impl<A: Aggregate> Given<A> {
    /// A new aggregate whose handlers receive `services`.
    pub fn new(services: A::Services) -> Self {
        Given {
            state: A::default(),
            services,
        }
    }

    /// Replaces the services handlers receive.
    pub fn with_services(mut self, services: A::Services) -> Self {
        self.services = services;
        self
    }

    /// Applies more past events.
    pub fn and(mut self, events: impl IntoIterator<Item = A::Event>) -> Self {
        for event in events {
            self.state.apply(&event);
        }
        self
    }

    /// The state the past events produced.
    pub fn state(&self) -> &A {
        &self.state
    }

    /// Runs `command` on the state, waiting for an async handler on the current thread.
    ///
    /// A handler that needs a Tokio runtime (its timers or I/O) should be tested with
    /// [`when_async`](Given::when_async) inside `#[tokio::test]` instead.
    pub fn when(self, command: A::Command) -> Then<A> {
        block_on(self.when_async(command))
    }

    /// Runs `command` on the state.
    pub async fn when_async(self, command: A::Command) -> Then<A> {
        let result = self.state.handle(&command, &self.services).await;
        Then {
            state: self.state,
            result,
        }
    }
}

/// What a command did: the events it produced or the error it returned.
pub struct Then<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> Then<A> {
    /// Asserts the command produced exactly `expected`, and that each of them survives a trip
    /// through its stored form (encode, then decode).
    #[track_caller]
    pub fn then_events(self, expected: impl IntoIterator<Item = A::Event>) -> Self
    where
        A::Event: PartialEq + Debug,
        A::Error: Debug,
    {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match &self.result {
            Ok(events) => {
                assert_eq!(
                    events, &expected,
                    "the command produced other events than expected"
                );
                for event in events {
                    assert_round_trip(event);
                }
            }
            Err(error) => panic!("expected events {expected:?}, but the command failed: {error:?}"),
        }
        self
    }

    /// Asserts the command was rejected with `expected`.
    #[track_caller]
    pub fn then_error(self, expected: A::Error)
    where
        A::Event: Debug,
        A::Error: PartialEq + Debug,
    {
        match &self.result {
            Ok(events) => {
                panic!("expected error {expected:?}, but the command produced {events:?}")
            }
            Err(error) => assert_eq!(error, &expected, "the command failed with another error"),
        }
    }

    /// Asserts the command was rejected with an error that satisfies `check`.
    #[track_caller]
    pub fn then_error_matches(self, check: impl FnOnce(&A::Error) -> bool)
    where
        A::Event: Debug,
        A::Error: Debug,
    {
        match &self.result {
            Ok(events) => panic!("expected an error, but the command produced {events:?}"),
            Err(error) => assert!(
                check(error),
                "the command failed with an unexpected error: {error:?}"
            ),
        }
    }

    /// Asserts the command succeeded and produced no events.
    #[track_caller]
    pub fn then_nothing(self)
    where
        A::Event: Debug,
        A::Error: Debug,
    {
        match &self.result {
            Ok(events) => assert!(
                events.is_empty(),
                "expected no events, but the command produced {events:?}"
            ),
            Err(error) => panic!("expected no events, but the command failed: {error:?}"),
        }
    }

    /// Applies the produced events to the state and hands the result to `check`.
    #[track_caller]
    pub fn then_state(mut self, check: impl FnOnce(&A)) -> Self
    where
        A::Error: Debug,
    {
        match &self.result {
            Ok(events) => {
                for event in events {
                    self.state.apply(event);
                }
                check(&self.state);
            }
            Err(error) => panic!("expected a new state, but the command failed: {error:?}"),
        }
        self
    }

    /// The command's result, for checks of your own.
    pub fn into_result(self) -> Result<Vec<A::Event>, A::Error> {
        self.result
    }
}

/// Asserts that `event` encodes and decodes back to itself.
#[track_caller]
pub fn assert_round_trip<E: Event + PartialEq + Debug>(event: &E) {
    let payload = event
        .encode()
        .unwrap_or_else(|e| panic!("event {event:?} does not encode: {e}"));
    let decoded = E::decode(event.event_type(), event.schema_version(), payload.as_str())
        .unwrap_or_else(|e| {
            panic!("event {event:?} does not decode from its own body {payload}: {e}")
        });
    assert_eq!(
        decoded.as_ref(),
        Some(event),
        "event changes through its stored form {payload}"
    );
}

/// Renders the stored form of `events` (type name, schema version and JSON body of each) as
/// text, for a snapshot test that fails when a change would alter stored data:
///
/// ```
/// # #[cfg(feature = "derive")] {
/// # use annals::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// #[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
/// enum AccountEvent {
///     #[event(version = 2)]
///     Opened { owner: String },
///     Closed,
/// }
///
/// let stored = annals::testing::stored_form(&[
///     AccountEvent::Opened { owner: "ann".into() },
///     AccountEvent::Closed,
/// ]);
/// assert_eq!(stored, "Opened (schema version 2)\n{\n  \"owner\": \"ann\"\n}\n\nClosed (schema version 1)\nnull\n\n");
/// // In a test: insta::assert_snapshot!(stored);
/// # }
/// ```
///
/// Each event must also survive the trip back through its decoder, so a body that encodes
/// but no longer decodes fails here too.
#[track_caller]
pub fn stored_form<E: Event + PartialEq + Debug>(events: &[E]) -> String {
    let mut out = String::new();
    for event in events {
        assert_round_trip(event);
        let payload = event
            .encode()
            .unwrap_or_else(|e| panic!("event {event:?} does not encode: {e}"));
        let body = payload.to_value().expect("an encoded body is JSON");
        let pretty = serde_json::to_string_pretty(&body).expect("a JSON value prints");
        out.push_str(&format!(
            "{} (schema version {})\n{}\n\n",
            event.event_type(),
            event.schema_version(),
            pretty
        ));
    }
    out
}

/// Polls `future` to completion on the current thread.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}
