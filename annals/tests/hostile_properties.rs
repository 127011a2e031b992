//! Property tests on hostile input: stream ids, stored metadata and stored event bodies of any
//! shape are accepted or refused with a typed error, never a panic.

use std::fmt;

use annals::prelude::*;
use annals::{DecodeError, InvalidStreamId, MAX_STREAM_ID_LEN};
use proptest::prelude::*;
use serde_json::Value;

// The "Evolving events" example of README.md, copied as a user would: the upcasters run on
// stored bodies of any shape.
#[allow(unreachable_pub)]
mod upcast {
    use serde_json::{json, Value};
    /// v1 called the holder `name`.
    pub fn opened_v1(mut body: Value) -> Result<Value, String> {
        let fields = body.as_object_mut().ok_or("an object")?;
        let name = fields.remove("name").ok_or("a `name`")?;
        fields.insert("owner".into(), name);
        Ok(body)
    }
    /// v2 had no overdraft limit.
    pub fn opened_v2(mut body: Value) -> Result<Value, String> {
        let fields = body.as_object_mut().ok_or("an object")?;
        fields.insert("overdraft_limit".into(), json!(0));
        Ok(body)
    }
}

/// `Withdrawn` v1 stored whole euros as a string: an ordinary, testable conversion.
#[derive(serde::Deserialize)]
struct WithdrawnV1 {
    euros: String,
}

impl TryFrom<WithdrawnV1> for AccountEvent {
    type Error = String;
    fn try_from(v1: WithdrawnV1) -> Result<Self, Self::Error> {
        let euros: u64 = v1
            .euros
            .parse()
            .map_err(|e| format!("euros {:?}: {e}", v1.euros))?;
        let cents = euros.checked_mul(100).ok_or("too many euros")?;
        Ok(AccountEvent::Withdrawn { cents })
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, Event)]
#[event(removed("AuditPinged"))] // old types that decode to "skip"
enum AccountEvent {
    #[event(version = 3, upcast(1 => upcast::opened_v1, 2 => upcast::opened_v2))]
    Opened { owner: String, overdraft_limit: u64 },
    #[event(name = "account.deposited", alias = "MoneyDeposited")] // renamed: old name still read
    Deposited { cents: u64 },
    #[event(version = 2, upcast_from(1 => WithdrawnV1))] // typed upcaster
    Withdrawn { cents: u64 },
}

/// The stored names `AccountEvent` reads, with the variant's current schema version and its
/// name as written now.
const KNOWN: &[(&str, u32, &str)] = &[
    ("Opened", 3, "Opened"),
    ("account.deposited", 1, "account.deposited"),
    ("MoneyDeposited", 1, "account.deposited"),
    ("Withdrawn", 2, "Withdrawn"),
];

/// An aggregate, for [`StreamId::for_aggregate`].
#[derive(Debug, Clone, Default, Aggregate)]
#[aggregate(name = "bank-account", event = CounterEvent, command = CounterCommand, error = Never)]
struct Counter {
    total: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, Event)]
#[event(apply = Counter)]
enum CounterEvent {
    Added { n: u64 },
}

#[derive(Debug, Command)]
#[command(aggregate = Counter)]
#[allow(dead_code, reason = "only its type is needed")]
enum CounterCommand {
    Add { n: u64 },
}

#[derive(Debug)]
struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for Never {}

impl Counter {
    fn added(&mut self, n: &u64) {
        self.total = self.total.saturating_add(*n);
    }
    fn add(&self, n: &u64) -> Result<Vec<CounterEvent>, Never> {
        Ok(vec![CounterEvent::Added { n: *n }])
    }
}

/// An id whose `Display` writes `text`, then fails.
struct FailingDisplay(String);

impl fmt::Display for FailingDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)?;
        Err(fmt::Error)
    }
}

/// Any text: arbitrary Unicode, control characters, and lengths around and far past the
/// stream id limit.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\\x7f-\\u{9f}\\u{200b}\\u{feff}a-z -]{0,40}",
        (any::<char>(), 0..600usize).prop_map(|(c, n)| c.to_string().repeat(n)),
        (any::<char>(), 0..100_000usize).prop_map(|(c, n)| c.to_string().repeat(n)),
        prop::collection::vec(any::<char>(), 250..270).prop_map(String::from_iter),
    ]
}

/// Object keys: the names `Metadata` and the events know, and anything else.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("correlation_id".to_owned()),
        Just("causation_id".to_owned()),
        Just("actor".to_owned()),
        Just("headers".to_owned()),
        Just("name".to_owned()),
        Just("owner".to_owned()),
        Just("overdraft_limit".to_owned()),
        Just("cents".to_owned()),
        Just("euros".to_owned()),
        any::<String>(),
    ]
}

/// Any JSON value, nested a few levels, with strings that are sometimes UUIDs or numbers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        any::<u128>().prop_map(|n| Value::String(uuid::Uuid::from_u128(n).to_string())),
        "[0-9]{1,25}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Stored JSON text of any shape, and text that is not JSON at all.
fn stored_text() -> impl Strategy<Value = String> {
    prop_oneof![
        json_value().prop_map(|value| value.to_string()),
        any::<String>(),
        // Nested far past serde_json's recursion limit.
        (0..5_000usize, any::<bool>()).prop_map(|(depth, object)| if object {
            "{\"a\":".repeat(depth)
        } else {
            "[".repeat(depth) + &"]".repeat(depth)
        }),
        // Shapes close to what the upcasters expect.
        json_value().prop_map(|name| serde_json::json!({ "name": name }).to_string()),
        "[0-9]{1,25}".prop_map(|euros| serde_json::json!({ "euros": euros }).to_string()),
        (json_value(), json_value()).prop_map(|(owner, limit)| {
            serde_json::json!({ "owner": owner, "overdraft_limit": limit }).to_string()
        }),
    ]
}

/// A stored type name and schema version: mostly the names the enum reads (and a removed
/// one) with versions around theirs, so the upcasters run often; sometimes anything at all.
fn stored_type_and_version() -> impl Strategy<Value = (String, u32)> {
    let names = prop::sample::select(vec![
        "Opened",
        "account.deposited",
        "MoneyDeposited",
        "Withdrawn",
        "AuditPinged",
    ]);
    prop_oneof![
        4 => (names.clone(), 0..=4u32).prop_map(|(name, v)| (name.to_owned(), v)),
        1 => (names, prop_oneof![Just(u32::MAX), any::<u32>()])
            .prop_map(|(name, v)| (name.to_owned(), v)),
        1 => (any::<String>(), any::<u32>()),
    ]
}

/// Why `text` is not a valid stream id, if it is not: what [`StreamId::new`] must say.
fn expected_refusal(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        Some("empty")
    } else if text.len() > MAX_STREAM_ID_LEN {
        Some("too long")
    } else if text.chars().any(char::is_control) {
        Some("control character")
    } else {
        None
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn stream_ids_are_valid_or_refused_with_the_reason(text in hostile_text()) {
        match StreamId::new(text.clone()) {
            Ok(id) => {
                prop_assert_eq!(expected_refusal(&text), None);
                prop_assert_eq!(id.as_str(), text.as_str());
                prop_assert_eq!(id.to_string(), text);
            }
            Err(InvalidStreamId::Empty) => prop_assert_eq!(expected_refusal(&text), Some("empty")),
            Err(InvalidStreamId::TooLong { len, max, .. }) => {
                prop_assert_eq!(expected_refusal(&text), Some("too long"));
                prop_assert_eq!((len, max), (text.len(), MAX_STREAM_ID_LEN));
            }
            Err(InvalidStreamId::ControlCharacter { index, character, .. }) => {
                prop_assert_eq!(expected_refusal(&text), Some("control character"));
                prop_assert_eq!(text[index..].chars().next(), Some(character));
                prop_assert!(character.is_control());
            }
            Err(other) => prop_assert!(false, "an unexpected refusal: {other:?}"),
        }
    }

    #[test]
    fn aggregate_stream_ids_are_checked_like_any_id(text in hostile_text()) {
        let expected = StreamId::new(format!("bank-account-{text}"));
        prop_assert_eq!(StreamId::for_aggregate::<Counter>(&text), expected.clone());
        // A `Display` that fails after writing leaves what it wrote, checked the same way.
        prop_assert_eq!(
            StreamId::for_aggregate::<Counter>(FailingDisplay(text.clone())),
            expected
        );
    }

    #[test]
    fn metadata_decodes_or_is_refused(value in json_value(), text in stored_text()) {
        for stored in [value.to_string(), text] {
            if let Ok(metadata) = serde_json::from_str::<Metadata>(&stored) {
                // What decodes survives a round trip.
                let again = serde_json::to_string(&metadata).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(serde_json::from_str::<Metadata>(&again).ok(), Some(metadata));
            }
        }
    }

    #[test]
    fn stored_events_decode_or_fail_with_a_typed_error(
        (event_type, schema_version) in stored_type_and_version(),
        body in stored_text(),
    ) {
        let decoded = AccountEvent::decode(&event_type, schema_version, &body);
        let known = KNOWN.iter().find(|(name, ..)| *name == event_type);
        match (decoded, known) {
            (Ok(None), _) => prop_assert_eq!(event_type.as_str(), "AuditPinged"),
            (Ok(Some(event)), Some((_, current, written))) => {
                prop_assert_eq!(event.event_type(), *written);
                prop_assert!(schema_version <= *current);
            }
            (Ok(Some(event)), None) => {
                prop_assert!(false, "{event_type:?} is no known type, yet decoded to {event:?}")
            }
            (Err(DecodeError::UnknownType { event_type: named, schema_version: v }), known) => {
                prop_assert!(known.is_none() && event_type != "AuditPinged");
                prop_assert_eq!((named, v), (event_type, schema_version));
            }
            (Err(DecodeError::FutureVersion { current, .. }), Some((_, known_current, _))) => {
                prop_assert_eq!(current, *known_current);
                prop_assert!(schema_version > current);
            }
            (Err(error), known) => {
                // A body that does not match, or an upcaster that refuses it: typed, and it
                // names the stored type.
                prop_assert!(known.is_some(), "{error}");
                prop_assert!(error.to_string().contains(&format!("`{event_type}`")), "{error}");
            }
        }
    }

    #[test]
    fn opened_upcasters_refuse_bodies_that_are_not_objects(
        body in json_value(),
        schema_version in 1..=2u32,
    ) {
        let decoded = AccountEvent::decode("Opened", schema_version, &body.to_string());
        if !body.is_object() {
            let refused = matches!(
                decoded,
                Err(DecodeError::Upcast { from, .. }) if from == schema_version
            );
            prop_assert!(refused, "{body} as v{schema_version}: {decoded:?}");
        }
    }

    #[test]
    fn withdrawn_v1_converts_any_euros_or_refuses_them(
        euros in prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            "[0-9]{15,22}",
            any::<String>(),
        ],
    ) {
        let body = serde_json::json!({ "euros": euros }).to_string();
        let decoded = AccountEvent::decode("Withdrawn", 1, &body);
        match euros.parse::<u64>().ok().and_then(|n| n.checked_mul(100)) {
            Some(cents) => prop_assert_eq!(decoded.ok(), Some(Some(AccountEvent::Withdrawn { cents }))),
            None => prop_assert!(
                matches!(decoded, Err(DecodeError::Upcast { from: 1, .. })),
                "{euros:?}: {decoded:?}"
            ),
        }
    }
}
