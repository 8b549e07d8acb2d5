//! The packed shutdown state: phase, flags and in-flight count in one word.
//!
//! # Invariants
//!
//! 1. The phase only moves forward: `Running < Unready < Draining <
//!    CleaningUp < Finished`. Every write of the phase is a compare-and-swap
//!    that refuses to move it backwards.
//! 2. The in-flight count is incremented only by a compare-and-swap that
//!    observed a phase below `Draining` in the same word. So once any thread
//!    has seen `Draining` (or later), the count can only go down: no guard is
//!    ever granted after draining began, whatever the interleaving. The one
//!    exception is [`State::try_join`]: a compare-and-swap that observed the
//!    phase `Draining`, no `ABANDONED` flag and a count above zero. It never
//!    makes the count leave zero, so once the drain is over (the count at
//!    zero while draining) it stays over.
//! 3. The flags `FORCED` and `ABANDONED` are set once and never cleared.
//!    `FORCED` is only ever set together with the phase `Finished`.
//! 4. Whoever makes the condition "phase ≥ `Draining` and count = 0" true
//!    (the last guard leaving while draining, or the phase reaching
//!    `Draining` with no guard alive) notifies the wait list afterwards.
//!    Every other transition that a waiter may wait for (any phase change, a
//!    flag, a listener closing) is also followed by a notification.
//! 5. A waiter re-checks its condition after taking the wait-list lock and
//!    before storing its waker (see [`crate::waiters`]), so a notification
//!    that falls between its first check and its registration is not lost.

use crate::sync::{AtomicUsize, Ordering};
use std::fmt;

const PHASE_MASK: usize = 0b111;
const FORCED: usize = 1 << 3;
const ABANDONED: usize = 1 << 4;
const COUNT_SHIFT: u32 = 5;
/// One in-flight request, in units of the packed word.
const ONE: usize = 1 << COUNT_SHIFT;

/// Where a shutdown stands. Phases only move forward.
///
/// ```text
/// Running ──request──▶ Unready ──delay──▶ Draining ──drained or deadline──▶ CleaningUp ──▶ Finished
///                         └──────────────── second request (forced) ────────────────────────▲
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Serving normally; readiness reports true.
    Running = 0,
    /// Shutdown requested. Readiness reports false, everything else is still
    /// served (the load balancer's deregistration window).
    Unready = 1,
    /// Accepting has stopped; requests in progress continue, new work is
    /// refused.
    Draining = 2,
    /// The cleanup steps are running, last registered first.
    CleaningUp = 3,
    /// The outcome is decided: cleanup ended, or a second request forced it.
    Finished = 4,
}

impl Phase {
    #[inline]
    fn from_bits(bits: usize) -> Phase {
        match bits & PHASE_MASK {
            0 => Phase::Running,
            1 => Phase::Unready,
            2 => Phase::Draining,
            3 => Phase::CleaningUp,
            _ => Phase::Finished,
        }
    }

    /// The phase's name in lowercase, as used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Unready => "unready",
            Phase::Draining => "draining",
            Phase::CleaningUp => "cleaning up",
            Phase::Finished => "finished",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One consistent reading of the packed word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot(usize);

impl Snapshot {
    #[inline]
    pub(crate) fn phase(self) -> Phase {
        Phase::from_bits(self.0)
    }

    /// Whether the phase is `phase` or later: one compare of the phase
    /// bits, as the phases' numbers follow their order, where
    /// [`Snapshot::phase`] maps the bits through a match first (guards test
    /// this on every enter and leave).
    #[inline]
    pub(crate) fn reached(self, phase: Phase) -> bool {
        self.0 & PHASE_MASK >= phase as usize
    }

    #[inline]
    pub(crate) fn in_flight(self) -> usize {
        self.0 >> COUNT_SHIFT
    }

    pub(crate) fn forced(self) -> bool {
        self.0 & FORCED != 0
    }

    pub(crate) fn abandoned(self) -> bool {
        self.0 & ABANDONED != 0
    }

    /// Draining (or later) with nothing in flight.
    pub(crate) fn drained(self) -> bool {
        self.reached(Phase::Draining) && self.in_flight() == 0
    }
}

/// The packed word. See the module documentation for its invariants.
pub(crate) struct State(AtomicUsize);

impl State {
    pub(crate) fn new() -> State {
        State(AtomicUsize::new(Phase::Running as usize))
    }

    /// Reads the word. Inlined: adapters read the phase once per response
    /// ([`crate::InFlight::draining`]), and the call would outweigh the load.
    #[inline]
    pub(crate) fn load(&self) -> Snapshot {
        // Acquire: pairs with the Release of `leave`, so that a reader who
        // sees the count at zero also sees everything the finished requests
        // did (the cleanup steps run after such a reading).
        Snapshot(self.0.load(Ordering::Acquire))
    }

    /// Counts one more request in flight, unless draining has begun.
    #[inline]
    pub(crate) fn try_enter(&self) -> Result<(), Phase> {
        self.try_increment(|s| !s.reached(Phase::Draining))
    }

    /// Counts one more request in flight while draining, as long as the
    /// drain is not over: the phase is below `Draining`, or it is `Draining`
    /// with requests still in flight and the deadline not passed. For work
    /// a protocol must still take once new work is refused elsewhere (an
    /// HTTP/2 stream the client opened before the server's final GOAWAY).
    pub(crate) fn try_join(&self) -> Result<(), Phase> {
        self.try_increment(|s| {
            s.phase() < Phase::Draining
                || (s.phase() == Phase::Draining && s.in_flight() > 0 && !s.abandoned())
        })
    }

    /// Counts one more request in flight if `admits` the word as it is at
    /// the increment, else returns its phase.
    #[inline]
    fn try_increment(&self, admits: impl Fn(Snapshot) -> bool) -> Result<(), Phase> {
        // Relaxed: the decision depends only on this word's modification
        // order, which every compare-and-swap respects whatever its ordering
        // (invariant 2); entering publishes nothing to other threads.
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let snapshot = Snapshot(current);
            if !admits(snapshot) {
                return Err(snapshot.phase());
            }
            let next = increment(current);
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    /// Counts one request less. Returns true when the caller must notify
    /// the waiters (invariant 4).
    #[inline]
    pub(crate) fn leave(&self) -> bool {
        // Release: whatever the request did happens-before the Acquire load
        // that sees the count reach zero (the drain waiter, then cleanup).
        let previous = Snapshot(self.0.fetch_sub(ONE, Ordering::Release));
        debug_assert!(previous.in_flight() > 0, "guard count underflow");
        // "The count was one and the phase at least `Draining`", as one
        // range test on the word without its flags: it lies between
        // `ONE | Draining` and `ONE | PHASE_MASK`. Every leave pays for
        // this test, so it is three instructions, not two field reads.
        let word = previous.0 & !(FORCED | ABANDONED);
        word.wrapping_sub(ONE | Phase::Draining as usize) <= PHASE_MASK - Phase::Draining as usize
    }

    /// Counts `n` requests less at once (a connection's flush ends every
    /// request that waited for it). Returns true when the caller must
    /// notify the waiters (invariant 4): they were the last while draining.
    #[inline]
    pub(crate) fn leave_many(&self, n: usize) -> bool {
        // Release: as in `leave`.
        let previous = Snapshot(self.0.fetch_sub(n * ONE, Ordering::Release));
        debug_assert!(previous.in_flight() >= n, "guard count underflow");
        // "The count was `n` and the phase at least `Draining`": `leave`'s
        // range test, shifted by `n`.
        let word = previous.0 & !(FORCED | ABANDONED);
        word.wrapping_sub((n * ONE) | Phase::Draining as usize)
            <= PHASE_MASK - Phase::Draining as usize
    }

    /// Moves the phase forward to `to`, setting `flags` with it. Returns the
    /// word as it was before, or `None` when the phase was already at or
    /// past `to` (nothing is written then).
    pub(crate) fn advance(&self, to: Phase, flags: Flags) -> Option<Snapshot> {
        // AcqRel: a phase change orders the shared data written before it
        // (the cause, under the lock) with readers that see the new phase.
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            if Phase::from_bits(current) >= to {
                return None;
            }
            let next = (current & !PHASE_MASK) | to as usize | flags.0;
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(Snapshot(current)),
                Err(actual) => current = actual,
            }
        }
    }

    /// Sets `ABANDONED` when requests are still in flight, and returns how
    /// many; returns `None`, and sets nothing, when none is.
    pub(crate) fn mark_abandoned(&self) -> Option<usize> {
        // AcqRel: as for `advance`.
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            let in_flight = Snapshot(current).in_flight();
            if in_flight == 0 {
                return None;
            }
            match self.0.compare_exchange_weak(
                current,
                current | ABANDONED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(in_flight),
                Err(actual) => current = actual,
            }
        }
    }
}

/// The word with one more request counted.
///
/// The count is the word's top bits, so adding one to the largest count
/// would carry out of the word and leave it at zero with requests alive.
/// On 64-bit targets the count has 59 bits: reaching its end takes 2^59
/// guards alive at once (each enter without its leave: a guard leaked with
/// `mem::forget`, one every nanosecond, for 18 years), so the check would
/// guard nothing real and costs two instructions on every enter, the
/// hottest path of the crate (figure 1 of BENCHMARKS.md); debug builds
/// still check. On 32-bit targets the count has 27 bits, 134 million
/// leaked guards, which a loop can reach in seconds: there the add checks,
/// in the add itself (`checked_add` sees the carry, one branch, not a
/// shift and a compare).
#[inline]
fn increment(word: usize) -> usize {
    #[cfg(target_pointer_width = "64")]
    {
        debug_assert!(word.checked_add(ONE).is_some(), "in-flight count overflow");
        word.wrapping_add(ONE)
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        word.checked_add(ONE).expect("in-flight count overflow")
    }
}

/// Flags set together with a phase change.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flags(usize);

impl Flags {
    pub(crate) const NONE: Flags = Flags(0);
    /// A second request decided the outcome; forcing also abandons.
    pub(crate) const FORCED: Flags = Flags(FORCED | ABANDONED);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn enter_is_refused_from_draining_on() {
        let state = State::new();
        assert!(state.try_enter().is_ok());
        assert!(state.advance(Phase::Unready, Flags::NONE).is_some());
        assert!(state.try_enter().is_ok());
        assert_eq!(state.load().in_flight(), 2);
        assert!(state.advance(Phase::Draining, Flags::NONE).is_some());
        assert_eq!(state.try_enter(), Err(Phase::Draining));
        assert!(!state.leave());
        assert!(state.leave(), "the last leave while draining notifies");
        assert!(state.load().drained());
    }

    #[test]
    fn joining_is_refused_once_the_drain_is_over() {
        let state = State::new();
        assert!(state.try_enter().is_ok());
        assert!(state.advance(Phase::Draining, Flags::NONE).is_some());
        assert!(state.try_enter().is_err());
        assert!(state.try_join().is_ok(), "the drain is not over");
        assert!(!state.leave());
        assert!(state.leave());
        assert_eq!(state.try_join(), Err(Phase::Draining), "it is over");
        assert_eq!(state.load().in_flight(), 0);
    }

    #[test]
    fn only_the_last_leave_from_draining_on_notifies() {
        for to in [
            Phase::Running,
            Phase::Unready,
            Phase::Draining,
            Phase::CleaningUp,
            Phase::Finished,
        ] {
            for flags in [Flags::NONE, Flags::FORCED] {
                let state = State::new();
                state.try_enter().unwrap();
                state.try_enter().unwrap();
                state.advance(to, flags);
                if state.load().phase() < to {
                    continue; // Flags::FORCED only comes with Finished.
                }
                assert!(!state.leave(), "{to:?}: one still in flight");
                assert_eq!(state.leave(), to >= Phase::Draining, "{to:?}, {flags:?}");
            }
        }
    }

    #[test]
    fn reached_follows_the_phase_order() {
        let phases = [
            Phase::Running,
            Phase::Unready,
            Phase::Draining,
            Phase::CleaningUp,
            Phase::Finished,
        ];
        for (i, now) in phases.iter().enumerate() {
            let snapshot = Snapshot(*now as usize | (7 << COUNT_SHIFT) | FORCED | ABANDONED);
            for (j, phase) in phases.iter().enumerate() {
                assert_eq!(
                    snapshot.reached(*phase),
                    i >= j,
                    "{now:?} reached {phase:?}"
                );
            }
        }
    }

    #[test]
    fn leaving_many_notifies_only_for_the_last_ones_while_draining() {
        let state = State::new();
        for _ in 0..3 {
            state.try_enter().unwrap();
        }
        assert!(!state.leave_many(2), "not draining");
        state.advance(Phase::Draining, Flags::NONE).unwrap();
        state.try_join().unwrap();
        state.try_join().unwrap();
        assert_eq!(state.load().in_flight(), 3);
        assert!(!state.leave_many(1), "two are left");
        assert!(state.leave_many(2), "the last two");
        assert!(state.load().drained());
        state.advance(Phase::Finished, Flags::FORCED).unwrap();
        assert!(state.load().drained());
    }

    #[test]
    fn phase_never_moves_backwards() {
        let state = State::new();
        assert!(state.advance(Phase::CleaningUp, Flags::NONE).is_some());
        assert!(state.advance(Phase::Draining, Flags::NONE).is_none());
        assert_eq!(state.load().phase(), Phase::CleaningUp);
    }

    #[test]
    fn forcing_sets_both_flags() {
        let state = State::new();
        state.advance(Phase::Finished, Flags::FORCED).unwrap();
        let now = state.load();
        assert!(now.forced() && now.abandoned());
        assert_eq!(now.phase(), Phase::Finished);
    }
}
