//! Figure 6: a rolling restart behind a real load balancer, graceful's
//! targets and the peers side by side, as `cargo xtask rollout --peers`
//! measures it.
//!
//! The rollout itself (HAProxy from Debian's packages, the instances, the
//! load, the restarts, the stores) is `xtask/src/rollout/`; this module
//! only runs it with the figure's settings, reads its `--json` file and
//! keeps what the report shows. The balancers: `haproxy`, the file
//! `deploy/haproxy/haproxy.cfg` recommends, and `haproxy-no-retries`, the
//! same file without `retry-on` and `option redispatch`; and in the full
//! run `nginx` with `deploy/nginx/nginx.conf` too. The full run restarts
//! every adapter's target (tokio, smol, actix), named one by one so that
//! the figure does not depend on the rollout's default; the quick run the
//! tokio target only. The peers run beside them either way. Each replacement
//! starts [`REPLACE_DELAY_MS`] after the old instance's exit, as a pod
//! scheduled elsewhere would, so that the balancer still has the old
//! address in its pool meanwhile.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::process::Stdio;

use crate::cargo;

/// How long after an instance's exit its replacement starts.
pub(crate) const REPLACE_DELAY_MS: u64 = 3_000;

/// The balancers of the figure, by the names `--lb` takes.
pub(crate) const BALANCERS: [&str; 2] = ["haproxy", "haproxy-no-retries"];

/// The balancer the full run adds: open-source nginx has no active health
/// checks, so it is the harder case for the peers, and a few minutes more.
pub(crate) const FULL_BALANCER: &str = "nginx";

/// The adapters whose targets the full run restarts, by the names
/// `--adapter` takes; the quick run restarts the first only.
pub(crate) const ADAPTERS: [&str; 3] = ["tokio", "smol", "actix"];

/// The balancers of a run, by the names `--lb` takes.
pub(crate) fn balancers(quick: bool) -> Vec<&'static str> {
    let mut all = BALANCERS.to_vec();
    if !quick {
        all.push(FULL_BALANCER);
    }
    all
}

/// One rollout: a server behind a balancer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// The server's name in the rest of the report (`graceful-tokio`,
    /// `axum`, ...).
    pub(crate) server: String,
    /// Whether it is one of graceful's targets (the rest are peers).
    pub(crate) ours: bool,
    pub(crate) balancer: String,
    pub(crate) requests: u64,
    /// Failed requests by what the client saw (`503`, `reset`, ...).
    pub(crate) failures: BTreeMap<String, u64>,
    /// Orders and jobs answered but not stored; `None` for a peer, which
    /// has no store.
    pub(crate) lost: Option<u64>,
    /// Rows stored whose answer never came; `None` for a peer.
    pub(crate) unanswered: Option<u64>,
    /// Each restarted instance's time from `SIGTERM` to exit, in seconds.
    pub(crate) drains: Vec<f64>,
    /// Each restarted instance's exit (`code 0`, ...).
    pub(crate) exits: Vec<String>,
}

impl Row {
    pub(crate) fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

/// The figure's results.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    pub(crate) instances: u64,
    pub(crate) clients: u64,
    pub(crate) unready_delay_ms: u64,
    pub(crate) work_ms: u64,
    pub(crate) rows: Vec<Row>,
}

/// The report's name of a rollout's server: the targets are named by
/// their adapter there.
fn report_name(server: &str, ours: bool) -> String {
    if ours {
        format!("graceful-{server}")
    } else {
        server.to_owned()
    }
}

/// Parses the rollout's `--json` file.
pub(crate) fn parse(text: &str) -> Result<Figure, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the rollout's JSON: {e}"))?;
    let number = |v: &serde_json::Value, key: &str| {
        v[key]
            .as_u64()
            .ok_or_else(|| format!("the rollout's JSON has no number {key:?}"))
    };
    let rows = value["rollouts"]
        .as_array()
        .ok_or("the rollout's JSON has no \"rollouts\"")?
        .iter()
        .map(|row| {
            let ours = row["role"] == "target";
            let server = row["server"].as_str().unwrap_or_default();
            let failures = row["failures"]
                .as_object()
                .map(|map| {
                    map.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default();
            let restarts = row["restarts"].as_array().cloned().unwrap_or_default();
            Ok(Row {
                server: report_name(server, ours),
                ours,
                balancer: row["lb"].as_str().unwrap_or_default().to_owned(),
                requests: number(row, "requests")?,
                failures,
                lost: row["lost"].as_u64(),
                unanswered: row["unanswered"].as_u64(),
                drains: restarts
                    .iter()
                    .filter_map(|r| r["drain_s"].as_f64())
                    .collect(),
                exits: restarts
                    .iter()
                    .filter_map(|r| r["exit"].as_str().map(str::to_owned))
                    .collect(),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Figure {
        instances: number(&value, "instances")?,
        clients: number(&value, "clients")?,
        unready_delay_ms: number(&value, "unready_delay_ms")?,
        work_ms: number(&value, "work_ms")?,
        rows,
    })
}

/// The arguments of `cargo xtask rollout` for the figure, writing to
/// `json`: every adapter's target and nginx too in the full run, the tokio
/// target behind HAProxy only with `--quick`; the peers beside them.
fn args(quick: bool, json: &str) -> Vec<String> {
    let mut args: Vec<String> = ["run", "--package", "xtask", "--quiet", "--", "rollout"]
        .map(str::to_owned)
        .into();
    args.push("--peers".to_owned());
    for lb in balancers(quick) {
        args.extend(["--lb".to_owned(), lb.to_owned()]);
    }
    args.extend([
        "--replace-delay-ms".to_owned(),
        REPLACE_DELAY_MS.to_string(),
    ]);
    let adapters = if quick { &ADAPTERS[..1] } else { &ADAPTERS[..] };
    for adapter in adapters {
        args.extend(["--adapter".to_owned(), (*adapter).to_owned()]);
    }
    args.extend(["--json".to_owned(), json.to_owned()]);
    args
}

/// The command line the report shows for the figure.
pub(crate) fn command(quick: bool) -> String {
    let args = args(quick, "");
    let rollout = args.iter().position(|a| a == "rollout").unwrap_or(0);
    let shown: Vec<&str> = args[rollout..args.len() - 2]
        .iter()
        .map(String::as_str)
        .collect();
    format!("cargo xtask {}", shown.join(" "))
}

/// Runs the rollout and reads what it found. Its own table goes to
/// standard error with the rest of the progress. A rollout in which one of
/// our targets failed exits 1 and is still a result: the report shows it.
pub(crate) fn measure(quick: bool) -> Result<Figure, String> {
    let json = std::env::temp_dir().join(format!(
        "graceful-bench-rollout-{}.json",
        std::process::id()
    ));
    let json_arg = json.display().to_string();
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("cannot share standard error with the rollout: {e}"))?;
    let status = cargo::cargo()
        .args(args(quick, &json_arg))
        .stdout(Stdio::from(stderr))
        .status()
        .map_err(|e| format!("cannot run cargo xtask rollout: {e}"))?;
    let text = std::fs::read_to_string(&json);
    let _ = std::fs::remove_file(&json);
    match (status.code(), text) {
        (Some(0 | 1), Ok(text)) => parse(&text),
        _ => Err(format!("`cargo xtask rollout` failed ({status})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{
      "instances": 2, "clients": 8, "unready_delay_ms": 3000, "replace_delay_ms": 3000,
      "work_ms": 20,
      "rollouts": [
        {"server": "tokio", "role": "target", "lb": "haproxy", "requests": 7489,
         "failed": 0, "failures": {}, "orders": 1870, "jobs": null, "lost": 0,
         "unanswered": 0, "twice": 0, "passed": true, "took_s": 28.0,
         "restarts": [{"exit": "code 0", "clean": true, "drain_s": 3.0},
                      {"exit": "code 0", "clean": true, "drain_s": 3.01}]},
        {"server": "axum", "role": "peer", "lb": "haproxy-no-retries", "requests": 3796,
         "failed": 16, "failures": {"503": 16}, "orders": 941, "jobs": null, "lost": null,
         "unanswered": null, "twice": null, "passed": false, "took_s": 16.0,
         "restarts": [{"exit": "code 0", "clean": true, "drain_s": 0.01}]}
      ]
    }"#;

    #[test]
    fn reads_the_rollouts_json() {
        let figure = parse(JSON).unwrap();
        assert_eq!(
            (figure.instances, figure.clients, figure.work_ms),
            (2, 8, 20)
        );
        assert_eq!(figure.unready_delay_ms, 3000);
        let [ours, peer] = figure.rows.as_slice() else {
            panic!("two rows: {figure:?}")
        };
        assert_eq!(ours.server, "graceful-tokio");
        assert!(ours.ours && !peer.ours);
        assert_eq!(
            (ours.failed(), ours.lost, ours.unanswered),
            (0, Some(0), Some(0))
        );
        assert_eq!(ours.drains, [3.0, 3.01]);
        assert_eq!(peer.server, "axum");
        assert_eq!(peer.balancer, "haproxy-no-retries");
        assert_eq!((peer.failed(), peer.lost), (16, None));
        assert_eq!(peer.exits, ["code 0"]);
    }

    #[test]
    fn a_broken_file_is_an_error() {
        assert!(parse("{").is_err());
        assert!(parse(r#"{"rollouts": []}"#).is_err(), "settings missing");
    }

    #[test]
    fn quick_restarts_the_tokio_target_beside_the_peers() {
        let quick = args(true, "/tmp/x.json").join(" ");
        assert!(quick.contains("rollout --peers --lb haproxy --lb haproxy-no-retries --replace"));
        assert!(quick.contains("--replace-delay-ms 3000 --adapter tokio --json /tmp/x.json"));
    }

    #[test]
    fn shows_the_command_without_the_json_file() {
        assert_eq!(
            command(true),
            "cargo xtask rollout --peers --lb haproxy --lb haproxy-no-retries \
             --replace-delay-ms 3000 --adapter tokio"
        );
    }

    #[test]
    fn the_full_run_restarts_every_adapter_behind_every_balancer() {
        let full = args(false, "/tmp/x.json").join(" ");
        assert!(full.contains("rollout --peers --lb haproxy --lb haproxy-no-retries --lb nginx"));
        assert!(full.contains(
            "--replace-delay-ms 3000 --adapter tokio --adapter smol --adapter actix --json /tmp/x.json"
        ));
    }
}
