//! Cleanup steps: boxed, named, and run with panics caught.

use crate::error::BoxError;
use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

type StepFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// How a step starts: an async step makes its future, a sync step runs.
enum Start {
    Async(Box<dyn FnOnce() -> StepFuture + Send>),
    Sync(Box<dyn FnOnce() -> Result<(), BoxError> + Send>),
}

/// A registered cleanup step.
pub(crate) struct Step {
    pub(crate) name: Cow<'static, str>,
    start: Start,
}

impl Step {
    pub(crate) fn new_async<F, Fut, E>(name: Cow<'static, str>, step: F) -> Step
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Step {
            name,
            start: Start::Async(Box::new(move || {
                let future = step();
                Box::pin(async move { future.await.map_err(Into::into) })
            })),
        }
    }

    pub(crate) fn new_sync<F, E>(name: Cow<'static, str>, step: F) -> Step
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
        E: Into<BoxError>,
    {
        Step {
            name,
            start: Start::Sync(Box::new(move || step().map_err(Into::into))),
        }
    }

    /// Starts the step. Panics, in starting it or in polling it, come out as
    /// [`Ended::Panic`].
    pub(crate) fn start(self) -> Running {
        let started = catch_unwind(AssertUnwindSafe(move || match self.start {
            Start::Async(make) => Running::Future(make()),
            Start::Sync(run) => Running::Done(Some(Ended::from(run()))),
        }));
        started
            .unwrap_or_else(|payload| Running::Done(Some(Ended::Panic(panic_message(&*payload)))))
    }
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// How a step ended by itself.
#[derive(Debug)]
pub(crate) enum Ended {
    Ok,
    Error(String),
    Panic(String),
}

impl From<Result<(), BoxError>> for Ended {
    fn from(result: Result<(), BoxError>) -> Ended {
        match result {
            Ok(()) => Ended::Ok,
            Err(error) => Ended::Error(error.to_string()),
        }
    }
}

/// A started step, polled with panics caught.
pub(crate) enum Running {
    Future(StepFuture),
    Done(Option<Ended>),
}

impl Future for Running {
    type Output = Ended;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ended> {
        match self.get_mut() {
            Running::Done(ended) => Poll::Ready(ended.take().expect("polled after completion")),
            Running::Future(future) => {
                match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                    Ok(poll) => poll.map(Ended::from),
                    Err(payload) => Poll::Ready(Ended::Panic(panic_message(&*payload))),
                }
            }
        }
    }
}

/// A panic's message, for the report of a step or a job.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
