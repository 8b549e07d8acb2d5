//! Figure 1: runs the criterion bench `benches/guards.rs` and reads the
//! figures it writes.

use crate::cargo;
use crate::stats::Summary;
use std::process::Stdio;

/// One variant at one thread count: nanoseconds per enter+leave over
/// criterion's samples.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) threads: usize,
    pub(crate) variant: String,
    pub(crate) ns: Summary,
}

/// Criterion's options for a quick run (a full run takes its defaults:
/// 3 s of warm-up, 100 samples over 5 s).
pub(crate) const QUICK_OPTIONS: [&str; 6] = [
    "--warm-up-time",
    "1",
    "--measurement-time",
    "2",
    "--sample-size",
    "50",
];

/// The command that runs the bench, as a reader would type it.
pub(crate) fn command(quick: bool) -> String {
    let mut command = "cargo bench -p graceful-bench --bench guards".to_owned();
    if quick {
        command.push_str(" -- ");
        command.push_str(&QUICK_OPTIONS.join(" "));
    }
    command
}

/// Runs the bench (criterion's output goes to standard error).
pub(crate) fn measure(quick: bool) -> Result<Vec<Row>, String> {
    let out =
        std::env::temp_dir().join(format!("graceful-bench-guards-{}.tsv", std::process::id()));
    let mut bench = cargo::cargo();
    bench
        .args([
            "bench",
            "--package",
            "graceful-bench",
            "--bench",
            "guards",
            "--",
        ])
        .env("GRACEFUL_BENCH_GUARDS_OUT", &out)
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit());
    if quick {
        bench.args(QUICK_OPTIONS);
    }
    let status = bench
        .status()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    if !status.success() {
        return Err(format!("the guards bench failed ({status})"));
    }
    let text = std::fs::read_to_string(&out)
        .map_err(|e| format!("the guards bench wrote nothing: {e}"))?;
    let _ = std::fs::remove_file(&out);
    parse(&text)
}

/// Parses the bench's lines: `threads variant median min max samples`.
pub(crate) fn parse(text: &str) -> Result<Vec<Row>, String> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let number = |i: usize| -> Result<f64, String> {
                fields
                    .get(i)
                    .and_then(|f| f.parse().ok())
                    .ok_or_else(|| format!("bad guards line {line:?}"))
            };
            Ok(Row {
                threads: number(0)? as usize,
                variant: fields.get(1).ok_or("empty guards line")?.to_string(),
                ns: Summary {
                    median: number(2)?,
                    min: number(3)?,
                    max: number(4)?,
                    count: number(5)? as usize,
                },
            })
        })
        .collect()
}

/// The median of `variant` at `threads`.
pub(crate) fn median(rows: &[Row], threads: usize, variant: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.threads == threads && r.variant == variant)
        .map(|r| r.ns.median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_bench_output() {
        let rows = parse("1\tbare\t2.5\t2.4\t3\t100\n2\tguard\t20\t18\t30\t100\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].variant, "guard");
        assert_eq!(rows[1].threads, 2);
        assert_eq!(rows[1].ns.min, 18.0);
        assert_eq!(median(&rows, 1, "bare"), Some(2.5));
        assert!(parse("1\tbare\tx").is_err());
    }
}
