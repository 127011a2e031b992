//! A call's appends as the append statements bind them: each stream's events column by
//! column, its expected version as a form and a number.

use std::borrow::Cow;

use annals::backend;
use annals::{ExpectedVersion, StoreError, StreamAppend};
use uuid::Uuid;

use super::insert::{InsertStatement, Numbering};
use crate::rows::signed;

/// The form of an [`ExpectedVersion`], bound as an `int4` code (the statements' `$2`); the
/// exact version, if any, is bound apart (`$3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum ExpectedForm {
    Any = 0,
    NoStream = 1,
    StreamExists = 2,
    Exact = 3,
}

impl ExpectedForm {
    /// The code bound as `$2`, which the statements compare with these codes.
    pub(crate) fn code(self) -> i32 {
        self as i32
    }
}

/// One stream's append, encoded as the append statements' parameters.
pub(crate) struct EncodedAppend<'a> {
    pub(crate) append: &'a StreamAppend,
    pub(crate) expected: ExpectedForm,
    /// The exact expected version, 0 for the other forms.
    pub(crate) expected_version: i64,
    pub(crate) ids: Vec<Uuid>,
    pub(crate) types: Vec<&'a str>,
    pub(crate) schema_versions: Vec<i32>,
    pub(crate) payloads: Vec<&'a str>,
    /// Empty metadata, nearly all of it, is the same `{}` for every event.
    pub(crate) metadata: Vec<Cow<'static, str>>,
}

impl EncodedAppend<'_> {
    /// Whether the append has events to write.
    pub(crate) fn writes(&self) -> bool {
        !self.ids.is_empty()
    }

    /// Whether the append writes exactly one event.
    pub(crate) fn single_event(&self) -> bool {
        self.ids.len() == 1
    }

    /// Where the insert statement numbers the events from, by the expected version. An
    /// expected version too large to number the events from (no stream gets there) goes to the
    /// statement that reads the version, and so to a conflict, instead of an integer overflow.
    pub(crate) fn numbering(&self) -> Numbering {
        let count = i64::try_from(self.ids.len()).unwrap_or(i64::MAX);
        if self.expected_version.checked_add(count).is_none() {
            return Numbering::Read;
        }
        match self.expected {
            ExpectedForm::Exact | ExpectedForm::NoStream => Numbering::Expected,
            ExpectedForm::Any | ExpectedForm::StreamExists => Numbering::Read,
        }
    }

    /// The insert statement that serves the append when it runs alone.
    pub(crate) fn insert_statement(&self) -> InsertStatement {
        InsertStatement {
            numbering: self.numbering(),
            single_event: self.single_event(),
        }
    }
}

/// Checks a call by the rules that need nothing stored ([`backend::check_call`]: a stream
/// named twice, an event id given twice) and encodes each stream's events.
pub(crate) fn encode(appends: &[StreamAppend]) -> Result<Vec<EncodedAppend<'_>>, StoreError> {
    backend::check_call(appends)?;
    appends
        .iter()
        .map(|append| {
            let rejected = |reason: String| StoreError::Rejected {
                stream: append.stream_id.clone(),
                reason,
            };
            let (expected, expected_version) = match append.expected {
                ExpectedVersion::Any => (ExpectedForm::Any, 0),
                ExpectedVersion::NoStream => (ExpectedForm::NoStream, 0),
                ExpectedVersion::StreamExists => (ExpectedForm::StreamExists, 0),
                ExpectedVersion::Exact(v) => (ExpectedForm::Exact, signed(v.0)),
            };
            let count = append.events.len();
            let mut encoded = EncodedAppend {
                append,
                expected,
                expected_version,
                ids: Vec::with_capacity(count),
                types: Vec::with_capacity(count),
                schema_versions: Vec::with_capacity(count),
                payloads: Vec::with_capacity(count),
                metadata: Vec::with_capacity(count),
            };
            for event in &append.events {
                let schema_version = i32::try_from(event.schema_version).map_err(|_| {
                    rejected(format!(
                        "schema version {} of event {} is larger than PostgreSQL's integer",
                        event.schema_version, event.event_id
                    ))
                })?;
                let metadata = if event.metadata.is_empty() {
                    Cow::Borrowed("{}")
                } else {
                    Cow::Owned(serde_json::to_string(&event.metadata).map_err(|e| {
                        rejected(format!(
                            "cannot encode the metadata of event {}: {e}",
                            event.event_id
                        ))
                    })?)
                };
                encoded.ids.push(event.event_id);
                encoded.types.push(&event.event_type);
                encoded.schema_versions.push(schema_version);
                encoded.payloads.push(event.payload.as_str());
                encoded.metadata.push(metadata);
            }
            Ok(encoded)
        })
        .collect()
}

/// The SQL condition that `version` matches the expected version: `$2` is the form's code, `$3`
/// the exact version.
pub(crate) fn expected_matches(version: &str) -> String {
    format!(
        "CASE $2::int4 \
             WHEN {no_stream} THEN {version} = 0 \
             WHEN {stream_exists} THEN {version} > 0 \
             WHEN {exact} THEN {version} = $3::int8 \
             ELSE true \
         END",
        no_stream = ExpectedForm::NoStream.code(),
        stream_exists = ExpectedForm::StreamExists.code(),
        exact = ExpectedForm::Exact.code(),
    )
}
