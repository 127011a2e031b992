//! Run with: DATABASE_URL=postgres://... cargo run -p example-postgres-bank-account
//!
//! The bank account of `example-bank-account`, on PostgreSQL: the domain is the very same
//! code, and the backend swap is the one line that builds the store. It opens an account,
//! runs a few commands (one refused by the overdraft rule, one retried under an idempotency
//! key), prints the stored history and the account's state now and at version 2, then reads
//! the global log.
//!
//! The store's tables live in the schema `annals` of the database `DATABASE_URL` names;
//! the first run creates them. Every run uses a new account, so it can run again and again.

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use annals::prelude::*;
use annals::Checkpoint;
use annals_postgres::PgEventStore;
use example_bank_account::{AccountCommand, BankAccount};

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!(
            "DATABASE_URL is not set. Point it at a PostgreSQL database, for example:\n\n    \
             DATABASE_URL=postgres://postgres:secret@localhost:5432/postgres \
             cargo run -p example-postgres-bank-account\n\n\
             (apt-get install -y postgresql installs a server.)"
        );
        return ExitCode::from(2);
    };
    match run(&url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(url: &str) -> Result<(), Box<dyn Error>> {
    // The one line that picks the backend: connects a pool and applies the migrations.
    let store = PgEventStore::connect(url).await?;
    let millis = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    demo(store, &format!("pg-{millis}")).await
}

/// Runs the example on `store` with a new account `account`.
async fn demo(store: PgEventStore, account: &str) -> Result<(), Box<dyn Error>> {
    let accounts = Repository::<BankAccount, _>::new(store.clone());
    let id = StreamId::for_aggregate::<BankAccount>(account)?;
    // Where the global log ends now: the events of this run come after it.
    let mut log = store.log_reader(Checkpoint::START);
    while log.next_batch().await?.is_some() {}
    let start = log.checkpoint();

    let teller = CommandContext::new().with_metadata(Metadata::new().with_actor("teller-7"));
    let open = AccountCommand::Open {
        owner: "Ann".into(),
        overdraft_limit: 100,
    };
    accounts.execute_with(&id, open, teller.clone()).await?;
    accounts
        .execute_with(&id, AccountCommand::Deposit { amount: 250 }, teller)
        .await?;
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
    let retried = CommandContext::new().with_idempotency_key(format!("transfer-{account}"));
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

    println!("\nhistory of {id} (schema {}):", store.schema());
    let mut reader = store.stream_reader(&id, Version(1));
    while let Some(batch) = reader.next_batch().await? {
        for event in batch {
            let at = event.recorded_at.duration_since(UNIX_EPOCH)?;
            println!(
                "  v{} #{} tx {} at {}.{:03} {:<18} {:<50} {}",
                event.version,
                event.position,
                event.commit,
                at.as_secs(),
                at.subsec_millis(),
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

    // A reader of the global log: it waits for events (woken by PostgreSQL notifications),
    // then reads every event after its checkpoint.
    if store.wait_for_events(start, Duration::from_secs(5)).await? {
        let mut log = store.log_reader(start);
        let mut seen = 0;
        while let Some(batch) = log.next_batch().await? {
            seen += batch.iter().filter(|e| e.stream_id == id).count();
        }
        println!(
            "\nthe global log holds {seen} events of {id} after checkpoint {start}, up to {}",
            log.checkpoint()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_example_runs_on_a_throwaway_cluster() {
        let store = annals_postgres::testing::fresh_store().await;
        super::demo(store.clone(), "test")
            .await
            .expect("the example runs");
        let id = annals::StreamId::new("bank-account-test").expect("id");
        use annals::EventStore;
        assert_eq!(
            store.stream_version(&id).await.expect("version"),
            annals::Version(4)
        );
    }
}
