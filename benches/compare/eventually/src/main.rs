//! The eventually contender of `annals-compare`, built apart (see Cargo.toml): runs the
//! same workloads (the harness's own `bank.rs`) against eventually + eventually-postgres on
//! the database it is given, and prints one result line per workload on stdout:
//! `<workload> ok <median>` or `<workload> error <reason>`.
//!
//! Run by the harness as `annals-compare-eventually <database url> <full|quick>`.

#[path = "../../src/bank.rs"]
mod bank;
mod eventually;

use std::future::Future;
use std::sync::Arc;

use crate::bank::{median, Counts};

/// Any error.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// This binary's result type.
pub(crate) type Result<T, E = BoxError> = std::result::Result<T, E>;

/// Runs `measure` `counts.runs` times and prints the median (or the first error) as one line.
async fn report<F, Fut>(workload: &str, counts: &Counts, mut measure: F)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<f64>>,
{
    let mut values = Vec::with_capacity(counts.runs);
    for run in 0..counts.runs {
        match measure(run).await {
            Ok(value) => {
                eprintln!("  {workload} eventually: run {}: {value:.3}", run + 1);
                values.push(value);
            }
            Err(error) => {
                let reason = error.to_string().replace('\n', " ");
                println!("{workload} error {reason}");
                return;
            }
        }
    }
    match median(&mut values) {
        Some(value) => println!("{workload} ok {value}"),
        None => println!("{workload} error no runs"),
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(size)) = (args.next(), args.next()) else {
        return Err("usage: annals-compare-eventually <database url> <full|quick>".into());
    };
    let counts = match size.as_str() {
        "full" => Counts::FULL,
        "quick" => Counts::QUICK,
        other => return Err(format!("unknown size `{other}`: full or quick").into()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    eprintln!("eventually: {} counts", counts.name);
    runtime.block_on(async move {
        let bank = Arc::new(eventually::postgres(&url).await?);
        let writers = [Arc::clone(&bank)];
        let (bank, writers, counts) = (&bank, &writers[..], &counts);
        report("W1", counts, |run| bank::w1(bank, counts, run)).await;
        report("W2", counts, |run| bank::w2(writers, counts, run)).await;
        match bank::w3_setup(&**bank, counts).await {
            Ok((long, short)) => {
                let (long, short) = (&long, &short);
                report("W3Long", counts, |_| bank::w3(&**bank, long, counts)).await;
                report("W3Short", counts, |_| bank::w3(&**bank, short, counts)).await;
            }
            Err(error) => {
                let reason = error.to_string().replace('\n', " ");
                println!("W3Long error cannot write the W3 streams: {reason}");
                println!("W3Short error cannot write the W3 streams: {reason}");
            }
        }
        report("W4", counts, |run| bank::w4(bank, counts, run)).await;
        Ok(())
    })
}
