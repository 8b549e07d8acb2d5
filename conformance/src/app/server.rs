//! Starting the user's server and knowing when it serves.
//!
//! A server in app mode prints nothing the kit reads: it is up when a
//! request to its probe path gets an answer (any status), and, with a
//! readiness path, when that path answers `2xx`. The port comes from a free
//! loopback port picked just before the start, handed over through the
//! command's placeholders or an environment variable (see
//! [`options`](super::options)).
//!
//! The environment variable is set by running the command through
//! `env NAME=PORT COMMAND...`: `env` replaces itself with the command, so
//! the process the kit signals is the server itself, and the kit's
//! [`Process`] harness (its own process group, killed on drop) needs no
//! change.

use std::ffi::OsString;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use super::options::{Options, Reach};
use crate::http::{self, Outcome, Request};
use crate::process::{Process, Target};

/// How long one start-up poll waits for its answer.
const POLL_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the kit waits for a dead server's last words.
const STDERR_GRACE: Duration = Duration::from_millis(200);
/// How often the start-up polls.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// A started server that answers requests.
#[derive(Debug)]
pub(crate) struct Running {
    /// The process (killed with its group when dropped).
    pub(crate) process: Process,
    /// Where it serves.
    pub(crate) addr: SocketAddr,
    /// How long it took to answer its first request.
    pub(crate) start: Duration,
}

/// A free loopback port: bound, read, and let go. Another process could take
/// it in between; on a loopback port picked by the kernel that is rare, and
/// the start then fails with the server's own error.
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// The target to spawn and its address, placeholders filled in.
fn target_for(options: &Options) -> io::Result<(Target, SocketAddr)> {
    let (port, addr) = match &options.reach {
        Reach::Fixed(addr) => (addr.port(), *addr),
        Reach::Placeholder | Reach::Env(_) => {
            let port = free_port()?;
            (port, SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        }
    };
    let fill = |word: &OsString| -> OsString {
        match word.to_str() {
            Some(text) if text.contains('{') => text
                .replace("{port}", &port.to_string())
                .replace("{addr}", &addr.to_string())
                .into(),
            _ => word.clone(),
        }
    };
    let mut words: Vec<OsString> = options.command.iter().map(fill).collect();
    if let Reach::Env(name) = &options.reach {
        let mut assignment = OsString::from(name);
        assignment.push(format!("={port}"));
        words.splice(0..0, [OsString::from("env"), assignment]);
    }
    let target = Target::from_command_line(options.name.clone(), words)
        .ok_or_else(|| io::Error::other("empty command"))?;
    Ok((target, addr))
}

/// Starts the server and waits until it answers (and, with a readiness
/// path, until that path answers `2xx`). On failure, says what was seen.
pub(crate) fn start(options: &Options) -> Result<Running, String> {
    let (target, addr) = target_for(options).map_err(|e| format!("cannot pick a port: {e}"))?;
    let spawned = Instant::now();
    let mut process = Process::spawn(&target, &[])
        .map_err(|e| format!("cannot start {}: {e}", target.program.display()))?;
    let deadline = spawned + options.bounds.start;
    let probe = Request::get(options.probe.clone());
    let ready = options
        .ready
        .as_ref()
        .map(|path| Request::get(path.clone()));
    let mut last = String::from("no answer");
    loop {
        if let Some(exit) = process.try_exit() {
            // Standard error has its own reader thread: give it the moment
            // it needs to read what the dying server wrote last.
            let _ = process.wait_stdout_end(STDERR_GRACE);
            let settle = Instant::now() + STDERR_GRACE;
            while process.stderr().is_empty() && Instant::now() < settle {
                thread::sleep(Duration::from_millis(5));
            }
            let tail = tail(&process.stderr());
            return Err(format!(
                "the server exited with {} before it answered{tail}",
                exit.describe()
            ));
        }
        if Instant::now() >= deadline {
            let tail = tail(&process.stderr());
            return Err(format!(
                "the server did not answer at {addr} within {} ms (last seen: {last}){tail}",
                options.bounds.start.as_millis()
            ));
        }
        let outcome = http::request(addr, ready.as_ref().unwrap_or(&probe), POLL_TIMEOUT);
        match (&ready, &outcome) {
            (None, Outcome::Response(_)) => break,
            (Some(_), Outcome::Response(r)) if (200..300).contains(&r.status()) => break,
            _ => last = outcome.to_string(),
        }
        thread::sleep(POLL_EVERY);
    }
    Ok(Running {
        process,
        addr,
        start: spawned.elapsed(),
    })
}

/// The end of a server's standard error, as a suffix for a message.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines.len().saturating_sub(5);
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its standard error ends: {}", lines[start..].join(" | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::options::SlowRequest;

    fn options(command: &[&str], reach: Reach) -> Options {
        Options::new(
            "x",
            command.iter().map(OsString::from).collect(),
            reach,
            SlowRequest::parse("/sleep?ms={ms}").unwrap(),
        )
    }

    #[test]
    fn placeholders_and_env_carry_the_port() {
        let (target, addr) = target_for(&options(
            &["srv", "--listen={addr}", "-p", "{port}"],
            Reach::Placeholder,
        ))
        .unwrap();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        assert_eq!(target.program, std::path::PathBuf::from("srv"));
        assert_eq!(
            target.args,
            [
                OsString::from(format!("--listen={addr}")),
                "-p".into(),
                addr.port().to_string().into()
            ]
        );
        let (target, addr) = target_for(&options(&["srv"], Reach::Env("PORT".into()))).unwrap();
        assert_eq!(target.program, std::path::PathBuf::from("env"));
        assert_eq!(
            target.args,
            [
                OsString::from(format!("PORT={}", addr.port())),
                "srv".into()
            ]
        );
    }

    #[test]
    fn a_server_that_exits_is_reported_with_its_stderr() {
        let err = start(&options(
            &["sh", "-c", "echo 'cannot bind {port}' >&2; exit 3"],
            Reach::Placeholder,
        ))
        .unwrap_err();
        assert!(err.contains("exited with code 3"), "{err}");
        assert!(err.contains("cannot bind"), "{err}");
    }
}
