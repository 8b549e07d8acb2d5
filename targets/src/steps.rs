//! The cleanup steps: which are registered, in what order, and how each is
//! told to end.
//!
//! The contract registers a step named [`STORE`] first when there is a
//! `--store` (it closes the store, and so runs last), then the `--cleanup`
//! steps in the order given. `--cleanup-fail`, `--cleanup-panic` and
//! `--cleanup-hang` tell a step to end otherwise than `ok` ([`Told`]); the
//! core does the rest: one step at a time, the last registered first, each
//! bounded by the cleanup timeout, a panic caught and reported.

use crate::store::Store;
use graceful_core::Shutdown;
use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

/// The name of the cleanup step that closes the [`Store`].
pub const STORE: &str = "store";

/// A cleanup step: its name, and how it is told to end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The name it is registered under.
    pub name: String,
    /// How it ends, after its work.
    pub told: Told,
}

/// What a cleanup step is told to do (`--cleanup-fail`, `--cleanup-panic`,
/// `--cleanup-hang`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Told {
    /// End `ok`.
    Succeed,
    /// Return an error.
    Fail,
    /// Panic.
    Panic,
    /// Never finish by itself.
    Hang,
}

impl Told {
    /// What a step does after its work: succeed, return an error, panic, or
    /// never finish.
    ///
    /// # Errors
    ///
    /// When told to fail.
    ///
    /// # Panics
    ///
    /// When told to panic.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it holds nothing. A step told to hang ends only by being
    /// dropped, which is what the core's cleanup timeout does.
    pub async fn behave(self) -> io::Result<()> {
        match self {
            Told::Succeed => Ok(()),
            Told::Fail => Err(io::Error::other("told to fail")),
            Told::Panic => panic!("told to panic"),
            Told::Hang => std::future::pending().await,
        }
    }
}

impl fmt::Display for Told {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Told::Succeed => "succeed",
            Told::Fail => "fail",
            Told::Panic => "panic",
            Told::Hang => "hang",
        })
    }
}

/// The steps in registration order: [`STORE`] first when there is a
/// store, then `cleanup`; then each `(option, told, names)` tells the steps
/// it names. On a bad name, the option at fault and why.
pub(crate) fn plan(
    store: bool,
    cleanup: &[String],
    told: [(&'static str, Told, &[String]); 3],
) -> Result<Vec<Step>, (&'static str, String)> {
    let mut steps: Vec<Step> = Vec::new();
    let store = store.then(|| STORE.to_owned());
    for name in store.iter().chain(cleanup) {
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(("--cleanup", format!("`{name}` is not a step name")));
        }
        if steps.iter().any(|step| step.name == *name) {
            return Err(("--cleanup", format!("step `{name}` is named twice")));
        }
        steps.push(Step {
            name: name.clone(),
            told: Told::Succeed,
        });
    }
    for (option, told, names) in told {
        for name in names {
            match steps.iter_mut().find(|step| step.name == *name) {
                None => return Err((option, format!("no cleanup step is named `{name}`"))),
                Some(step) if step.told != Told::Succeed && step.told != told => {
                    let already = step.told;
                    return Err((
                        option,
                        format!("step `{name}` is already told to {already}"),
                    ));
                }
                Some(step) => step.told = told,
            }
        }
    }
    Ok(steps)
}

/// Registers `steps` on `shutdown`, in order: the [`STORE`] step, when
/// there is a `store`, closes it with `close`; the others `sleep` for
/// `work`. Then each behaves as [`Told`].
///
/// Registration stops at the first refusal: a signal came during start-up
/// and cleanup has begun; what is registered so far is what runs.
pub(crate) fn register<S, SF, C, CF>(
    shutdown: &Shutdown,
    steps: &[Step],
    work: Duration,
    store: Option<&Store>,
    sleep: S,
    close: C,
) where
    S: FnOnce(Duration) -> SF + Clone + Send + 'static,
    SF: Future + Send + 'static,
    C: FnOnce(Store) -> CF + Clone + Send + 'static,
    CF: Future<Output = io::Result<()>> + Send + 'static,
{
    for step in steps {
        let told = step.told;
        let store = store.filter(|_| step.name == STORE).cloned();
        let (sleep, close) = (sleep.clone(), close.clone());
        let registered = shutdown.on_cleanup(step.name.clone(), move || async move {
            match store {
                Some(store) => close(store).await?,
                None => {
                    sleep(work).await;
                }
            }
            told.behave().await
        });
        if registered.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Insert;
    use crate::testing::{Scratch, lines_of};
    use crate::{Journal, Options};
    use graceful_core::Signal;
    use std::pin::pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    #[test]
    fn told_steps_behave() {
        let mut cx = Context::from_waker(Waker::noop());
        let poll = |told: Told, cx: &mut Context<'_>| {
            let mut future = pin!(told.behave());
            future.as_mut().poll(cx).map(|result| result.is_ok())
        };
        assert_eq!(poll(Told::Succeed, &mut cx), Poll::Ready(true));
        assert_eq!(poll(Told::Fail, &mut cx), Poll::Ready(false));
        assert_eq!(poll(Told::Hang, &mut cx), Poll::Pending);
        let panicked = std::panic::catch_unwind(|| {
            let mut cx = Context::from_waker(Waker::noop());
            let _ = poll(Told::Panic, &mut cx);
        });
        assert!(panicked.is_err());
    }

    #[test]
    fn cleanup_is_registered_in_order_with_its_work() {
        let dir = Scratch::new("cleanup");
        let path = dir.path().join("o.sqlite");
        let options = Options::try_parse_from(
            "test-target",
            [
                "test-target",
                "--store",
                &path.to_string_lossy(),
                "--cleanup",
                "a,b",
                "--cleanup-ms",
                "7",
                "--cleanup-fail",
                "a",
            ],
        )
        .unwrap();
        let store = options.open_store(Journal::Rollback);
        let done = Arc::new(Mutex::new(Vec::new()));
        let lines = lines_of(|shutdown| {
            let (slept, closed) = (done.clone(), done.clone());
            let sleep = move |time: Duration| {
                slept
                    .lock()
                    .unwrap()
                    .push(format!("slept {}", time.as_millis()));
                std::future::ready(())
            };
            let close = move |store: Store| {
                closed.lock().unwrap().push("closed".to_owned());
                std::future::ready(store.close())
            };
            options.register_cleanup(shutdown, store.as_ref(), sleep, close);
            let _ = shutdown.request(Signal::TERM);
        });
        assert_eq!(
            lines[lines.len() - 3..],
            ["cleanup b ok", "cleanup a error", "cleanup store ok"]
        );
        assert_eq!(*done.lock().unwrap(), ["slept 7", "slept 7", "closed"]);
        let store = store.unwrap();
        assert_eq!(store.insert("late"), Err(Insert::Failed), "closed");
    }
}
