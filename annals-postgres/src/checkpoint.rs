//! Saving a checkpoint only over the one its saver started from: the compare-and-set behind
//! [`EventStore::save_checkpoint_if`](annals::EventStore::save_checkpoint_if) and each
//! projection batch's commit.

use annals::Checkpoint;

use crate::rows::signed;
use crate::sql::Statements;

/// Saves `checkpoint` under `name` through `client` if the stored one is `expected`; `false`
/// when another is stored. In a transaction, the row stays locked until it ends, so a second
/// saver waits and then finds the checkpoint moved.
pub(crate) async fn save_checkpoint_over<C: deadpool_postgres::GenericClient + Sync>(
    client: &C,
    sql: &Statements,
    name: &str,
    expected: Option<Checkpoint>,
    checkpoint: Checkpoint,
) -> Result<bool, tokio_postgres::Error> {
    let (commit, position) = (signed(checkpoint.commit), signed(checkpoint.position.0));
    let rows = match expected {
        None => {
            let statement = client.prepare_cached(&sql.save_first_checkpoint).await?;
            client
                .query(&statement, &[&name, &commit, &position])
                .await?
        }
        Some(old) => {
            let statement = client.prepare_cached(&sql.save_checkpoint_over).await?;
            let (old_commit, old_position) = (signed(old.commit), signed(old.position.0));
            client
                .query(
                    &statement,
                    &[&name, &commit, &position, &old_commit, &old_position],
                )
                .await?
        }
    };
    Ok(!rows.is_empty())
}
