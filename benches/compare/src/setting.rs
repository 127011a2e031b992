//! What the table's heading says about where it was measured: the machine, the date, and the
//! exact versions of the contenders.

use std::time::{SystemTime, UNIX_EPOCH};

/// The crates whose versions the heading lists, as `Cargo.lock` resolved them.
const CONTENDERS: [&str; 7] = [
    "cqrs-es",
    "postgres-es",
    "esrs",
    "disintegrate",
    "disintegrate-postgres",
    "sqlx",
    "tokio-postgres",
];

/// The same for the eventually build, as `eventually/Cargo.lock` resolved them.
const EVENTUALLY: [&str; 3] = ["eventually", "eventually-postgres", "tokio-postgres"];

/// `nproc`, the CPU model and the memory of this machine.
pub(crate) fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = field(&cpuinfo, "model name").unwrap_or("unknown CPU");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = field(&meminfo, "MemTotal")
        .and_then(|kb| kb.trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("unknown memory".to_owned(), |kb| {
            format!("{:.1} GiB", kb / 1024.0 / 1024.0)
        });
    format!("{cpus} CPUs (nproc), {model}, {memory}")
}

/// The value of the first `key: value` line of a /proc file.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
}

/// The exact versions of the contenders and drivers this harness was built with.
pub(crate) fn versions() -> String {
    let main = locked(include_str!("../Cargo.lock"), &CONTENDERS);
    let eventually = locked(include_str!("../eventually/Cargo.lock"), &EVENTUALLY);
    format!(
        "annals {} (this tree), {main}; built apart: {eventually}",
        env!("CARGO_PKG_VERSION")
    )
}

/// `name version` of each of `names` locked in `lock`.
fn locked(lock: &str, names: &[&str]) -> String {
    let mut found = Vec::new();
    for name in names {
        let mut versions: Vec<&str> = lock
            .split("[[package]]")
            .filter(|package| package.lines().any(|l| l == format!("name = \"{name}\"")))
            .filter_map(|package| {
                package
                    .lines()
                    .find_map(|l| l.strip_prefix("version = \""))
                    .map(|v| v.trim_end_matches('"'))
            })
            .collect();
        versions.sort_unstable();
        if !versions.is_empty() {
            found.push(format!("{name} {}", versions.join(" and ")));
        }
    }
    found.join(", ")
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC`.
pub(crate) fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn proc_fields() {
        let text = "processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\n";
        assert_eq!(field(text, "model name"), Some("Some CPU @ 2.0GHz"));
        assert_eq!(field(text, "MemTotal"), None);
    }

    #[test]
    fn lists_the_peers() {
        let versions = versions();
        assert!(versions.contains("cqrs-es 0.5"), "{versions}");
        assert!(versions.contains("eventually-postgres 0.2"), "{versions}");
    }
}
