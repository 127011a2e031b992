//! Dead letters: where a consumer parks the messages it cannot handle, and what a parked
//! message carries.
//!
//! A consumer parks a message by publishing it to `<prefix>.<consumer name>` (default prefix
//! [`DEFAULT_DEAD_LETTER_PREFIX`]), a subject stored by the dead-letter stream (default
//! [`DEFAULT_DEAD_LETTER_STREAM`], which the consumer creates on start with the subjects
//! `<prefix>.>` when it does not exist). Only then is the original acknowledged (terminated),
//! so a message is never lost between the two: a crash in between parks it twice at most, and
//! JetStream drops the second copy as a duplicate (its `Nats-Msg-Id` is
//! `<consumer>/<stream>/<sequence>`) within the dead-letter stream's duplicate window.
//!
//! The dead letter's body is the original's, byte for byte. Its headers are the original's
//! (less the `Nats-` ones, which would steer the publish: an expected stream or sequence),
//! plus those of [`header`]. To replay a fixed event, publish the body with the original
//! headers and `Nats-Msg-Id` set to `Annals-Dead-Event-Id`.
//!
//! The dead-letter subjects must belong to no other stream: a consumer whose dead-letter
//! stream cannot be created for that reason stops at start with
//! [`ConsumerError::DeadLetterStream`].

use async_nats::header::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, stream};

use super::error::{ConsumerError, Parked};

/// The stream dead letters go to unless configured otherwise: `ANNALS_DEAD_LETTERS`.
pub const DEFAULT_DEAD_LETTER_STREAM: &str = "ANNALS_DEAD_LETTERS";

/// The prefix of dead-letter subjects unless configured otherwise: `annals.dead`, so that
/// consumer `billing` parks on `annals.dead.billing`.
pub const DEFAULT_DEAD_LETTER_PREFIX: &str = "annals.dead";

/// The longest `Annals-Dead-Error` value, in characters; a longer error is cut.
const MAX_ERROR_CHARS: usize = 4096;

/// The headers a consumer adds to a dead letter.
pub mod header {
    /// The consumer that parked it.
    pub const CONSUMER: &str = "Annals-Dead-Consumer";
    /// The subject the original was published on.
    pub const SUBJECT: &str = "Annals-Dead-Subject";
    /// The stream that stores the original.
    pub const STREAM: &str = "Annals-Dead-Stream";
    /// The original's sequence number in that stream.
    pub const SEQUENCE: &str = "Annals-Dead-Sequence";
    /// The event id the original's `Nats-Msg-Id` names, when it is a UUID.
    pub const EVENT_ID: &str = "Annals-Dead-Event-Id";
    /// Why it was parked: the [`Parked`](crate::consumer::Parked) error as text (control
    /// characters replaced, cut to 4096 characters).
    pub const ERROR: &str = "Annals-Dead-Error";
    /// Set, to the original body's size in bytes, when the body was left out because the
    /// dead letter would have exceeded the server's maximum payload. The original stays in
    /// its stream, at the sequence [`SEQUENCE`] names, for as long as its retention keeps it.
    pub const BODY_OMITTED: &str = "Annals-Dead-Body-Omitted";
}

/// Where a consumer parks messages: a stream and a subject prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetters {
    /// The stream that stores dead letters.
    pub stream: String,
    /// The prefix of the subject: a consumer parks on `<prefix>.<consumer name>`.
    pub prefix: String,
}

impl Default for DeadLetters {
    /// [`DEFAULT_DEAD_LETTER_STREAM`] and [`DEFAULT_DEAD_LETTER_PREFIX`].
    fn default() -> Self {
        DeadLetters {
            stream: DEFAULT_DEAD_LETTER_STREAM.to_owned(),
            prefix: DEFAULT_DEAD_LETTER_PREFIX.to_owned(),
        }
    }
}

impl DeadLetters {
    /// The subject `consumer` parks on.
    pub fn subject(&self, consumer: &str) -> String {
        format!("{}.{consumer}", self.prefix)
    }

    /// Creates the stream if it does not exist, and checks that it stores `consumer`'s
    /// subject.
    pub(crate) async fn ensure(
        &self,
        js: &jetstream::Context,
        consumer: &str,
    ) -> Result<(), ConsumerError> {
        let subject = self.subject(consumer);
        let failed = |reason: String| ConsumerError::DeadLetterStream {
            consumer: consumer.to_owned(),
            stream: self.stream.clone(),
            subject: subject.clone(),
            reason,
        };
        let stream = js
            .get_or_create_stream(stream::Config {
                name: self.stream.clone(),
                subjects: vec![format!("{}.>", self.prefix)],
                description: Some("Messages annals consumers could not handle".to_owned()),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                use async_nats::jetstream::context::CreateStreamErrorKind as Kind;
                use async_nats::jetstream::ErrorCode;
                match e.kind() {
                    // What starting again cannot change: a name JetStream refuses, subjects
                    // another stream has.
                    Kind::EmptyStreamName | Kind::InvalidStreamName => failed(e.to_string()),
                    Kind::JetStream(api)
                        if api.error_code() == ErrorCode::STREAM_SUBJECT_OVERLAP =>
                    {
                        failed(e.to_string())
                    }
                    // NATS or JetStream away for a while: a run starts again.
                    _ => ConsumerError::Setup {
                        consumer: consumer.to_owned(),
                        stream: self.stream.clone(),
                        source: e.into(),
                    },
                }
            })?;
        let subjects = &stream.cached_info().config.subjects;
        if !subjects
            .iter()
            .any(|filter| subject_matches(filter, &subject))
        {
            return Err(failed(format!(
                "the stream exists and stores only {subjects:?}"
            )));
        }
        Ok(())
    }

    /// Publishes `message` as a dead letter of `parked.consumer`, and waits until the stream
    /// stored it.
    pub(crate) async fn park(
        &self,
        js: &jetstream::Context,
        message: &async_nats::Message,
        parked: &Parked,
    ) -> Result<(), async_nats::Error> {
        let subject = self.subject(&parked.consumer);
        let headers = dead_letter_headers(message.headers.as_ref(), parked);
        let stored = match self
            .publish(js, &subject, headers.clone(), message.payload.clone())
            .await
        {
            Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                let mut headers = headers;
                headers.insert(
                    header::BODY_OMITTED,
                    message.payload.len().to_string().as_str(),
                );
                tracing::warn!(
                    consumer = %parked.consumer,
                    stream = %parked.message.stream,
                    sequence = parked.message.sequence,
                    size = message.payload.len(),
                    "the dead letter is too large for the server: parked without its body"
                );
                self.publish(js, &subject, headers, bytes::Bytes::new())
                    .await?
            }
            other => other?,
        };
        if stored.stream != self.stream {
            return Err(format!(
                "the dead letter was stored by stream `{}`, not `{}`",
                stored.stream, self.stream
            )
            .into());
        }
        Ok(())
    }

    async fn publish(
        &self,
        js: &jetstream::Context,
        subject: &str,
        headers: HeaderMap,
        payload: bytes::Bytes,
    ) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
        js.publish_with_headers(subject.to_owned(), headers, payload)
            .await?
            .await
    }
}

/// The original's headers, less its `Nats-` ones, with the dead letter's.
fn dead_letter_headers(original: Option<&HeaderMap>, parked: &Parked) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, values) in original.into_iter().flat_map(HeaderMap::iter) {
        let text: &str = name.as_ref();
        if text
            .get(..5)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("nats-"))
        {
            continue;
        }
        for value in values {
            headers.append(name.clone(), value.clone());
        }
    }
    let at = &parked.message;
    headers.insert(
        "Nats-Msg-Id",
        format!("{}/{}/{}", parked.consumer, at.stream, at.sequence).as_str(),
    );
    headers.insert(header::CONSUMER, parked.consumer.as_str());
    headers.insert(header::SUBJECT, at.subject.as_str());
    headers.insert(header::STREAM, at.stream.as_str());
    headers.insert(header::SEQUENCE, at.sequence.to_string().as_str());
    if let Some(id) = at.event_id {
        headers.insert(header::EVENT_ID, id.to_string().as_str());
    }
    let error: String = parked
        .to_string()
        .chars()
        .take(MAX_ERROR_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    headers.insert(header::ERROR, error.as_str());
    headers
}

/// Whether subject filter `filter` (with `*` for one token and `>` for the rest) covers
/// `subject`.
pub(crate) fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in filter.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (token, Some(actual)) if token == actual => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn filters_match_as_jetstream_does() {
        assert!(subject_matches("annals.dead.>", "annals.dead.billing"));
        assert!(subject_matches("annals.*.billing", "annals.dead.billing"));
        assert!(subject_matches(
            "annals.dead.billing",
            "annals.dead.billing"
        ));
        assert!(!subject_matches("annals.dead.>", "annals.dead"));
        assert!(!subject_matches("annals.dead", "annals.dead.billing"));
        assert!(!subject_matches("annals.*", "annals.dead.billing"));
        assert!(!subject_matches("other.>", "annals.dead.billing"));
    }
}
