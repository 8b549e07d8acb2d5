//! What the unit tests share: a shutdown run to its end on a manual clock,
//! and a scratch directory.

use crate::events::event_line;
use graceful_core::{ManualClock, Shutdown};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;
use std::{fs, process};

/// Runs a shutdown to its end on a manual clock and collects its contract
/// lines. `build` sets the shutdown up and requests it; what it returns is
/// kept until the end.
pub(crate) fn lines_of<K>(build: impl FnOnce(&Shutdown) -> K) -> Vec<String> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let driver = {
        let lines = lines.clone();
        Shutdown::builder()
            .drain_timeout(Duration::from_millis(100))
            .on_event(move |event| lines.lock().unwrap().extend(event_line(event)))
            .build()
            .unwrap()
    };
    let shutdown = driver.handle();
    let clock = Arc::new(ManualClock::new());
    let mut run = pin!(driver.run(clock.clone()));
    let _kept = build(&shutdown);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100 {
        if run.as_mut().poll(&mut cx).is_ready() {
            return lines.lock().unwrap().clone();
        }
        clock.advance(Duration::from_millis(50));
    }
    panic!("the shutdown never ended: {:?}", lines.lock().unwrap());
}

/// A fresh directory for one test, removed on drop.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new(label: &str) -> Scratch {
        // Relaxed: the counter only has to hand out distinct numbers.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("graceful-targets-{label}-{}-{n}", process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Scratch(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
