//! `#[derive(Event)]` at run time: stored names and versions, the stored body, decoding and its
//! errors, and apply dispatch.

use annals::{Apply, DecodeError, Event, Payload};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Ledger)]
enum LedgerEvent {
    #[event(version = 2)]
    Opened {
        owner: String,
        #[serde(rename = "limit")]
        overdraft_limit: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    #[event(name = "ledger.deposited")]
    Deposited(u64),
    #[serde(rename = "moved")]
    #[event(apply = on_transfer)]
    Transferred(u64, String),
    Closed,
}

#[derive(Debug, Default, PartialEq)]
struct Ledger {
    owner: String,
    limit: u64,
    balance: u64,
    transfers: Vec<String>,
    open: bool,
}

impl Ledger {
    fn opened(&mut self, owner: &str, limit: &u64, _note: &Option<String>) {
        owner.clone_into(&mut self.owner);
        self.limit = *limit;
        self.open = true;
    }

    fn deposited(&mut self, amount: &u64) {
        self.balance += amount;
    }

    fn on_transfer(&mut self, amount: &u64, to: &str) {
        self.balance -= amount;
        self.transfers.push(to.to_owned());
    }

    fn closed(&mut self) {
        self.open = false;
    }
}

fn opened() -> LedgerEvent {
    LedgerEvent::Opened {
        owner: "ann".into(),
        overdraft_limit: 10,
        note: None,
    }
}

fn all_events() -> Vec<LedgerEvent> {
    vec![
        opened(),
        LedgerEvent::Opened {
            owner: "bob".into(),
            overdraft_limit: 0,
            note: Some("vip".into()),
        },
        LedgerEvent::Deposited(100),
        LedgerEvent::Transferred(30, "carl".into()),
        LedgerEvent::Closed,
    ]
}

#[allow(clippy::unwrap_used)] // A test helper: the JSON is always a literal.
fn json(text: &str) -> &str {
    Payload::from_json(text).unwrap();
    text
}

#[test]
fn encode_writes_the_variant_body_without_the_enum_tag() {
    let bodies: Vec<String> = all_events()
        .iter()
        .map(|event| event.encode().unwrap().as_str().to_owned())
        .collect();
    assert_eq!(
        bodies,
        [
            r#"{"owner":"ann","limit":10}"#,
            r#"{"owner":"bob","limit":0,"note":"vip"}"#,
            "100",
            r#"[30,"carl"]"#,
            "null",
        ]
    );
}

#[test]
fn event_type_and_schema_version_follow_the_attributes() {
    let names: Vec<(&str, u32)> = all_events()
        .iter()
        .map(|event| (event.event_type(), event.schema_version()))
        .collect();
    assert_eq!(
        names,
        [
            ("Opened", 2),
            ("Opened", 2),
            ("ledger.deposited", 1),
            ("Transferred", 1),
            ("Closed", 1),
        ]
    );
}

#[test]
fn decode_round_trips_every_variant() {
    for event in all_events() {
        let payload = event.encode().unwrap();
        let decoded =
            LedgerEvent::decode(event.event_type(), event.schema_version(), payload.as_str());
        assert_eq!(decoded.unwrap(), Some(event));
    }
}

#[test]
fn field_serde_attributes_apply_to_the_body() {
    // `rename` on a field and `default` on a missing field.
    let decoded = LedgerEvent::decode("Opened", 2, json(r#"{"owner":"ann","limit":10}"#));
    assert_eq!(decoded.unwrap(), Some(opened()));
}

#[test]
fn a_serde_renamed_variant_is_stored_under_its_event_name() {
    let event = LedgerEvent::Transferred(5, "dan".into());
    assert_eq!(event.event_type(), "Transferred");
    let decoded = LedgerEvent::decode("Transferred", 1, json(r#"[5,"dan"]"#));
    assert_eq!(decoded.unwrap(), Some(event));
}

#[test]
fn a_unit_variant_accepts_any_body() {
    let decoded = LedgerEvent::decode("Closed", 1, json("{}"));
    assert_eq!(decoded.unwrap(), Some(LedgerEvent::Closed));
}

#[test]
fn an_unknown_type_is_an_error() {
    // The serde name of a variant is not a stored name.
    for name in ["moved", "Deposited", ""] {
        let error = LedgerEvent::decode(name, 1, json("1")).unwrap_err();
        assert!(
            matches!(&error, DecodeError::UnknownType { event_type, schema_version: 1 } if event_type == name),
            "{error:?}"
        );
    }
}

#[test]
fn a_newer_version_is_a_future_version() {
    let error = LedgerEvent::decode("Opened", 3, json("{}")).unwrap_err();
    assert!(
        matches!(
            &error,
            DecodeError::FutureVersion { event_type, schema_version: 3, current: 2 } if event_type == "Opened"
        ),
        "{error:?}"
    );
}

#[test]
fn an_older_version_without_upcaster_is_an_error() {
    let error = LedgerEvent::decode("Opened", 1, json(r#"{"owner":"ann"}"#)).unwrap_err();
    assert!(
        matches!(
            &error,
            DecodeError::NoUpcaster { event_type, schema_version: 1, current: 2 } if event_type == "Opened"
        ),
        "{error:?}"
    );
}

#[test]
fn a_malformed_body_is_a_body_error() {
    for (name, version, body) in [
        ("Opened", 2, r#"{"owner":"ann"}"#),
        ("Opened", 2, r#"{"owner":"ann","limit":"ten"}"#),
        ("ledger.deposited", 1, r#""100""#),
        ("Transferred", 1, "[1]"),
    ] {
        let error = LedgerEvent::decode(name, version, json(body)).unwrap_err();
        assert!(
            matches!(&error, DecodeError::Body { event_type, schema_version, .. } if event_type == name && *schema_version == version),
            "{error:?}"
        );
    }
}

#[test]
fn apply_calls_one_method_per_variant_with_fields_by_reference() {
    let mut ledger = Ledger::default();
    for event in all_events() {
        ledger.apply(&event);
    }
    assert_eq!(
        ledger,
        Ledger {
            owner: "bob".into(),
            limit: 0,
            balance: 70,
            transfers: vec!["carl".into()],
            open: false,
        }
    );
}
