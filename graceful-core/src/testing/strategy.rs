//! The proptest strategy that draws schedules, and shrinks them towards the
//! smallest one that still fails.

use super::schedule::{Arrival, Fate, Schedule, SignalAt};
use crate::Signal;
use proptest::arbitrary::Arbitrary;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use std::time::Duration;

/// The shape of the schedules to draw: how long the window is, how many
/// requests come and how much work each brings, how many cleanup steps get
/// a drawn fate, and whether faults and second signals are in play.
///
/// `any::<Schedule>()` draws with the defaults; pass your own with
/// `any_with::<Schedule>(Schedules::default().work(...))` or
/// [`strategy`](Schedules::strategy).
///
/// Shrinking goes towards fewer requests, earlier times, less work, no
/// second signal, steps that succeed and first-woken-first-polled: the
/// smallest schedule that still breaks an invariant.
#[derive(Clone, Debug)]
#[must_use = "a strategy does nothing until it draws"]
pub struct Schedules {
    window: Duration,
    requests: usize,
    work: Duration,
    second_signal: bool,
    steps: usize,
    faults: bool,
    picks: usize,
}

impl Default for Schedules {
    /// The signal within 2 s and up to 6 requests within 2 s either side of
    /// it, each running on for up to 3 s past the signal (or its arrival),
    /// a second signal sometimes, fates for up to 4 steps with faults, and up
    /// to 16 scheduling choices.
    fn default() -> Schedules {
        Schedules {
            window: Duration::from_secs(2),
            requests: 6,
            work: Duration::from_secs(3),
            second_signal: true,
            steps: 4,
            faults: true,
            picks: 16,
        }
    }
}

impl Schedules {
    /// The window the first signal comes in; each request comes within a
    /// window's length either side of the signal (and not before zero).
    pub fn window(mut self, window: Duration) -> Schedules {
        self.window = window;
        self
    }

    /// At most this many requests.
    pub fn requests(mut self, max: usize) -> Schedules {
        self.requests = max;
        self
    }

    /// How long a request may run on past the signal (past its arrival,
    /// for one that comes after the signal): a request that came earlier
    /// brings that much more work.
    pub fn work(mut self, max: Duration) -> Schedules {
        self.work = max;
        self
    }

    /// Whether a second signal may come.
    pub fn second_signal(mut self, yes: bool) -> Schedules {
        self.second_signal = yes;
        self
    }

    /// Draw fates for this many cleanup steps (registered through
    /// [`Cx::on_cleanup`](super::Cx::on_cleanup)); `faults` says whether a
    /// fate may be a failure, a panic or a hang, or only a delay.
    pub fn steps(mut self, steps: usize, faults: bool) -> Schedules {
        self.steps = steps;
        self.faults = faults;
        self
    }

    /// At most this many scheduling choices.
    pub fn picks(mut self, max: usize) -> Schedules {
        self.picks = max;
        self
    }

    /// The strategy.
    pub fn strategy(&self) -> BoxedStrategy<Schedule> {
        let window = millis(self.window).max(1);
        let work = millis(self.work);
        let signed = i64::try_from(window).unwrap_or(i64::MAX);
        let signal = prop_oneof![3 => Just(Signal::TERM), 1 => Just(Signal::INT)];
        let second = if self.second_signal {
            proptest::option::weighted(0.3, (0..window, signal.clone())).boxed()
        } else {
            Just(None).boxed()
        };
        let fate = if self.faults {
            prop_oneof![
                3 => Just(Fate::Ok),
                2 => (1..=window).prop_map(|ms| Fate::Slow(Duration::from_millis(ms))),
                1 => Just(Fate::Fail),
                1 => Just(Fate::Panic),
                1 => Just(Fate::Hang),
            ]
            .boxed()
        } else {
            prop_oneof![
                3 => Just(Fate::Ok),
                2 => (1..=window).prop_map(|ms| Fate::Slow(Duration::from_millis(ms))),
            ]
            .boxed()
        };
        (
            (0..window, signal),
            second,
            // A request is drawn relative to the signal: when it arrives, and
            // how long it runs on past the signal. A shutdown race is about
            // where a request ends against the signal and the deadlines that
            // follow it, so each of the three shrinks on its own without
            // moving the others: the signal towards zero, the arrival
            // towards the signal, the end towards the signal.
            vec((-signed..signed, 0..=work), 0..=self.requests),
            vec(fate, 0..=self.steps),
            vec(any::<u8>(), 0..=self.picks),
        )
            .prop_map(|((at, signal), second, arrivals, fates, picks)| {
                let start = at;
                let at = Duration::from_millis(at);
                let mut arrivals: Vec<Arrival> = arrivals
                    .into_iter()
                    .map(|(offset, past_signal)| {
                        let arrives = start.saturating_add_signed(offset);
                        Arrival {
                            at: Duration::from_millis(arrives),
                            work: Duration::from_millis(
                                start.saturating_sub(arrives) + past_signal,
                            ),
                        }
                    })
                    .collect();
                arrivals.sort_by_key(|arrival| arrival.at);
                Schedule {
                    signal: SignalAt { at, signal },
                    second: second.map(|(after, signal)| SignalAt {
                        at: at + Duration::from_millis(after),
                        signal,
                    }),
                    arrivals,
                    fates,
                    picks,
                }
            })
            .boxed()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Arbitrary for Schedule {
    type Parameters = Schedules;
    type Strategy = BoxedStrategy<Schedule>;

    fn arbitrary_with(shape: Schedules) -> BoxedStrategy<Schedule> {
        shape.strategy()
    }
}
