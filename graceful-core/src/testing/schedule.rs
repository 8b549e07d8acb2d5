//! One schedule: everything the simulation does not leave to the code under
//! test, and its one-line text form, which replays it exactly.

use crate::Signal;
use std::error::Error;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Everything about one simulated shutdown that is not the code under test:
/// when the signals come, when requests arrive and how much work each
/// brings, how the cleanup steps behave, and which ready task runs next.
///
/// A simulation is a pure function of its schedule, so a schedule replays
/// exactly. Its [`Display`](fmt::Display) form is one line, such as
/// `term@120ms req@0ms+300ms steps=hang`, and [`FromStr`] reads it back: a
/// failure prints it, and a test replays it with `"…".parse::<Schedule>()`.
/// Times are whole milliseconds of virtual time from the start.
///
/// Its [`Debug`](fmt::Debug) form is the same line, quoted, so that the
/// "minimal failing input" proptest prints is one that replays.
#[derive(Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The first signal: the shutdown request.
    pub signal: SignalAt,
    /// A second signal, which forces the shutdown if it comes before the
    /// exit.
    pub second: Option<SignalAt>,
    /// The requests, in the order they arrive.
    pub arrivals: Vec<Arrival>,
    /// The behaviour of each cleanup step registered through the
    /// simulation, in registration order; steps beyond the list run as
    /// written ([`Fate::Ok`]).
    pub fates: Vec<Fate>,
    /// The scheduling choices; see [`Picks`](super::Picks).
    pub picks: Vec<u8>,
}

impl Schedule {
    /// A schedule with a `SIGTERM` at `at` and nothing else.
    pub fn term_at(at: Duration) -> Schedule {
        Schedule {
            signal: SignalAt {
                at,
                signal: Signal::TERM,
            },
            second: None,
            arrivals: Vec::new(),
            fates: Vec::new(),
            picks: Vec::new(),
        }
    }
}

/// A signal, and when it arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalAt {
    /// Virtual time from the start.
    pub at: Duration,
    /// Which signal: `SIGTERM`, `SIGINT`, `SIGHUP` or `SIGQUIT`.
    pub signal: Signal,
}

/// One request: when it arrives, and how much work it brings (the handler
/// reads it with [`Req::work`](super::Req::work) and decides what it
/// means).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// Virtual time from the start.
    pub at: Duration,
    /// The work it brings.
    pub work: Duration,
}

/// How a cleanup step registered with
/// [`Cx::on_cleanup`](super::Cx::on_cleanup) behaves.
///
/// The faults replace the step: a step that fails, panics or hangs never
/// does its work, as when the resource it closes is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It runs as written.
    Ok,
    /// It waits this long, then runs as written.
    Slow(Duration),
    /// It returns an error instead of running.
    Fail,
    /// It panics instead of running.
    Panic,
    /// It never finishes (until the cleanup timeout drops it).
    Hang,
}

fn ms(duration: Duration) -> u128 {
    duration.as_millis()
}

fn signal_word(signal: Signal) -> Option<&'static str> {
    [
        (Signal::TERM, "term"),
        (Signal::INT, "int"),
        (Signal::HUP, "hup"),
        (Signal::QUIT, "quit"),
    ]
    .into_iter()
    .find(|(known, _)| *known == signal)
    .map(|(_, word)| word)
}

impl fmt::Display for SignalAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match signal_word(self.signal) {
            Some(word) => write!(f, "{word}@{}ms", ms(self.at)),
            // Not readable back; `FromStr` names the four it reads.
            None => write!(f, "sig{}@{}ms", self.signal.number(), ms(self.at)),
        }
    }
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fate::Ok => f.write_str("ok"),
            Fate::Slow(by) => write!(f, "slow:{}ms", ms(*by)),
            Fate::Fail => f.write_str("fail"),
            Fate::Panic => f.write_str("panic"),
            Fate::Hang => f.write_str("hang"),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.signal)?;
        if let Some(second) = &self.second {
            write!(f, " {second}")?;
        }
        for arrival in &self.arrivals {
            write!(f, " req@{}ms+{}ms", ms(arrival.at), ms(arrival.work))?;
        }
        if !self.fates.is_empty() {
            f.write_str(" steps=")?;
            for (i, fate) in self.fates.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{fate}")?;
            }
        }
        if !self.picks.is_empty() {
            f.write_str(" picks=")?;
            for (i, pick) in self.picks.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{pick}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule(\"{self}\")")
    }
}

/// A schedule's text form could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseScheduleError {
    /// The part that could not be read.
    token: String,
    why: &'static str,
}

impl fmt::Display for ParseScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.token.is_empty() {
            write!(f, "cannot read the schedule: {}", self.why)
        } else {
            write!(
                f,
                "cannot read `{}` in the schedule: {}",
                self.token, self.why
            )
        }
    }
}

impl Error for ParseScheduleError {}

fn bad(token: &str, why: &'static str) -> ParseScheduleError {
    ParseScheduleError {
        token: token.to_owned(),
        why,
    }
}

fn parse_ms(text: &str, token: &str) -> Result<Duration, ParseScheduleError> {
    text.strip_suffix("ms")
        .and_then(|n| n.parse::<u64>().ok())
        .map(Duration::from_millis)
        .ok_or_else(|| bad(token, "times are whole milliseconds, such as `120ms`"))
}

fn parse_signal(word: &str) -> Option<Signal> {
    match word {
        "term" => Some(Signal::TERM),
        "int" => Some(Signal::INT),
        "hup" => Some(Signal::HUP),
        "quit" => Some(Signal::QUIT),
        _ => None,
    }
}

fn parse_fate(text: &str, token: &str) -> Result<Fate, ParseScheduleError> {
    Ok(match text {
        "ok" => Fate::Ok,
        "fail" => Fate::Fail,
        "panic" => Fate::Panic,
        "hang" => Fate::Hang,
        _ => match text.strip_prefix("slow:") {
            Some(by) => Fate::Slow(parse_ms(by, token)?),
            None => {
                return Err(bad(
                    token,
                    "a step is `ok`, `fail`, `panic`, `hang` or `slow:<n>ms`",
                ));
            }
        },
    })
}

impl FromStr for Schedule {
    type Err = ParseScheduleError;

    fn from_str(text: &str) -> Result<Schedule, ParseScheduleError> {
        let mut signals = Vec::new();
        let mut arrivals = Vec::new();
        let mut fates = Vec::new();
        let mut picks = Vec::new();
        for token in text.split_whitespace() {
            if let Some(list) = token.strip_prefix("steps=") {
                for fate in list.split(',') {
                    fates.push(parse_fate(fate, token)?);
                }
            } else if let Some(list) = token.strip_prefix("picks=") {
                for pick in list.split(',') {
                    picks.push(
                        pick.parse::<u8>()
                            .map_err(|_| bad(token, "a pick is a number from 0 to 255"))?,
                    );
                }
            } else if let Some(rest) = token.strip_prefix("req@") {
                let (at, work) = rest
                    .split_once('+')
                    .ok_or_else(|| bad(token, "a request is `req@<at>ms+<work>ms`"))?;
                arrivals.push(Arrival {
                    at: parse_ms(at, token)?,
                    work: parse_ms(work, token)?,
                });
            } else if let Some((word, at)) = token.split_once('@')
                && let Some(signal) = parse_signal(word)
            {
                if signals.len() == 2 {
                    return Err(bad(token, "a schedule has at most two signals"));
                }
                signals.push(SignalAt {
                    at: parse_ms(at, token)?,
                    signal,
                });
            } else {
                return Err(bad(
                    token,
                    "expected a signal (`term@<n>ms`, `int@`, `hup@`, `quit@`), \
                     `req@<at>ms+<work>ms`, `steps=...` or `picks=...`",
                ));
            }
        }
        let mut signals = signals.into_iter();
        let signal = signals.next().ok_or_else(|| {
            bad(
                "",
                "it needs a first signal, such as `term@100ms`, to shut down at",
            )
        })?;
        let second = signals.next();
        if let Some(second) = &second
            && second.at < signal.at
        {
            return Err(bad(
                &second.to_string(),
                "the second signal cannot come before the first",
            ));
        }
        Ok(Schedule {
            signal,
            second,
            arrivals,
            fates,
            picks,
        })
    }
}
