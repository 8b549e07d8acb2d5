//! App mode's reports: a table for the terminal, a JSON document for
//! machines, and one summary line for a CI log.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::check::{CheckReport, Verdict};

/// How many lines of standard error a failed check shows.
const STDERR_LINES: usize = 8;

/// Counts of pass, fail and not applicable.
fn counts(reports: &[CheckReport]) -> (usize, usize, usize) {
    let count = |v: Verdict| reports.iter().filter(|r| r.verdict == v).count();
    (
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::NotApplicable),
    )
}

/// Whether every check passed or did not apply.
pub fn passed(reports: &[CheckReport]) -> bool {
    !reports.iter().any(CheckReport::failed)
}

/// One line for a CI log:
/// `graceful-conformance app: myserver: FAIL: 8 passed, 1 failed (second-signal), 2 not applicable`.
pub fn summary(server: &str, reports: &[CheckReport]) -> String {
    let (pass, fail, na) = counts(reports);
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| r.failed())
        .map(|r| r.check.name())
        .collect();
    let mut line = format!(
        "graceful-conformance app: {server}: {}: {pass} passed, {fail} failed",
        if fail == 0 { "ok" } else { "FAIL" }
    );
    if !failed.is_empty() {
        let _ = write!(line, " ({})", failed.join(", "));
    }
    let _ = write!(line, ", {na} not applicable");
    line
}

/// The table: one row per check with its verdict, time and figures; then
/// what each failed or inapplicable check saw; then the summary line.
pub fn table(server: &str, reports: &[CheckReport]) -> String {
    let rows: Vec<[String; 4]> = reports
        .iter()
        .map(|r| {
            let figures: Vec<String> = r.figures.iter().map(|(k, v)| format!("{k}={v}")).collect();
            [
                r.check.name().to_owned(),
                r.verdict.as_str().to_owned(),
                format!("{:.1}s", r.elapsed.as_secs_f64()),
                figures.join(" "),
            ]
        })
        .collect();
    let header = ["check", "result", "time", "figures"].map(str::to_owned);
    let widths: Vec<usize> = (0..3)
        .map(|c| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!("server: {server}\n");
    for (i, row) in std::iter::once(&header).chain(&rows).enumerate() {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 {
            let total = widths.iter().sum::<usize>() + 6 + "figures".len();
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    for r in reports.iter().filter(|r| !r.findings.is_empty()) {
        let _ = writeln!(out, "\n{}: {}", r.check.name(), r.verdict.as_str());
        for finding in &r.findings {
            let _ = writeln!(out, "  - {finding}");
        }
        if r.failed() && !r.stderr_tail.trim().is_empty() {
            let lines: Vec<&str> = r.stderr_tail.lines().collect();
            let _ = writeln!(out, "  stderr (end):");
            for line in &lines[lines.len().saturating_sub(STDERR_LINES)..] {
                let _ = writeln!(out, "    | {line}");
            }
        }
    }
    let _ = writeln!(out, "\n{}", summary(server, reports));
    out
}

/// One check's report as a JSON object.
pub fn check_json(report: &CheckReport) -> Value {
    let figures: Map<String, Value> = report
        .figures
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "check": report.check.name(),
        "description": report.check.description(),
        "verdict": report.verdict.key(),
        "elapsed_ms": report.elapsed.as_secs_f64() * 1000.0,
        "figures": figures,
        "findings": report.findings,
        "stderr_tail": report.stderr_tail,
    })
}

/// The whole run as one JSON document:
/// `{"mode": "app", "server": NAME, "passed": bool, "summary": LINE, "checks": [...]}`.
pub fn to_json(server: &str, reports: &[CheckReport]) -> Value {
    let (pass, fail, na) = counts(reports);
    json!({
        "mode": "app",
        "server": server,
        "passed": passed(reports),
        "counts": { "pass": pass, "fail": fail, "not-applicable": na },
        "summary": summary(server, reports),
        "checks": reports.iter().map(check_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::app::check::Check;

    fn report(check: Check, verdict: Verdict) -> CheckReport {
        CheckReport {
            check,
            verdict,
            figures: vec![("exit-ms".into(), "3.0".into())],
            findings: match verdict {
                Verdict::Pass => vec![],
                Verdict::Fail => vec!["it broke".into()],
                Verdict::NotApplicable => vec!["no readiness path".into()],
            },
            elapsed: Duration::from_millis(1500),
            stderr_tail: if verdict == Verdict::Fail {
                "boom".into()
            } else {
                String::new()
            },
        }
    }

    fn reports() -> Vec<CheckReport> {
        vec![
            report(Check::Start, Verdict::Pass),
            report(Check::SecondSignal, Verdict::Fail),
            report(Check::ReadinessFirst, Verdict::NotApplicable),
        ]
    }

    #[test]
    fn summary_names_the_failures() {
        assert_eq!(
            summary("srv", &reports()),
            "graceful-conformance app: srv: FAIL: 1 passed, 1 failed (second-signal), 1 not applicable"
        );
        assert!(!passed(&reports()));
        let good = [
            report(Check::Start, Verdict::Pass),
            report(Check::ReadinessFirst, Verdict::NotApplicable),
        ];
        assert!(passed(&good));
        assert!(summary("srv", &good).contains(": ok: 1 passed, 0 failed, 1 not applicable"));
    }

    #[test]
    fn table_shows_rows_findings_and_summary() {
        let text = table("srv", &reports());
        assert!(text.contains("second-signal"), "{text}");
        assert!(text.contains("exit-ms=3.0"), "{text}");
        assert!(text.contains("second-signal: FAIL\n  - it broke"), "{text}");
        assert!(text.contains("    | boom"), "{text}");
        assert!(
            text.contains("readiness-first: n/a\n  - no readiness path"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("1 not applicable"), "{text}");
    }

    #[test]
    fn json_has_verdicts_figures_and_counts() {
        let value = to_json("srv", &reports());
        assert_eq!(value["passed"], false);
        assert_eq!(value["counts"]["fail"], 1);
        assert_eq!(value["checks"][1]["check"], "second-signal");
        assert_eq!(value["checks"][1]["verdict"], "fail");
        assert_eq!(value["checks"][2]["verdict"], "not-applicable");
        assert_eq!(value["checks"][0]["figures"]["exit-ms"], "3.0");
    }
}
