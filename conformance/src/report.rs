//! Scenario reports, as tables and as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::scenario::Kind;

/// What one scenario found about one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioReport {
    /// The scenario's name (kebab-case).
    pub name: &'static str,
    /// A check, or a demonstration of what the contract cannot prevent.
    pub kind: Kind,
    /// Whether the scenario passed (for a demonstration: whether it showed
    /// what it is meant to show).
    pub passed: bool,
    /// Measured figures, headline first: `("exit-after-signal-ms", "3.1")`.
    pub figures: Vec<(String, String)>,
    /// What went wrong, one sentence each; empty when passed.
    pub failures: Vec<String>,
    /// How long the scenario took.
    pub elapsed: Duration,
    /// The end of the target's standard error, kept when the scenario failed.
    pub stderr_tail: String,
}

impl ScenarioReport {
    /// The value of the figure named `key`.
    pub fn figure(&self, key: &str) -> Option<&str> {
        self.figures
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `pass`, `FAIL`, or for a demonstration `shown` / `NOT SHOWN`.
    pub fn verdict(&self) -> &'static str {
        match (self.kind, self.passed) {
            (Kind::Check, true) => "pass",
            (Kind::Check, false) => "FAIL",
            (Kind::Demonstration, true) => "shown",
            (Kind::Demonstration, false) => "NOT SHOWN",
        }
    }

    /// The headline figure as `key=value`, if any.
    pub fn key_figure(&self) -> Option<String> {
        self.figures.first().map(|(k, v)| format!("{k}={v}"))
    }
}

fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
            out.push_str(&"-".repeat(total.min(120)));
            out.push('\n');
        }
    }
    out
}

fn failure_details(target: &str, reports: &[ScenarioReport], out: &mut String) {
    for r in reports.iter().filter(|r| !r.passed) {
        let _ = writeln!(out, "\n{} on {target}: {}", r.name, r.verdict());
        for f in &r.failures {
            let _ = writeln!(out, "  - {f}");
        }
        if !r.stderr_tail.trim().is_empty() {
            let _ = writeln!(out, "  stderr (end):");
            for line in r.stderr_tail.lines() {
                let _ = writeln!(out, "    | {line}");
            }
        }
    }
}

/// One target's reports: one row per scenario with its verdict, time and
/// figures, then the failures in detail.
pub fn table(target: &str, reports: &[ScenarioReport]) -> String {
    let mut rows = vec![vec![
        "scenario".to_owned(),
        "result".to_owned(),
        "time".to_owned(),
        "figures".to_owned(),
    ]];
    for r in reports {
        let figures: Vec<String> = r.figures.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(vec![
            r.name.to_owned(),
            r.verdict().to_owned(),
            format!("{:.1}s", r.elapsed.as_secs_f64()),
            figures.join(" "),
        ]);
    }
    let mut out = format!("target: {target}\n");
    out.push_str(&render(&rows));
    failure_details(target, reports, &mut out);
    let passed = reports.iter().filter(|r| r.passed).count();
    let _ = writeln!(out, "\n{passed} passed, {} failed", reports.len() - passed);
    out
}

/// Several targets side by side: one row per scenario, one column per
/// target, each cell the verdict and the headline figure; then the failures
/// in detail.
pub fn matrix(runs: &[(String, Vec<ScenarioReport>)]) -> String {
    let mut header = vec!["scenario".to_owned()];
    header.extend(runs.iter().map(|(target, _)| target.clone()));
    let mut rows = vec![header];
    let mut names: Vec<&'static str> = Vec::new();
    for (_, reports) in runs {
        for r in reports {
            if !names.contains(&r.name) {
                names.push(r.name);
            }
        }
    }
    for name in names {
        let mut row = vec![name.to_owned()];
        for (_, reports) in runs {
            let cell = match reports.iter().find(|r| r.name == name) {
                Some(r) => match r.key_figure() {
                    Some(f) => format!("{} {f}", r.verdict()),
                    None => r.verdict().to_owned(),
                },
                None => "-".to_owned(),
            };
            row.push(cell);
        }
        rows.push(row);
    }
    let mut out = render(&rows);
    let mut passed = 0;
    let mut total = 0;
    for (target, reports) in runs {
        failure_details(target, reports, &mut out);
        passed += reports.iter().filter(|r| r.passed).count();
        total += reports.len();
    }
    let _ = writeln!(out, "\n{passed} passed, {} failed", total - passed);
    out
}

/// One report as a JSON object.
pub fn report_json(report: &ScenarioReport) -> Value {
    let figures: Map<String, Value> = report
        .figures
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "scenario": report.name,
        "kind": report.kind.as_str(),
        "passed": report.passed,
        "verdict": report.verdict(),
        "elapsed_ms": report.elapsed.as_secs_f64() * 1000.0,
        "figures": figures,
        "failures": report.failures,
        "stderr_tail": report.stderr_tail,
    })
}

/// Every target's reports as one JSON document:
/// `{"targets": [{"target": NAME, "passed": bool, "scenarios": [...]}]}`.
pub fn to_json(runs: &[(String, Vec<ScenarioReport>)]) -> Value {
    let targets: Vec<Value> = runs
        .iter()
        .map(|(target, reports)| {
            json!({
                "target": target,
                "passed": reports.iter().all(|r| r.passed),
                "scenarios": reports.iter().map(report_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "contract_version": 1, "targets": targets })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &'static str, passed: bool) -> ScenarioReport {
        ScenarioReport {
            name,
            kind: Kind::Check,
            passed,
            figures: vec![("exit-ms".into(), "3.0".into()), ("n".into(), "2".into())],
            failures: if passed {
                vec![]
            } else {
                vec!["it broke".into()]
            },
            elapsed: Duration::from_millis(1500),
            stderr_tail: if passed { String::new() } else { "boom".into() },
        }
    }

    #[test]
    fn table_lists_rows_failures_and_totals() {
        let text = table("fake", &[report("a-b", true), report("c-d", false)]);
        assert!(text.contains("a-b"));
        assert!(text.contains("exit-ms=3.0 n=2"));
        assert!(text.contains("c-d on fake: FAIL"));
        assert!(text.contains("  - it broke"));
        assert!(text.contains("    | boom"));
        assert!(text.trim_end().ends_with("1 passed, 1 failed"));
    }

    #[test]
    fn matrix_has_a_column_per_target() {
        let runs = vec![
            ("tokio".to_owned(), vec![report("a-b", true)]),
            ("smol".to_owned(), vec![report("a-b", false)]),
        ];
        let text = matrix(&runs);
        let header = text.lines().next().unwrap();
        assert!(header.contains("tokio") && header.contains("smol"));
        let row = text.lines().find(|l| l.starts_with("a-b")).unwrap();
        assert!(row.contains("pass exit-ms=3.0") && row.contains("FAIL exit-ms=3.0"));
    }

    #[test]
    fn json_carries_figures_and_verdicts() {
        let runs = vec![("fake".to_owned(), vec![report("a-b", false)])];
        let value = to_json(&runs);
        let s = &value["targets"][0]["scenarios"][0];
        assert_eq!(s["scenario"], "a-b");
        assert_eq!(s["passed"], false);
        assert_eq!(s["figures"]["n"], "2");
        assert_eq!(s["failures"][0], "it broke");
        assert_eq!(value["targets"][0]["passed"], false);
    }
}
