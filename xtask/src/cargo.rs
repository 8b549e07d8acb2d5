//! Running cargo from a task.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Failure;

/// The workspace root (the parent of this crate).
pub(crate) fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// A `cargo` command run in the workspace root; its standard output goes to
/// our standard error, so that a task's own stdout stays clean.
pub(crate) fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(workspace_root());
    command
}

/// Runs `cargo ARGS`, with its stdout sent to stderr.
pub(crate) fn run(args: &[&str]) -> Result<(), Failure> {
    let status = cargo()
        .args(args)
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| Failure::failed(format!("cannot run cargo: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "`cargo {}` failed ({status})",
            args.join(" ")
        )))
    }
}

/// The target directory, as `cargo metadata` reports it (this respects
/// `CARGO_TARGET_DIR` and the configuration files).
pub(crate) fn target_dir() -> Result<PathBuf, Failure> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Failure::failed(format!("cannot run cargo metadata: {e}")))?;
    if !out.status.success() {
        return Err(Failure::failed("`cargo metadata` failed"));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Failure::failed(format!("cargo metadata: {e}")))?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| Failure::failed("cargo metadata has no target_directory"))
}
