//! The JetStream stream a relay publishes to: created when it is missing, compared with the
//! relay's configuration when it exists.

use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};
use async_nats::jetstream::stream;
use async_nats::jetstream::{self, ErrorCode};

use super::config::RelayConfig;
use super::error::{RelayError, StreamDifference, StreamMismatch};

/// Makes sure the stream of `config` exists as configured: creates it when it is missing,
/// and otherwise returns [`RelayError::StreamMismatch`] listing what differs.
pub(crate) async fn ensure_stream(
    jetstream: &jetstream::Context,
    config: &RelayConfig,
) -> Result<(), RelayError> {
    let wanted = config.stream_config();
    let unavailable =
        |source: Box<dyn std::error::Error + Send + Sync>| RelayError::StreamUnavailable {
            relay: config.name().to_owned(),
            stream: wanted.name.clone(),
            source,
        };
    // Two rounds: another relay may create the stream between our look and our create.
    for _ in 0..2 {
        match jetstream.get_stream(&wanted.name).await {
            Ok(existing) => {
                let differences = differences(&wanted, &existing.cached_info().config);
                if differences.is_empty() {
                    return Ok(());
                }
                return Err(RelayError::StreamMismatch {
                    relay: config.name().to_owned(),
                    mismatch: StreamMismatch {
                        stream: wanted.name.clone(),
                        differences,
                    },
                });
            }
            Err(error) if is_not_found(&error.kind()) => {}
            Err(error) => return Err(unavailable(Box::new(error))),
        }
        match jetstream.create_stream(wanted.clone()).await {
            Ok(_) => {
                tracing::info!(relay = config.name(), stream = %wanted.name,
                    subjects = ?wanted.subjects, replicas = wanted.num_replicas,
                    "created the JetStream stream");
                return Ok(());
            }
            Err(error) if is_name_taken(&error.kind()) => {}
            Err(error) => return Err(unavailable(Box::new(error))),
        }
    }
    Err(unavailable(
        "the stream was neither found nor could it be created".into(),
    ))
}

fn is_not_found(kind: &GetStreamErrorKind) -> bool {
    matches!(kind, GetStreamErrorKind::JetStream(error)
        if error.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

fn is_name_taken(kind: &CreateStreamErrorKind) -> bool {
    matches!(kind, CreateStreamErrorKind::JetStream(error)
        if error.error_code() == ErrorCode::STREAM_NAME_EXIST)
}

/// What differs between the stream the relay wants and the one on the server, setting by
/// setting; empty when they agree.
fn differences(wanted: &stream::Config, server: &stream::Config) -> Vec<StreamDifference> {
    let mut differences = Vec::new();
    let mut compare = |setting: &'static str, configured: String, actual: String| {
        if configured != actual {
            differences.push(StreamDifference {
                setting,
                configured,
                server: actual,
            });
        }
    };
    let subjects = |config: &stream::Config| {
        let mut subjects = config.subjects.clone();
        subjects.sort();
        subjects.dedup();
        format!("[{}]", subjects.join(", "))
    };
    compare("subjects", subjects(wanted), subjects(server));
    compare(
        "replicas",
        wanted.num_replicas.max(1).to_string(),
        server.num_replicas.max(1).to_string(),
    );
    compare(
        "retention",
        format!("{:?}", wanted.retention).to_lowercase(),
        format!("{:?}", server.retention).to_lowercase(),
    );
    compare(
        "storage",
        format!("{:?}", wanted.storage).to_lowercase(),
        format!("{:?}", server.storage).to_lowercase(),
    );
    compare(
        "duplicate window",
        duration(wanted.duplicate_window),
        duration(server.duplicate_window),
    );
    compare("max age", age(wanted.max_age), age(server.max_age));
    compare(
        "max bytes",
        bytes(wanted.max_bytes),
        bytes(server.max_bytes),
    );
    differences
}

fn duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

fn age(age: Duration) -> String {
    if age.is_zero() {
        "unlimited".to_owned()
    } else {
        duration(age)
    }
}

fn bytes(bytes: i64) -> String {
    if bytes < 0 {
        "unlimited".to_owned()
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::SubjectMapping;

    #[test]
    fn each_difference_is_named_with_both_values() {
        let config = RelayConfig::new("ORDERS", SubjectMapping::new("orders")).with_replicas(3);
        let wanted = config.stream_config();
        let server = stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["other.>".into()],
            num_replicas: 1,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        let mismatch = StreamMismatch {
            stream: "ORDERS".into(),
            differences: differences(&wanted, &server),
        };
        assert_eq!(
            mismatch.to_string(),
            "stream `ORDERS`: subjects: configured [orders.>], server has [other.>]; \
             replicas: configured 3, server has 1; \
             max bytes: configured unlimited, server has 0"
        );
        assert!(differences(&wanted, &wanted).is_empty());
    }
}
