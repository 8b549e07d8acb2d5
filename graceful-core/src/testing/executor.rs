//! The single-threaded executor, and the picks that decide which ready task
//! it polls next.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The scheduling choices of one run: each time more than one task is
/// ready, the next pick (modulo the number of ready tasks) chooses which is
/// polled; once the picks run out, the one woken first is.
///
/// A choice is drawn only where there is one, so each pick matters, and an
/// empty list (what a failure shrinks towards) is first-woken-first-polled.
#[derive(Clone, Debug, Default)]
pub struct Picks {
    picks: Vec<u8>,
    next: usize,
}

impl Picks {
    /// Picks from a list.
    pub fn new(picks: Vec<u8>) -> Picks {
        Picks { picks, next: 0 }
    }

    /// Chooses one of `ready` tasks: an index below `ready`.
    ///
    /// # Panics
    ///
    /// When `ready` is zero.
    pub fn pick(&mut self, ready: usize) -> usize {
        assert!(ready > 0, "a pick needs at least one ready task");
        if ready == 1 {
            return 0;
        }
        match self.picks.get(self.next) {
            Some(&pick) => {
                self.next += 1;
                usize::from(pick) % ready
            }
            None => 0,
        }
    }
}

/// A task, by the order it was spawned in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(usize);

impl TaskId {
    /// Its index: 0 for the first task spawned.
    pub fn index(self) -> usize {
        self.0
    }
}

/// Where a task stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Not finished: waiting, or ready to be polled.
    Pending,
    /// It returned.
    Done,
    /// It panicked, with the panic's message; it was dropped.
    Panicked(String),
}

/// The executor ran more polls than its budget without stalling: some task
/// wakes itself forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Livelock {
    /// The budget that ran out.
    pub polls: u64,
}

impl fmt::Display for Livelock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "still busy after {} polls without time moving: a task wakes itself forever",
            self.polls
        )
    }
}

impl std::error::Error for Livelock {}

/// The part of the executor that wakers and spawners reach.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// Ready tasks, in the order they were woken.
    ready: Vec<usize>,
    /// Whether each task is in `ready`, so a task is queued once.
    queued: Vec<bool>,
    /// Spawned and not yet taken in by the executor.
    inbox: Vec<(usize, String, Task)>,
    next_id: usize,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Poisoning is ignored: the queue's invariants hold at every
        // unlock, and the executor catches the panics of its tasks.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self, id: usize) {
        let mut queue = self.queue();
        if let Some(queued) = queue.queued.get_mut(id)
            && !*queued
        {
            *queued = true;
            queue.ready.push(id);
        }
    }
}

struct TaskWaker {
    id: usize,
    shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.shared.wake(self.id);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared.wake(self.id);
    }
}

/// Spawns tasks onto an [`Executor`] from anywhere, its own tasks included.
/// Cheap to clone.
#[derive(Clone)]
pub struct Spawner {
    shared: Arc<Shared>,
}

impl Spawner {
    /// Spawns `future` as a task named `name`. It is polled once the
    /// executor runs again, in its turn.
    pub fn spawn<F>(&self, name: impl Into<String>, future: F) -> TaskId
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut queue = self.shared.queue();
        let id = queue.next_id;
        queue.next_id += 1;
        queue.queued.push(true);
        queue.ready.push(id);
        queue.inbox.push((id, name.into(), Box::pin(future)));
        TaskId(id)
    }
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner").finish_non_exhaustive()
    }
}

/// A deterministic, single-threaded executor that polls a task only after
/// its waker was called, choosing among the ready ones with [`Picks`].
///
/// Design: a task that is never woken is never polled again, as on a real
/// runtime, so a lost wake-up shows as work that never ends, not as a test
/// that passes because everything is polled all the time. Panics are caught
/// per task: the task is dropped (its guards leave, as when a runtime's
/// task panics) and its state says why.
pub struct Executor {
    shared: Arc<Shared>,
    tasks: Vec<Option<Task>>,
    names: Vec<String>,
    states: Vec<TaskState>,
    wakers: Vec<Waker>,
    polls: u64,
}

impl Executor {
    /// An executor with no task.
    pub fn new() -> Executor {
        Executor {
            shared: Arc::new(Shared::default()),
            tasks: Vec::new(),
            names: Vec::new(),
            states: Vec::new(),
            wakers: Vec::new(),
            polls: 0,
        }
    }

    /// A spawner for this executor.
    pub fn spawner(&self) -> Spawner {
        Spawner {
            shared: self.shared.clone(),
        }
    }

    /// Spawns `future` as a task named `name`, ready to be polled.
    pub fn spawn<F>(&mut self, name: impl Into<String>, future: F) -> TaskId
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawner().spawn(name, future)
    }

    /// Polls ready tasks, one at a time in the order `picks` chooses, until
    /// none is ready or `after`, called after each poll, breaks. Returns the
    /// number of polls.
    ///
    /// # Errors
    ///
    /// [`Livelock`] when more than `budget` polls ran in this call.
    pub fn run_until_stalled(
        &mut self,
        picks: &mut Picks,
        budget: u64,
        mut after: impl FnMut(TaskId, &TaskState) -> ControlFlow<()>,
    ) -> Result<u64, Livelock> {
        let mut polls = 0;
        loop {
            let id = {
                let shared = self.shared.clone();
                let mut queue = shared.queue();
                self.adopt(&mut queue);
                if queue.ready.is_empty() {
                    return Ok(polls);
                }
                let chosen = picks.pick(queue.ready.len());
                let id = queue.ready.remove(chosen);
                queue.queued[id] = false;
                id
            };
            if polls == budget {
                return Err(Livelock { polls: budget });
            }
            polls += 1;
            self.polls += 1;
            self.poll(id);
            if after(TaskId(id), &self.states[id]).is_break() {
                let shared = self.shared.clone();
                let mut queue = shared.queue();
                self.adopt(&mut queue);
                return Ok(polls);
            }
        }
    }

    /// Takes in the tasks spawned since the last call.
    fn adopt(&mut self, queue: &mut Queue) {
        for (id, name, task) in queue.inbox.drain(..) {
            debug_assert_eq!(id, self.tasks.len(), "ids are handed out in order");
            self.tasks.push(Some(task));
            self.names.push(name);
            self.states.push(TaskState::Pending);
            self.wakers.push(Waker::from(Arc::new(TaskWaker {
                id,
                shared: self.shared.clone(),
            })));
        }
    }

    fn poll(&mut self, id: usize) {
        let Some(task) = self.tasks[id].as_mut() else {
            // Woken after it finished: a stale waker, harmless.
            return;
        };
        let mut cx = Context::from_waker(&self.wakers[id]);
        match catch_unwind(AssertUnwindSafe(|| task.as_mut().poll(&mut cx))) {
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(())) => {
                self.tasks[id] = None;
                self.states[id] = TaskState::Done;
            }
            Err(payload) => {
                self.tasks[id] = None;
                self.states[id] = TaskState::Panicked(panic_message(&*payload));
            }
        }
    }

    /// Where task `id` stands: [`Pending`](TaskState::Pending) too while it
    /// waits to be taken in by a run.
    pub fn state(&self, id: TaskId) -> TaskState {
        self.states.get(id.0).cloned().unwrap_or(TaskState::Pending)
    }

    /// The name task `id` was spawned under, once a run took it in.
    pub fn name(&self, id: TaskId) -> Option<&str> {
        self.names.get(id.0).map(String::as_str)
    }

    /// The tasks taken in by a run that have not finished.
    pub fn pending(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.states
            .iter()
            .enumerate()
            .filter(|(_, state)| **state == TaskState::Pending)
            .map(|(id, _)| TaskId(id))
    }

    /// Polls run since the executor was made.
    pub fn polls(&self) -> u64 {
        self.polls
    }
}

impl Default for Executor {
    fn default() -> Executor {
        Executor::new()
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("tasks", &self.tasks.len())
            .field("pending", &self.pending().count())
            .field("polls", &self.polls)
            .finish()
    }
}

pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
