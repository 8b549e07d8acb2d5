//! The scratch directory of one scenario run, removed on drop.
//!
//! A run's directory is always one it made: it is created with
//! `create_dir`, which fails on a directory that is already there, so a run
//! never reads another run's store file, and never removes, on drop, a
//! directory it does not own. Names carry the process id and a counter; a
//! name that is taken (a leftover of an earlier process with the same id)
//! is skipped for the next one. Any other failure ends the attempt, with an
//! error that names the path.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use std::{fs, io, process};

/// How many taken names are skipped before giving up.
const ATTEMPTS: usize = 16;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh directory, made for one run.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Makes a fresh directory under the system's temporary directory.
    ///
    /// # Errors
    ///
    /// When it cannot be made (the temporary directory is missing or not
    /// writable, or every name tried is taken); the error names the path.
    pub(crate) fn new(label: &str) -> io::Result<Self> {
        let parent = std::env::temp_dir();
        let names = (0..ATTEMPTS).map(|_| parent.join(fresh_name(label)));
        Self::create(&parent, names)
    }

    /// Makes the first of `candidates` that is not there yet.
    fn create(parent: &Path, candidates: impl IntoIterator<Item = PathBuf>) -> io::Result<Self> {
        for path in candidates {
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => {
                    return Err(io::Error::new(
                        error.kind(),
                        format!("cannot make {}: {error}", path.display()),
                    ));
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "cannot make a fresh directory in {}: every name tried is taken",
                parent.display()
            ),
        ))
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory, as a command-line argument.
    pub(crate) fn file(&self, name: &str) -> String {
        self.path.join(name).to_string_lossy().into_owned()
    }
}

/// `graceful-conformance-LABEL-PID-N-NANOS`: N is unique in this process,
/// the nanoseconds set apart the runs of processes that share an id.
fn fresh_name(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Relaxed: the counter only hands out distinct numbers; nothing else is
    // ordered by it.
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("graceful-conformance-{label}-{}-{n}-{nanos}", process::id())
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_gets_a_directory_of_its_own() {
        let (a, b) = (TempDir::new("t").unwrap(), TempDir::new("t").unwrap());
        assert_ne!(a.path(), b.path());
        assert!(a.path().is_dir() && b.path().is_dir());
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists(), "removed on drop");
    }

    #[test]
    fn a_directory_already_there_is_never_reused() {
        let parent = TempDir::new("parent").unwrap();
        let taken = parent.path().join("taken");
        fs::create_dir(&taken).unwrap();
        fs::write(taken.join("store.sqlite"), "another run's").unwrap();
        let fresh = parent.path().join("fresh");

        let dir = TempDir::create(parent.path(), [taken.clone(), fresh.clone()]).unwrap();
        assert_eq!(dir.path(), fresh, "the taken name is skipped");
        drop(dir);
        assert!(taken.join("store.sqlite").is_file(), "left alone");

        let error = TempDir::create(parent.path(), [taken.clone()]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert!(error.to_string().contains("every name tried is taken"));
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_a_clear_error() {
        let parent = TempDir::new("parent").unwrap();
        let missing = parent.path().join("missing");
        let path = missing.join("run");
        let error = TempDir::create(&missing, [path.clone()]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        let text = error.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
    }
}
