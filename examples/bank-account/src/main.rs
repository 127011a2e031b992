//! Run with: cargo run -p example-bank-account
//!
//! Opens an account on the embedded memory store, runs a few commands (one of them refused by
//! the overdraft rule), then prints the stored history, the current state and two time-travel
//! queries: by version and by time.

use std::error::Error;
use std::time::{Duration, SystemTime};

use annals::prelude::*;
use annals::{NewEvent, Payload};
use annals_memory::MemoryEventStore;
use example_bank_account::{AccountCommand, BankAccount};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The one line that picks the backend.
    let store = MemoryEventStore::new();
    let accounts = Repository::<BankAccount, _>::new(store.clone());
    let id = StreamId::for_aggregate::<BankAccount>("42")?;

    let teller = Metadata::new().with_actor("teller-7");
    let context = CommandContext::new().with_metadata(teller);
    accounts
        .execute_with(
            &id,
            AccountCommand::Open {
                owner: "Ann".into(),
                overdraft_limit: 100,
            },
            context.clone(),
        )
        .await?;
    accounts
        .execute_with(
            &id,
            AccountCommand::Deposit { amount: 250 },
            context.clone(),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before_withdrawals = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    accounts
        .execute(&id, AccountCommand::Withdraw { amount: 300 })
        .await?;

    // The overdraft rule refuses this one: nothing is stored.
    match accounts
        .execute(&id, AccountCommand::Withdraw { amount: 100 })
        .await
    {
        Err(RepositoryError::Rejected(error)) => println!("refused: {error}"),
        other => println!("unexpected: {other:?}"),
    }

    // An idempotent command: the retry appends nothing.
    let retried = CommandContext::new().with_idempotency_key("transfer-2026-0001");
    let first = accounts
        .execute_with(&id, AccountCommand::Deposit { amount: 75 }, retried.clone())
        .await?;
    let second = accounts
        .execute_with(&id, AccountCommand::Deposit { amount: 75 }, retried)
        .await?;
    println!(
        "idempotent deposit: first run appended {}, the retry appended {} (duplicate: {})",
        first.appended, second.appended, second.duplicate
    );

    println!("\nhistory of {id}:");
    let mut reader = store.stream_reader(&id, Version(1));
    while let Some(batch) = reader.next_batch().await? {
        for event in batch {
            println!(
                "  v{} #{} {} {:<18} {:<50} {}",
                event.version,
                event.position,
                humantime::format_rfc3339_millis(event.recorded_at),
                event.event_type,
                event.payload.as_str(),
                event.metadata.actor.as_deref().unwrap_or("-"),
            );
        }
    }

    let now = accounts.load(&id).await?;
    println!("\nnow (version {}): {:?}", now.version, now.state);

    let at_v2 = accounts.load_at(&id, Version(2)).await?;
    println!("at version 2: balance {}", at_v2.state.balance);

    let then = accounts.load_as_of(&id, before_withdrawals).await?;
    println!(
        "as of {} (before the withdrawal): balance {} at version {}",
        humantime::format_rfc3339_millis(before_withdrawals),
        then.state.balance,
        then.version
    );

    // Events stored by an older version of this program: `Opened` v1 (no overdraft limit,
    // holder under `name`) and a deposit under its former type name. They load through the
    // upcaster chain and the alias.
    let legacy = StreamId::for_aggregate::<BankAccount>("legacy-7")?;
    let stored = |event_type: &'static str, json: &str| -> Result<NewEvent, Box<dyn Error>> {
        Ok(NewEvent::new(event_type, 1, Payload::from_json(json)?))
    };
    store
        .append(
            &legacy,
            ExpectedVersion::NoStream,
            vec![
                stored("Opened", r#"{"name":"Bob"}"#)?,
                stored("MoneyDeposited", r#"{"amount":40}"#)?,
            ],
        )
        .await?;
    let bob = accounts.load(&legacy).await?;
    println!("\nloaded from v1 events of {legacy}: {:?}", bob.state);
    Ok(())
}
