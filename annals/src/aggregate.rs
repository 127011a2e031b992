//! The [`Aggregate`] trait: a consistency boundary that decides on commands and evolves by events.

use std::future::Future;

use crate::event::{Event, Payload};
use crate::stream::Version;

/// An event-sourced aggregate: state rebuilt from its events, deciding on commands.
///
/// Usually derived: `#[derive(Aggregate)]` on the state struct names the types, and
/// `#[derive(Event)]` / `#[derive(Command)]` on the enums generate the [`Apply`](crate::Apply)
/// and [`Handle`] dispatch this trait delegates to. It can also be implemented by hand.
///
/// The state is plain data: it is `Clone`, so a [`Repository`](crate::Repository) can keep the
/// latest state of recently used aggregates and read only newer events before the next command.
///
/// The state starts as [`Default`] and changes only through [`apply`](Aggregate::apply);
/// [`handle`](Aggregate::handle) reads the state and returns the events a command produces,
/// or the aggregate's error when the command is rejected.
pub trait Aggregate: Clone + Default + Send + Sync + Sized + 'static {
    /// The aggregate's type name, e.g. `"bank-account"`: the prefix of its stream ids.
    const TYPE: &'static str;

    /// The event enum.
    type Event: Event;

    /// The command enum.
    type Command: Send + Sync + 'static;

    /// The error a rejected command returns.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Services injected into command handlers (`()` when there are none).
    type Services: Send + Sync + 'static;

    /// Store a snapshot of the state every this many events; 0 (the default) never does.
    ///
    /// `#[aggregate(snapshot_every = N)]` sets it, and implements the two snapshot methods with
    /// the state's own `Serialize`/`Deserialize`.
    const SNAPSHOT_EVERY: u64 = 0;

    /// The schema version of the snapshot encoding. Bump it when the state's shape changes:
    /// snapshots of other versions are ignored and the stream is replayed instead.
    const SNAPSHOT_VERSION: u32 = 1;

    /// Encodes the state for a snapshot; `None` (the default) when the aggregate takes none.
    fn encode_snapshot(&self) -> Option<Result<Payload, serde_json::Error>> {
        None
    }

    /// Decodes a snapshot written by [`encode_snapshot`](Aggregate::encode_snapshot).
    fn decode_snapshot(state: &Payload) -> Option<Result<Self, serde_json::Error>> {
        let _ = state;
        None
    }

    /// The name of `command`'s kind, for spans and logs: `#[derive(Command)]` names each
    /// variant; by default, the command type's name.
    fn command_name(command: &Self::Command) -> &'static str {
        let _ = command;
        std::any::type_name::<Self::Command>()
    }

    /// Evolves the state by one event. Never fails: an event is a fact that already happened.
    fn apply(&mut self, event: &Self::Event);

    /// Decides on a command against the current state, returning the events to append.
    ///
    /// Returning no events is fine: nothing is appended. A handler may run again with the same
    /// command when a concurrent writer got in first, so it must not have side effects beyond
    /// reading `services`.
    fn handle(
        &self,
        command: &Self::Command,
        services: &Self::Services,
    ) -> impl Future<Output = Result<Vec<Self::Event>, Self::Error>> + Send;
}

/// Dispatches a command onto an aggregate's handler methods: `#[derive(Command)]` with
/// `#[command(aggregate = A)]` implements it.
pub trait Handle<C>: Aggregate {
    /// The name of `command`'s kind (the derive gives each variant's name); by default the
    /// command type's name. See [`Aggregate::command_name`].
    fn command_name(command: &C) -> &'static str {
        let _ = command;
        std::any::type_name::<C>()
    }

    /// Decides on `command`; see [`Aggregate::handle`].
    fn handle(
        &self,
        command: &C,
        services: &Self::Services,
    ) -> impl Future<Output = Result<Vec<Self::Event>, Self::Error>> + Send;
}

/// An aggregate's state together with the stream version it reflects.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// The version of the last event applied (0 for a new aggregate).
    pub version: Version,
}
