//! Audit metadata carried by every stored event: who caused it and which flow it belongs to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Metadata stored beside an event's payload.
///
/// The metadata given with a command is stamped on every event the command produces, so an
/// event can always be traced back to the request that caused it:
///
/// - `correlation_id` is shared by every event of one business flow, across aggregates and
///   services;
/// - `causation_id` is the id of the message (command or event) that directly caused this one;
/// - `actor` names the user or system on whose behalf it happened;
/// - `headers` hold anything else, as free-form string pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    /// The id shared by every message of one flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The id of the message that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The user or system on whose behalf the event was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Free-form string headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id.
    pub fn with_causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Sets the actor.
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Adds (or replaces) one header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        // Destructured, so a new field does not compile until it is counted here: the memory
        // store keeps no metadata for an event whose metadata is empty.
        let Metadata {
            correlation_id,
            causation_id,
            actor,
            headers,
        } = self;
        correlation_id.is_none() && causation_id.is_none() && actor.is_none() && headers.is_empty()
    }
}
