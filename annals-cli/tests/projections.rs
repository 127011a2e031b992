#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! `annals projections` and `annals projection reset`.

mod common;

use common::{append, run, store};

#[tokio::test]
async fn projections_show_lag_and_reset_needs_confirmation() {
    let (store, schema) = store().await;
    append(&store, "account-1", &["opened", "deposited"]).await;
    append(&store, "account-2", &["opened"]).await;
    let client = store.pool().get().await.expect("a connection");
    // The checkpoint of a projection that has read the first event.
    client
        .execute(
            &format!(
                "INSERT INTO \"{schema}\".checkpoints (name, commit, position) \
                 SELECT 'balances', tx_id::text::bigint, position FROM \"{schema}\".events \
                 ORDER BY tx_id, position LIMIT 1"
            ),
            &[],
        )
        .await
        .expect("a checkpoint is written");

    let listed = run(&schema, &["projections", "--json"]);
    assert_eq!(listed.code, 0, "stderr: {}", listed.stderr);
    let listed = listed.json();
    let projection = &listed["projections"][0];
    assert_eq!(projection["name"], "balances");
    assert_eq!(projection["lag"], 2);
    assert!(
        projection["updated_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{listed}"
    );

    let human = run(&schema, &["projections"]);
    assert!(human.stdout.contains("balances"), "{}", human.stdout);

    // No terminal to ask on, no --yes: refused, and the checkpoint stays.
    let refused = run(&schema, &["projection", "reset", "balances"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("pass --yes"), "{}", refused.stderr);
    let stored: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".checkpoints"),
            &[],
        )
        .await
        .expect("a count")
        .get(0);
    assert_eq!(stored, 1);

    let reset = run(
        &schema,
        &["projection", "reset", "balances", "--yes", "--json"],
    );
    assert_eq!(reset.code, 0, "stderr: {}", reset.stderr);
    assert_eq!(reset.json()["deleted"], true);
    let listed = run(&schema, &["projections", "--json"]).json();
    assert_eq!(listed["projections"].as_array().map(Vec::len), Some(0));

    let unknown = run(&schema, &["projection", "reset", "balances", "--yes"]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("no projection `balances`"),
        "{}",
        unknown.stderr
    );
}
