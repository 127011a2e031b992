//! Stored data the code cannot read, and invalid stream ids: typed errors, never a panic.

// Test helpers outside `#[test]` fns unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "support/wallet.rs"]
mod wallet;

use annals::prelude::*;
use annals::{DecodeError, EventDecodeError, NewEvent, Payload};
use annals_memory::MemoryEventStore;
use uuid::Uuid;
use wallet::*;

async fn store_with(raw: NewEvent) -> (Repository<Wallet, MemoryEventStore>, StreamId) {
    let store = MemoryEventStore::new();
    let id = wallet("corrupt");
    let good = NewEvent::encode(&WalletEvent::Credited { amount: 1 }, Metadata::new()).unwrap();
    store
        .append(&id, ExpectedVersion::NoStream, vec![good, raw])
        .await
        .unwrap();
    (Repository::new(store), id)
}

fn raw(event_type: &str, schema_version: u32, json: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.to_owned().into(),
        schema_version,
        payload: Payload::from_json(json).unwrap(),
        metadata: Metadata::new(),
    }
}

#[tokio::test]
async fn undecodable_stored_events_give_typed_errors() {
    type Case = (NewEvent, fn(&DecodeError) -> bool, &'static str);
    let cases: [Case; 4] = [
        (
            raw("Mystery", 1, "{}"),
            |e| matches!(e, DecodeError::UnknownType { event_type, schema_version: 1 } if event_type == "Mystery"),
            "unknown event type `Mystery`",
        ),
        (
            raw("Credited", 7, r#"{"amount":1}"#),
            |e| {
                matches!(
                    e,
                    DecodeError::FutureVersion {
                        schema_version: 7,
                        current: 1,
                        ..
                    }
                )
            },
            "schema version 7, newer than the current version 1",
        ),
        (
            raw("Debited", 1, r#"{"amount":1}"#),
            |e| {
                matches!(
                    e,
                    DecodeError::NoUpcaster {
                        schema_version: 1,
                        current: 2,
                        ..
                    }
                )
            },
            "no upcaster",
        ),
        (
            raw("Credited", 1, r#"{"amount":"ten"}"#),
            |e| {
                matches!(
                    e,
                    DecodeError::Body {
                        schema_version: 1,
                        ..
                    }
                )
            },
            "the body does not match",
        ),
    ];
    for (event, check, message) in cases {
        let (repo, id) = store_with(event).await;
        let error = repo.load(&id).await.unwrap_err();
        match &error {
            RepositoryError::Decode(EventDecodeError {
                stream,
                version,
                source,
                ..
            }) => {
                assert_eq!((stream, *version), (&id, Version(2)));
                assert!(check(source), "unexpected {source:?}");
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
        let text = error.to_string();
        assert!(
            text.contains("event 2 of stream `wallet-corrupt`") && text.contains(message),
            "{text}"
        );
        // A command on the stream fails the same way, and writes nothing.
        assert!(matches!(
            repo.execute(&id, WalletCommand::Credit { amount: 1 }).await,
            Err(RepositoryError::Decode(_))
        ));
        assert_eq!(repo.store().len(), 2);
    }
}

#[test]
fn invalid_stream_ids_are_typed_errors() {
    use annals::InvalidStreamId;
    assert_eq!(StreamId::new(""), Err(InvalidStreamId::Empty));
    assert!(matches!(
        StreamId::new("x".repeat(300)),
        Err(InvalidStreamId::TooLong {
            len: 300,
            max: 256,
            ..
        })
    ));
    let nul = StreamId::new("wallet-\0").unwrap_err();
    assert!(matches!(
        nul,
        InvalidStreamId::ControlCharacter {
            index: 7,
            character: '\0',
            ..
        }
    ));
    assert!(nul.to_string().contains("control character"), "{nul}");
    assert_eq!(
        StreamId::new("wallet-ünïcode ok").unwrap().as_str(),
        "wallet-ünïcode ok"
    );
    // DEL is ASCII but not printable; U+0085 is a control character outside ASCII.
    for (id, index, character) in [("wallet\u{7f}", 6, '\u{7f}'), ("ü-\u{85}x", 3, '\u{85}')] {
        assert_eq!(
            StreamId::new(id),
            Err(InvalidStreamId::ControlCharacter {
                id: id.to_owned(),
                index,
                character,
            })
        );
    }
    assert_eq!(
        StreamId::for_aggregate::<Wallet>("ü 7").unwrap().as_str(),
        "wallet-ü 7"
    );
    assert!(matches!(
        StreamId::for_aggregate::<Wallet>("a\nb"),
        Err(InvalidStreamId::ControlCharacter {
            index: 8,
            character: '\n',
            ..
        })
    ));
}
