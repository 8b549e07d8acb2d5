//! What app mode is told about a server: how to start it, how to reach it,
//! which requests to send, and the bounds it is held to.
//!
//! Everything here is plain data with its validation; the command line that
//! fills it in is in `cli.rs`.
//!
//! # Placeholders
//!
//! App mode picks a free loopback port for every start, and tells the server
//! through the words of its command: `{port}` becomes the port number and
//! `{addr}` becomes `127.0.0.1:PORT`. With [`Reach::Env`] the port is also
//! put in an environment variable (the `PORT` convention of Heroku, Cloud
//! Run and friends). A server that always listens on one address is given
//! with [`Reach::Fixed`], and then checks run one after the other on that
//! address.
//!
//! In the slow request, `{ms}` becomes the time the request should take,
//! for servers that have a `?ms=`-style endpoint, and `{n}` becomes a
//! counter, unique within a run, for endpoints that refuse a repeated id.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::http::Request;

/// How app mode reaches the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// The server listens on this loopback address by itself.
    Fixed(SocketAddr),
    /// The port is passed in the command's words, through `{port}` or
    /// `{addr}`.
    Placeholder,
    /// The port is passed in this environment variable (and through any
    /// placeholder in the command too).
    Env(String),
}

/// The request that takes a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path and query, with `{ms}` and `{n}` placeholders.
    pub target: String,
    /// The body, with the `{n}` placeholder; empty for none.
    pub body: String,
}

impl SlowRequest {
    /// Parses `[METHOD ]PATH`: `/sleep?ms={ms}` or `POST /orders`.
    pub fn parse(text: &str) -> Result<Self, OptionsError> {
        let text = text.trim();
        let (method, target) = match text.split_once(char::is_whitespace) {
            Some((method, target)) => (method.to_owned(), target.trim().to_owned()),
            None => ("GET".to_owned(), text.to_owned()),
        };
        let method_ok = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
        if !method_ok || !target.starts_with('/') || target.contains(char::is_whitespace) {
            return Err(OptionsError::BadValue {
                option: "--slow",
                value: text.to_owned(),
                expected: "`[METHOD ]PATH`, e.g. `/sleep?ms={ms}` or `POST /orders`",
            });
        }
        Ok(Self {
            method,
            target,
            body: String::new(),
        })
    }

    /// Whether the server is told how long to take (`{ms}` in the path).
    pub fn is_timed(&self) -> bool {
        self.target.contains("{ms}")
    }

    /// The request to send: `ms` for `{ms}`, `n` for `{n}`.
    pub fn build(&self, ms: u64, n: u64) -> Request {
        let fill = |text: &str| {
            text.replace("{ms}", &ms.to_string())
                .replace("{n}", &n.to_string())
        };
        Request {
            method: self.method.clone(),
            target: fill(&self.target),
            headers: Vec::new(),
            body: fill(&self.body).into_bytes(),
        }
    }
}

impl fmt::Display for SlowRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.target)
    }
}

/// The bounds app mode holds a server to. The defaults are the contract's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    /// How long the server may take to answer its first request.
    pub start: Duration,
    /// With nothing in progress, from the signal (plus the unready delay)
    /// to the exit.
    pub exit: Duration,
    /// From the last response of the drain to the exit.
    pub drain_exit: Duration,
    /// From the second signal to the exit.
    pub second_signal: Duration,
    /// Requests lost to the exit race under load, in thousandths (5 is
    /// 0.5 %).
    pub load_loss_permille: u32,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            start: Duration::from_secs(10),
            exit: Duration::from_millis(500),
            drain_exit: Duration::from_millis(500),
            second_signal: Duration::from_millis(500),
            load_loss_permille: 5,
        }
    }
}

/// Everything app mode needs to check one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The server's name in reports.
    pub name: String,
    /// The command that starts the server, placeholders included.
    pub command: Vec<OsString>,
    /// How to reach it.
    pub reach: Reach,
    /// The request that takes a while.
    pub slow: SlowRequest,
    /// How long the slow request should take, when its path has `{ms}`.
    pub slow_ms: u64,
    /// A quick request for the keep-alive checks; any answer will do.
    pub probe: String,
    /// The readiness path, if the server has one.
    pub ready: Option<String>,
    /// How long the server keeps accepting after the first signal.
    pub unready_delay: Duration,
    /// The bounds.
    pub bounds: Bounds,
}

impl Options {
    /// Options for `command` reached through `reach`, with `slow` as the slow
    /// request and everything else at its default.
    pub fn new(
        name: impl Into<String>,
        command: Vec<OsString>,
        reach: Reach,
        slow: SlowRequest,
    ) -> Self {
        Self {
            name: name.into(),
            command,
            reach,
            slow,
            slow_ms: 2000,
            probe: "/".to_owned(),
            ready: None,
            unready_delay: Duration::ZERO,
            bounds: Bounds::default(),
        }
    }

    /// Checks that the options can work: a command, a way to reach the
    /// server, paths that are paths.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.command.is_empty() {
            return Err(OptionsError::NoCommand);
        }
        let placeholder = self.command.iter().any(|word| {
            let word = word.to_string_lossy();
            word.contains("{port}") || word.contains("{addr}")
        });
        match &self.reach {
            Reach::Placeholder if !placeholder => return Err(OptionsError::NoReach),
            Reach::Fixed(addr) if !addr.ip().is_loopback() || addr.port() == 0 => {
                return Err(OptionsError::BadValue {
                    option: "--addr",
                    value: addr.to_string(),
                    expected: "a loopback address with a port, e.g. 127.0.0.1:8080",
                });
            }
            Reach::Env(name) if name.is_empty() || name.contains('=') => {
                return Err(OptionsError::BadValue {
                    option: "--port-env",
                    value: name.clone(),
                    expected: "an environment variable name, e.g. PORT",
                });
            }
            _ => {}
        }
        for (option, path) in [
            ("--probe", Some(&self.probe)),
            ("--ready", self.ready.as_ref()),
        ] {
            if let Some(path) = path
                && (!path.starts_with('/') || path.contains(char::is_whitespace))
            {
                return Err(OptionsError::BadValue {
                    option,
                    value: path.clone(),
                    expected: "a path that starts with `/`",
                });
            }
        }
        if self.slow.is_timed() && self.slow_ms < 100 {
            return Err(OptionsError::BadValue {
                option: "--slow-ms",
                value: self.slow_ms.to_string(),
                expected: "at least 100 (ms)",
            });
        }
        Ok(())
    }

    /// How long a slow request that must outlast the unready delay by
    /// `extra` is asked to take (for a timed slow request).
    pub(crate) fn slow_ms_past_unready(&self, extra: Duration) -> u64 {
        let wanted = (self.unready_delay + extra).as_millis();
        u64::try_from(wanted).unwrap_or(u64::MAX).max(self.slow_ms)
    }
}

/// A usage error: what is wrong with the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionsError {
    /// No command after `--`.
    NoCommand,
    /// Neither `--addr`, nor `--port-env`, nor a placeholder in the command.
    NoReach,
    /// No `--slow`.
    NoSlow,
    /// An option's value cannot be used.
    BadValue {
        /// The option.
        option: &'static str,
        /// What was given.
        value: String,
        /// What would do.
        expected: &'static str,
    },
    /// `--check` names no check.
    UnknownCheck(String),
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCommand => f.write_str("no server command given after `--`"),
            Self::NoReach => f.write_str(
                "no way to reach the server: give --addr HOST:PORT, --port-env NAME, \
                 or put {port} or {addr} in the command",
            ),
            Self::NoSlow => f.write_str(
                "no slow request given: --slow PATH names a request that takes a while \
                 (`/sleep?ms={ms}`, `POST /orders`)",
            ),
            Self::BadValue {
                option,
                value,
                expected,
            } => write!(f, "{option} {value:?}: expected {expected}"),
            Self::UnknownCheck(name) => {
                write!(
                    f,
                    "unknown check {name:?} (see `graceful-conformance app --list`)"
                )
            }
        }
    }
}

impl std::error::Error for OptionsError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(command: &[&str], reach: Reach) -> Options {
        Options::new(
            "x",
            command.iter().map(OsString::from).collect(),
            reach,
            SlowRequest::parse("/sleep?ms={ms}").unwrap(),
        )
    }

    #[test]
    fn slow_request_parses_method_and_path() {
        let get = SlowRequest::parse("/sleep?ms={ms}").unwrap();
        assert_eq!(
            (get.method.as_str(), get.target.as_str()),
            ("GET", "/sleep?ms={ms}")
        );
        assert!(get.is_timed());
        let post = SlowRequest::parse("POST /orders").unwrap();
        assert_eq!(post.method, "POST");
        assert!(!post.is_timed());
        for bad in ["", "sleep", "get /x", "GET", "GET /a b"] {
            assert!(SlowRequest::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn slow_request_fills_placeholders() {
        let mut slow = SlowRequest::parse("POST /orders?ms={ms}&id={n}").unwrap();
        slow.body = "order-{n}".to_owned();
        let req = slow.build(250, 7);
        assert_eq!(req.target, "/orders?ms=250&id=7");
        assert_eq!(req.body, b"order-7");
    }

    #[test]
    fn validation_wants_a_way_to_reach_the_server() {
        assert_eq!(
            options(&["srv"], Reach::Placeholder).validate(),
            Err(OptionsError::NoReach)
        );
        assert!(
            options(&["srv", "--addr", "{addr}"], Reach::Placeholder)
                .validate()
                .is_ok()
        );
        assert!(
            options(&["srv"], Reach::Env("PORT".into()))
                .validate()
                .is_ok()
        );
        assert!(
            options(&["srv"], Reach::Fixed("127.0.0.1:8080".parse().unwrap()))
                .validate()
                .is_ok()
        );
        assert!(
            options(&["srv"], Reach::Fixed("10.0.0.1:80".parse().unwrap()))
                .validate()
                .is_err()
        );
        assert_eq!(
            options(&[], Reach::Env("PORT".into())).validate(),
            Err(OptionsError::NoCommand)
        );
        let mut bad_probe = options(&["srv"], Reach::Env("PORT".into()));
        bad_probe.probe = "health".into();
        assert!(bad_probe.validate().is_err());
    }

    #[test]
    fn errors_read_as_one_lowercase_sentence() {
        let errors = [
            OptionsError::NoCommand,
            OptionsError::NoReach,
            OptionsError::NoSlow,
            OptionsError::UnknownCheck("nope".into()),
        ];
        for e in errors {
            let text = e.to_string();
            assert!(text.starts_with(char::is_lowercase), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
    }
}
