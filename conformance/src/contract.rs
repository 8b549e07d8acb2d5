//! The conformance target contract (version 1, and the parts of version 2
//! below), and its event grammar.
//! the kit checks), and its event grammar.
//!
//! A *conformance target* is an HTTP/1.1 server process. The kit drives it
//! through five things only: its command line, its standard output, HTTP on
//! loopback, signals, and its exit code, plus an SQLite file for the order
//! scenarios. Anything that speaks this contract can be checked.
//!
//! # Command line
//!
//! `TARGET [--addr HOST:PORT] [options]`
//!
//! | option | meaning | default |
//! | --- | --- | --- |
//! | `--addr HOST:PORT` | where to listen; port 0 picks a free port (the kit always passes `127.0.0.1:0`) | `127.0.0.1:0` |
//! | `--drain-timeout-ms N` | how long in-flight requests may run, counted from `closed`, before they are abandoned | 30000 |
//! | `--unready-delay-ms N` | after the first signal, keep serving for N ms with `/health/ready` answering 503, then close the listener | 0 |
//! | `--cleanup A,B,C` | cleanup steps, registered in this order at start-up | none |
//! | `--cleanup-ms N` | how long each `--cleanup` step takes | 0 |
//! | `--cleanup-timeout-ms N` | how long one step may take before it is abandoned | 5000 |
//! | `--cleanup-fail NAME` | that step returns an error | |
//! | `--cleanup-panic NAME` | that step panics | |
//! | `--cleanup-hang NAME` | that step never finishes by itself | |
//! | `--store PATH` | SQLite file for `/orders`, closed by a cleanup step named `store` registered before the `--cleanup` steps (so it runs last) | none |
//!
//! An unknown option, or a missing or bad value, is a usage error: a short
//! message on standard error that names the option, exit code 2, and nothing
//! served (nothing on standard output).
//!
//! # Standard output
//!
//! Only these events, one per line, each flushed at once, in this order
//! (logs belong on standard error); [`Event`] parses them:
//!
//! | line | meaning |
//! | --- | --- |
//! | `listening HOST:PORT` | bound and serving |
//! | `draining SIGNAL` | the first `SIGTERM` or `SIGINT` arrived |
//! | `closed` | the listener is closed; new connections are refused from here on |
//! | `drained` | no request is in progress any more |
//! | `abandoned N` | instead of `drained`: the drain timeout expired with N requests in progress |
//! | `cleanup NAME RESULT` | one cleanup step ended: `ok`, `error`, `panic` or `timeout` |
//! | `exit CODE` | the last line, just before the process exits with CODE |
//!
//! # HTTP
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /sleep?ms=N` | after N ms, `200` with body `slept N` |
//! | `GET /stream?chunks=K&ms=N` | `200`, chunked, K lines `chunk I\n`, the first at once, then one every N ms |
//! | `GET /health/ready` | `200 ready` until the first signal, `503` after |
//! | `GET /health/live` | `200 live` while the process serves |
//! | `POST /orders?ms=N`, body = order id | the row is committed at N/2 ms, `201 stored ID` is sent at N ms; an id already stored gets `409`; without `--store`, `404` |
//! | anything else | `404` |
//!
//! # Shutdown rules
//!
//! 1. The first `SIGTERM` or `SIGINT` prints `draining SIGNAL`; from then on
//!    `/health/ready` answers 503. During `--unready-delay-ms` everything
//!    else, new connections included, is served as before.
//! 2. Then the listener closes and `closed` is printed. Connections the
//!    kernel had already completed are accepted (not reset) and answered as
//!    in rule 4.
//! 3. Every request in progress runs to completion and its whole response is
//!    delivered; a response whose head is sent after `closed` carries
//!    `Connection: close`.
//! 4. A new request on an open connection after `closed` gets `503` with
//!    `Connection: close` and `Retry-After`, and the connection closes.
//! 5. Idle connections and connections with a partial request head never
//!    delay the exit. A request is in progress from the moment its whole head
//!    has been read until the last byte of its response is sent (a request
//!    whose body is still arriving is in progress). Requests pipelined behind
//!    a `Connection: close` response are not begun.
//! 6. When nothing is in progress, `drained`. If the drain timeout expires
//!    first, `abandoned N`, and those connections are closed mid-response.
//! 7. Then the cleanup steps run one at a time, last registered first. A
//!    failing step does not stop the ones after it. Cleanup runs after
//!    `abandoned` too.
//! 8. Exit code 0 when `drained` came and every step ended `ok`, else 1.
//! 9. A second `SIGTERM` or `SIGINT`, at any time after the first, prints
//!    `exit C` and exits at once with C = 128 + the signal number (143 for
//!    `SIGTERM`, 130 for `SIGINT`); the process exits with that status
//!    rather than dying of the signal.
//! 10. A signal that arrives before `listening` ends the process within 1 s:
//!     `draining SIGNAL`, the cleanup lines of the steps registered so far,
//!     `exit C` (`closed` and `drained` may be left out).
//!
//! # Bounds
//!
//! A connect after `closed` is refused. With nothing in progress, no unready
//! delay and no cleanup time, the exit follows the signal within 500 ms;
//! `drained` follows the last in-flight response within 500 ms; the exit
//! follows the last cleanup line within 500 ms; `abandoned` follows the
//! deadline within 500 ms; a second signal ends the process within 500 ms.
//! Under load, up to 0.5 % of requests may meet a closed socket (a request
//! sent on an idle connection at the very moment of the exit).
//!
//! # The store
//!
//! A table `orders` with at least `id TEXT PRIMARY KEY`. After the exit, for
//! every order a client sent: a `201` received means the row is there, and a
//! row there means its `201` was delivered. Under `SIGTERM` no order is ever
//! processed with its answer lost; under `SIGKILL` that is exactly what can
//! happen, and the `orders-under-sigkill` scenario shows it.
//!
//! # Version 2: long-lived streams
//!
//! A version 2 target also takes `--events-ms N` (the default interval of
//! `/events`, 1000 ms) and serves two requests that stay open:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /events?ms=N` | `200`, `Content-Type: text/event-stream`, chunked: the event `data: tick I` (I from 0) at once, then one every N ms (`--events-ms` without `ms`), with no end of its own |
//! | `GET /ws` | a WebSocket (RFC 6455) that sends every text message back |
//!
//! 17. Both are requests in progress for as long as they are open, and the
//!     unready delay serves them as before: streams open at the signal keep
//!     going, and new ones are opened and served.
//! 18. At `closed` every event stream sends one last event, `retry: 1000`,
//!     and then ends its body cleanly (the chunked terminator): the client
//!     knows to reconnect elsewhere, and the stream is no longer in
//!     progress.
//! 19. At `closed` every WebSocket is sent a Close frame with code 1001
//!     (going away). Nothing that arrives after it is echoed. The server
//!     closes the TCP connection when the client's Close answer comes, or
//!     1 s after its own Close frame if the client never answers; until
//!     then the connection is in progress.
//! 20. Streams that end this way never cost the exit code: with nothing
//!     else in progress, `drained` follows the last stream's end within
//!     500 ms, and the exit code is 0.
//!
//! The kit holds a target to 500 ms for the last event and the Close frame
//! after `closed`, and for the TCP close after the client's answer; to
//! 1 s, and 500 ms on top, for a client that never answers.
//!
//! # Version 2: background jobs
//!
//! | request | answer |
//! | --- | --- |
//! | `POST /jobs?ms=N`, body = job id | `202` with the body `queued ID` at once; the job then works N ms in the background and commits the row ID to the table `jobs` (at least `id TEXT PRIMARY KEY`) of the `--store`. An id already queued or already stored: `409`; without `--store`: `404` |
//!
//! 21. A job is in progress from its `202` until its row is committed:
//!     `drained` waits for it as for a request, and at the drain deadline
//!     the jobs not finished are abandoned and counted in `abandoned N`.
//! 22. Under `SIGTERM` no job whose `202` was delivered is lost: after an
//!     exit with code 0 every `202` a client received has its row. After
//!     `closed` a new job is refused as any new work is (rule 4: `503`
//!     with `Connection: close` and `Retry-After` on HTTP/1.1).
//!
//! A target that answers `404` to `/events`, `/ws` or `/jobs` (with a
//! store) does not speak version 2: every scenario of these rules fails on
//! it, and says so.
//! # Version 2: the zero-downtime upgrade (rules 23 to 27)
//!
//! `--upgrade-child-fails`: a process started by an upgrade exits 3 before
//! `listening`. Three more lines: `upgrading` (a `SIGHUP` came, a new
//! process is being started), `upgrade PID` (the new process PID listens on
//! the same socket; this one leaves), `upgrade-failed REASON` (one word,
//! such as `exited` or `timeout`; this one serves on). Both processes write
//! to the same standard output: after `upgrading` the first `listening` is
//! the new process's, and `closed` to `exit` are the old one's until its
//! `exit` line; what follows is the new one's.
//!
//! 23. `SIGHUP` prints `upgrading` and starts a new process of the same
//!     executable with the same arguments, which inherits the listening
//!     socket. The socket is never closed in between: a connection made at
//!     any moment of the upgrade is served by one of the two processes.
//! 24. Once the new process listens and serves: `upgrade PID`, then the old
//!     process stops accepting and prints `closed` (its copy only: the new
//!     one accepts from the same queue), answers what it accepted under the
//!     drain rules, prints `drained` or `abandoned N`, runs its cleanup and
//!     exits as in rule 8. Its readiness is `503` from `upgrade PID` on.
//! 25. A new process that exits, or has not printed `listening` within
//!     10 s: `upgrade-failed REASON`, the new process is ended, and the old
//!     one serves on as if no `SIGHUP` had come; a later `SIGHUP` may try
//!     again.
//! 26. A `SIGHUP` during an upgrade is ignored. `SIGTERM` or `SIGINT` before
//!     `upgrade PID` ends the new process and shuts down as in rule 1. A
//!     `SIGHUP` after the first `SIGTERM` or `SIGINT` is ignored.
//! 27. Both processes may write to the same `--store` at once: no order or
//!     job is refused or lost because the other holds the file.
//!
//! How the kit reads them: only the first process is its child, so the
//! others are signalled by the pid of their `upgrade PID` line and their
//! exit code is read from their `exit` line; the last one's exit is also
//! the end of standard output. Under load, a `503` from the draining old
//! process (rule 4, on a kept-alive connection) and a kept-alive connection
//! closed before any byte at the old process's exit (rule 5's race) are
//! retried by the kit's clients on a new connection, with the same order
//! id, as a client honouring `Retry-After` would; a retry told `409` is an
//! order stored with its answer lost. A refused connect, a reset, or any
//! other failure counts against the target. To have an upgrade surely in
//! progress, the kit holds the new process still with `SIGSTOP` once it has
//! run its own executable (it then holds fewer descriptors than its
//! parent), before it can come up.
//!
//! # How the kit reads the open points
//!
//! - Rule 10 leaves the exit code of a signal before `listening` open. The
//!   kit accepts 0 (nothing was in progress, so the drain is complete),
//!   1 (no `drained` line) and 128 + the signal number (read as rule 9),
//!   provided the `exit C` line matches the real exit code and a failed
//!   cleanup step never goes with 0. A process that dies of the signal
//!   without having printed anything is accepted too: at the very first
//!   instant after `exec` no handler can be installed yet, and the kernel's
//!   default action ends the process well within the 1 s.
//! - Rule 2 has an unavoidable race: a connection completed by the kernel in
//!   the microseconds between the server's last `accept` and the close of the
//!   listener is reset. The kit holds a target strictly to rule 2 for
//!   connections completed well before the close, and tolerates one reset
//!   (or 0.5 %, whichever is more) among connections opened in a burst right
//!   at the close.
//!
//! # Version 2: HTTP/2 (rules 11, 13 to 16)
//!
//! 11. The plaintext port also speaks HTTP/2 with prior knowledge (h2c: the
//!     client starts with the connection preface). Every endpoint answers
//!     the same on both protocols. On HTTP/2 a stream is the request: in
//!     progress from its handled headers until the END_STREAM of its
//!     response.
//! 13. During the unready delay HTTP/2 goes on as before: new streams on
//!     open connections, new connections, no GOAWAY yet.
//! 14. At `closed` each open HTTP/2 connection is told GOAWAY with
//!     NO_ERROR. A server may announce first (last stream id 2^31-1, plus a
//!     PING) and send the final GOAWAY when the PING comes back, but never
//!     more than 1 s after the first. Streams opened before the final
//!     GOAWAY are served normally, never with `503` (that is HTTP/1.1's rule
//!     4); streams above its last stream id are left for the client to
//!     retry.
//! 15. Streams in progress finish with their whole response. A connection
//!     with nothing in progress is closed by the server once its final
//!     GOAWAY is out. Neither a client that never answers the PING nor one
//!     that never finishes its preface delays `drained` or the exit (the
//!     bounds above hold).
//! 16. At the drain deadline every stream still in progress is reset with
//!     RST_STREAM CANCEL and counted in `abandoned N`, and its connection is
//!     closed.
//!
//! # Version 2: TLS (rules 11 and 12)
//!
//! `--tls-cert PATH` and `--tls-key PATH` (a PEM certificate chain and its
//! private key) make the target serve TLS on `--addr` instead of
//! plaintext, offering `h2` and `http/1.1` by ALPN. Giving one option
//! without the other, or a file that cannot be read or holds no PEM, is a
//! usage error: exit 2, nothing served.
//!
//! 12. A connection still in its TLS handshake counts like one that has not
//!     sent a whole request head: it never delays the exit. Whenever the
//!     server closes a TLS connection, it sends a `close_notify` first.
//!
//! The kit makes its own self-signed pair (rcgen) in a scratch directory
//! and connects with rustls, accepting that certificate. It checks the
//! `close_notify` on the connection a 503 closes after `closed`; idle
//! connections still open at the exit are left to the exit.
//!
//! The kit talks HTTP/2 itself, frame by frame ([`crate::h2`]), to see the
//! last stream ids, the PING and the reset codes. It reads "at most 1 s
//! later" with its usual observation tolerance (1250 ms), and checks the
//! final GOAWAY's timing on a connection that holds its PING answer back;
//! on a server that sends a single GOAWAY there is no window between two
//! GOAWAYs to open a stream in, and that part is skipped (the figure
//! `goaway-phases` says which).

use std::fmt;

/// How a cleanup step ended, as printed in a `cleanup NAME RESULT` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CleanupResult {
    /// The step finished without error.
    Ok,
    /// The step returned an error.
    Error,
    /// The step panicked (or threw).
    Panic,
    /// The step did not finish within `--cleanup-timeout-ms`.
    Timeout,
}

impl CleanupResult {
    /// The word used on standard output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Panic => "panic",
            Self::Timeout => "timeout",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        match word {
            "ok" => Some(Self::Ok),
            "error" => Some(Self::Error),
            "panic" => Some(Self::Panic),
            "timeout" => Some(Self::Timeout),
            _ => None,
        }
    }
}

impl fmt::Display for CleanupResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a target's standard output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `listening HOST:PORT`.
    Listening(String),
    /// `draining SIGTERM` or `draining SIGINT`.
    Draining(String),
    /// `closed`.
    Closed,
    /// `drained`.
    Drained,
    /// `abandoned N`.
    Abandoned(u64),
    /// `cleanup NAME RESULT`.
    Cleanup {
        /// The step's name.
        name: String,
        /// How it ended.
        result: CleanupResult,
    },
    /// `exit CODE`.
    Exit(i32),
}

impl Event {
    /// Parses one line (without its newline). The error says why the line is
    /// not an event.
    pub fn parse(line: &str) -> Result<Self, String> {
        let words: Vec<&str> = line.split(' ').collect();
        let bad = || format!("not a contract event: {line:?}");
        match words.as_slice() {
            ["listening", addr] if !addr.is_empty() => Ok(Self::Listening((*addr).to_owned())),
            ["draining", sig @ ("SIGTERM" | "SIGINT")] => Ok(Self::Draining((*sig).to_owned())),
            ["closed"] => Ok(Self::Closed),
            ["drained"] => Ok(Self::Drained),
            ["abandoned", n] => n.parse().map(Self::Abandoned).map_err(|_| bad()),
            ["cleanup", name, result] if !name.is_empty() => CleanupResult::parse(result)
                .map(|result| Self::Cleanup {
                    name: (*name).to_owned(),
                    result,
                })
                .ok_or_else(bad),
            ["exit", code] => code.parse().map(Self::Exit).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }

    /// The event's place in the contract's order: events must appear with a
    /// non-decreasing rank.
    pub fn rank(&self) -> u8 {
        match self {
            Self::Listening(_) => 0,
            Self::Draining(_) => 1,
            Self::Closed => 2,
            Self::Drained | Self::Abandoned(_) => 3,
            Self::Cleanup { .. } => 4,
            Self::Exit(_) => 5,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listening(addr) => write!(f, "listening {addr}"),
            Self::Draining(sig) => write!(f, "draining {sig}"),
            Self::Closed => f.write_str("closed"),
            Self::Drained => f.write_str("drained"),
            Self::Abandoned(n) => write!(f, "abandoned {n}"),
            Self::Cleanup { name, result } => write!(f, "cleanup {name} {result}"),
            Self::Exit(code) => write!(f, "exit {code}"),
        }
    }
}

/// Checks a whole standard output against the grammar: every line is an
/// event, the events come in the contract's order, the one-off events come
/// at most once, and `exit C` (when present) is the last line and equals
/// `exit_code`. Returns the parsed events and the problems found.
pub fn check_grammar(lines: &[&str], exit_code: Option<i32>) -> (Vec<Event>, Vec<String>) {
    let mut events = Vec::new();
    let mut problems = Vec::new();
    let mut last_rank = 0;
    for (index, line) in lines.iter().enumerate() {
        let event = match Event::parse(line) {
            Ok(event) => event,
            Err(problem) => {
                problems.push(format!("stdout line {}: {problem}", index + 1));
                continue;
            }
        };
        let rank = event.rank();
        if rank < last_rank {
            problems.push(format!(
                "stdout line {}: `{event}` out of order (after a later event)",
                index + 1
            ));
        }
        let once = !matches!(event, Event::Cleanup { .. });
        if once && events.iter().any(|e: &Event| e.rank() == rank) {
            problems.push(format!("stdout line {}: `{event}` repeated", index + 1));
        }
        if let Event::Exit(code) = event {
            if index + 1 != lines.len() {
                problems.push(format!("`exit {code}` is not the last stdout line"));
            }
            match exit_code {
                Some(real) if real != code => problems.push(format!(
                    "`exit {code}` printed but the process exited with code {real}"
                )),
                None => problems.push(format!(
                    "`exit {code}` printed but the process did not exit with a code"
                )),
                Some(_) => {}
            }
        }
        last_rank = last_rank.max(rank);
        events.push(event);
    }
    (events, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_event_form() {
        assert_eq!(
            Event::parse("listening 127.0.0.1:80"),
            Ok(Event::Listening("127.0.0.1:80".into()))
        );
        assert_eq!(
            Event::parse("draining SIGINT"),
            Ok(Event::Draining("SIGINT".into()))
        );
        assert_eq!(Event::parse("closed"), Ok(Event::Closed));
        assert_eq!(Event::parse("drained"), Ok(Event::Drained));
        assert_eq!(Event::parse("abandoned 3"), Ok(Event::Abandoned(3)));
        assert_eq!(
            Event::parse("cleanup db timeout"),
            Ok(Event::Cleanup {
                name: "db".into(),
                result: CleanupResult::Timeout
            })
        );
        assert_eq!(Event::parse("exit 143"), Ok(Event::Exit(143)));
    }

    #[test]
    fn rejects_near_misses() {
        for line in [
            "",
            "listening",
            "draining SIGHUP",
            "closed ",
            "Closed",
            "abandoned x",
            "cleanup db fine",
            "exit",
            "exit 0 now",
            "drained\r",
            "INFO starting",
        ] {
            assert!(Event::parse(line).is_err(), "{line:?} accepted");
        }
    }

    #[test]
    fn display_round_trips() {
        for line in [
            "listening 127.0.0.1:1",
            "draining SIGTERM",
            "closed",
            "drained",
            "abandoned 0",
            "cleanup store ok",
            "exit 1",
        ] {
            assert_eq!(Event::parse(line).unwrap().to_string(), line);
        }
    }

    #[test]
    fn grammar_accepts_a_full_shutdown() {
        let lines = [
            "listening 127.0.0.1:9",
            "draining SIGTERM",
            "closed",
            "drained",
            "cleanup b ok",
            "cleanup a error",
            "exit 1",
        ];
        let (events, problems) = check_grammar(&lines, Some(1));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(events.len(), 7);
    }

    #[test]
    fn grammar_flags_order_repeats_noise_and_exit_mismatch() {
        let lines = [
            "listening 127.0.0.1:9",
            "closed",
            "draining SIGTERM",
            "hello",
            "drained",
            "drained",
            "exit 0",
        ];
        let (_, problems) = check_grammar(&lines, Some(1));
        let text = problems.join("\n");
        assert!(text.contains("out of order"), "{text}");
        assert!(text.contains("not a contract event"), "{text}");
        assert!(text.contains("repeated"), "{text}");
        assert!(text.contains("exited with code 1"), "{text}");
    }

    #[test]
    fn grammar_requires_exit_last() {
        let (_, problems) = check_grammar(&["exit 0", "drained"], Some(0));
        assert!(problems.iter().any(|p| p.contains("not the last")));
    }
}
