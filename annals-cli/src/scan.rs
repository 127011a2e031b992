//! Reading the whole log page by page, with a progress bar on stderr.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_postgres::{Client, Row};

use crate::db::quoted;
use crate::error::CliError;

/// Events read per statement.
const PAGE: i64 = 1_000;

/// Reads every event of `schema` in the global log's order, selecting `columns` (after the
/// key, `tx_id::text, position`, which come first in each row), and hands each row to `each`.
/// The progress bar is drawn only when stderr is a terminal.
pub(crate) async fn scan(
    client: &Client,
    schema: &str,
    columns: &str,
    mut each: impl FnMut(&Row) -> Result<(), CliError>,
) -> Result<u64, CliError> {
    let q = quoted(schema);
    let total: i64 = client
        .query_one(&format!("SELECT count(*) FROM {q}.events"), &[])
        .await?
        .try_get(0)?;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(
            Some(u64::try_from(total).unwrap_or(0)),
            ProgressDrawTarget::stderr(),
        )
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    // Keyset pages down the primary key `(tx_id, position)`. The ORDER BY names the table's
    // columns (`e.`): a bare `tx_id` would be the output column `tx_id::text`, and sort as
    // text ("1000" before "999"), by a full scan and sort per page.
    let statement = format!(
        "SELECT e.tx_id::text, e.position, {columns} FROM {q}.events e
         WHERE (e.tx_id, e.position) > ($1::text::xid8, $2)
         ORDER BY e.tx_id, e.position LIMIT $3"
    );
    let (mut tx_id, mut position) = ("0".to_owned(), 0_i64);
    let mut read = 0_u64;
    loop {
        let rows = client
            .query(&statement, &[&tx_id, &position, &PAGE])
            .await?;
        for row in &rows {
            each(row)?;
        }
        read += rows.len() as u64;
        bar.inc(rows.len() as u64);
        match rows.last() {
            Some(last) if rows.len() as i64 == PAGE => {
                tx_id = last.try_get(0)?;
                position = last.try_get(1)?;
            }
            _ => break,
        }
    }
    bar.finish_and_clear();
    Ok(read)
}
