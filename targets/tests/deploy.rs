//! The Kubernetes manifest of `deploy/kubernetes/` gives the server the
//! grace period its settings need: `terminationGracePeriodSeconds` is at
//! least `Builder::grace_period_needed` for the container's own command
//! line, with every cleanup step it registers at its full timeout.

use graceful_core::Shutdown;
use graceful_targets::Options;
use std::path::Path;
use std::time::Duration;

/// The value of `terminationGracePeriodSeconds`, and the container's
/// `args` (the manifest's one container).
fn read(manifest: &str) -> Result<(u64, Vec<String>), String> {
    let mut grace = None;
    let mut args = Vec::new();
    let mut in_args = None;
    for line in manifest.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if let Some(value) = trimmed.strip_prefix("terminationGracePeriodSeconds:") {
            grace = Some(
                value
                    .trim()
                    .parse::<u64>()
                    .map_err(|e| format!("terminationGracePeriodSeconds: {e}"))?,
            );
        }
        if let Some(args_indent) = in_args {
            match trimmed.strip_prefix("- ") {
                Some(item) if indent >= args_indent => {
                    args.push(item.trim().trim_matches('"').to_owned());
                    continue;
                }
                _ => in_args = None,
            }
        }
        if trimmed == "args:" {
            in_args = Some(indent);
        }
    }
    let grace = grace.ok_or("no terminationGracePeriodSeconds")?;
    if args.is_empty() {
        return Err("no container args".into());
    }
    Ok((grace, args))
}

/// `Ok(needed)` when the manifest's grace period covers what its server's
/// settings need, else what is wrong.
fn check(manifest: &str) -> Result<Duration, String> {
    let (grace, args) = read(manifest)?;
    let options = Options::try_parse_from(
        "tokio-target",
        std::iter::once("tokio-target".to_owned()).chain(args),
    )
    .map_err(|e| format!("the container's args are not the server's: {e}"))?;
    let needed = Shutdown::builder()
        .unready_delay(options.unready_delay)
        .drain_timeout(options.drain_timeout)
        .cleanup_timeout(options.cleanup_timeout)
        .grace_period_needed(options.steps.len());
    let grace = Duration::from_secs(grace);
    if needed > grace {
        return Err(format!(
            "terminationGracePeriodSeconds is {grace:?}, the settings need {needed:?}"
        ));
    }
    Ok(needed)
}

fn manifest() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/deployment.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_manifest_gives_the_grace_period_the_settings_need() {
    let needed = check(&manifest()).unwrap();
    // unready 10 s + drain 15 s + the store step 3 s + 1 s of margin.
    assert_eq!(needed, Duration::from_secs(29));
}

#[test]
fn a_grace_period_too_short_for_the_settings_is_caught() {
    let short = manifest().replace(
        "terminationGracePeriodSeconds: 30",
        "terminationGracePeriodSeconds: 28",
    );
    assert_ne!(short, manifest(), "the manifest's grace period moved");
    let error = check(&short).unwrap_err();
    assert!(error.contains("need"), "{error}");
    // One more cleanup step needs 3 s more than the manifest gives.
    let more_steps = manifest().replace(
        "- /data/orders.db",
        "- /data/orders.db\n            - --cleanup\n            - flush",
    );
    assert!(check(&more_steps).unwrap_err().contains("need"));
}

#[test]
fn args_the_server_refuses_are_caught() {
    let bad = manifest().replace("- --drain-timeout-ms", "- --drain-timeout");
    assert!(check(&bad).unwrap_err().contains("args"));
}
