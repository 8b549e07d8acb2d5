//! Running cargo: building this crate's servers, finding the conformance
//! targets (`cargo xtask targets`), running the guard bench.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace root (the parent of this crate).
pub(crate) fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// A `cargo` command run in the workspace root: the cargo that runs us,
/// if it does, so that its toolchain and target directory are used.
pub(crate) fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(workspace_root());
    command
}

/// Builds `bins` of this crate in release mode; returns their executables
/// by name. Cargo's own messages go to standard error.
pub(crate) fn build_bins(bins: &[&str]) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut command = cargo();
    command.args([
        "build",
        "--release",
        "--package",
        env!("CARGO_PKG_NAME"),
        "--message-format=json-render-diagnostics",
    ]);
    for bin in bins {
        command.args(["--bin", bin]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let mut built = BTreeMap::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if message["reason"] != "compiler-artifact" {
                continue;
            }
            if let (Some(name), Some(executable)) = (
                message["target"]["name"].as_str(),
                message["executable"].as_str(),
            ) {
                built.insert(name.to_owned(), PathBuf::from(executable));
            }
        }
    }
    let status = child.wait().map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("building the bench servers failed ({status})"));
    }
    match bins.iter().find(|bin| !built.contains_key(**bin)) {
        Some(missing) => Err(format!("cargo built no executable named {missing}")),
        None => Ok(built),
    }
}

/// The conformance targets, as `cargo xtask targets` builds and lists
/// them: `(NAME, PATH)`.
pub(crate) fn xtask_targets() -> Result<Vec<(String, PathBuf)>, String> {
    let output = cargo()
        .args(["run", "--package", "xtask", "--quiet", "--", "targets"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo xtask targets: {e}"))?;
    if !output.status.success() {
        return Err(format!("`cargo xtask targets` failed ({})", output.status));
    }
    parse_targets(&String::from_utf8_lossy(&output.stdout))
}

/// Parses `NAME PATH` lines.
pub(crate) fn parse_targets(text: &str) -> Result<Vec<(String, PathBuf)>, String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.trim()
                .split_once(' ')
                .map(|(name, path)| (name.to_owned(), PathBuf::from(path.trim())))
                .ok_or_else(|| format!("not a `NAME PATH` line: {line:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_target_lines() {
        let targets = parse_targets("tokio /t/tokio-target\n\nactix /t/a b\n").unwrap();
        assert_eq!(
            targets,
            [
                ("tokio".to_owned(), PathBuf::from("/t/tokio-target")),
                ("actix".to_owned(), PathBuf::from("/t/a b")),
            ]
        );
        assert!(parse_targets("tokio").is_err());
    }
}
