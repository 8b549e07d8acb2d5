//! The child-process harness: start a target, read its events, signal it,
//! collect its exit status.
//!
//! A [`Process`] is a real child process in a process group of its own. A
//! reader thread timestamps every standard-output line as it arrives; another
//! collects standard error for diagnostics. Dropping a [`Process`] kills its
//! whole process group with `SIGKILL` and reaps the child, so no scenario
//! leaves a server behind.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal;
use nix::unistd::Pid;

use crate::contract::Event;

/// How much of a target's standard error is kept for diagnostics.
const STDERR_KEEP: usize = 64 * 1024;

/// A server to check: a program and the arguments that come before the
/// contract's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A short name for reports (`tokio`, `python`, ...).
    pub name: String,
    /// The program to run.
    pub program: PathBuf,
    /// Arguments placed before the options each scenario adds.
    pub args: Vec<OsString>,
}

impl Target {
    /// A target that runs `program` with no leading arguments.
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// Adds one leading argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// A target from a whole command line (`program arg...`); `None` when
    /// the command line is empty.
    pub fn from_command_line<I, S>(name: impl Into<String>, command: I) -> Option<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut words = command.into_iter().map(Into::into);
        let program = words.next()?;
        Some(Self {
            name: name.into(),
            program: program.into(),
            args: words.collect(),
        })
    }
}

/// The signals the contract speaks of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGTERM` (15): start a graceful shutdown.
    Term,
    /// `SIGINT` (2): start a graceful shutdown, like `SIGTERM`.
    Int,
    /// `SIGKILL` (9): the end nobody can handle.
    Kill,
}

impl Signal {
    /// The signal's name as the contract prints it (`SIGTERM`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Term => "SIGTERM",
            Self::Int => "SIGINT",
            Self::Kill => "SIGKILL",
        }
    }

    /// The signal's number.
    pub fn number(self) -> i32 {
        self.nix() as i32
    }

    fn nix(self) -> signal::Signal {
        match self {
            Self::Term => signal::Signal::SIGTERM,
            Self::Int => signal::Signal::SIGINT,
            Self::Kill => signal::Signal::SIGKILL,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One standard-output line and when the kit read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// When the line was read.
    pub at: Instant,
    /// The line without its newline.
    pub text: String,
}

/// How and when a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// When the kit saw the exit.
    pub at: Instant,
    /// The status.
    pub status: ExitStatus,
}

impl Exit {
    /// The exit code, when the process exited (rather than died of a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal the process died of, if it did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// `code 0` or `killed by signal 15`.
    pub fn describe(&self) -> String {
        match (self.code(), self.signal()) {
            (Some(code), _) => format!("code {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => format!("{:?}", self.status),
        }
    }
}

#[derive(Debug, Default)]
struct OutState {
    lines: Vec<Line>,
    eof: bool,
}

#[derive(Debug, Default)]
struct Shared {
    out: Mutex<OutState>,
    changed: Condvar,
    stderr: Mutex<Vec<u8>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running (or finished) target process.
#[derive(Debug)]
pub struct Process {
    child: Child,
    pid: Pid,
    spawned_at: Instant,
    shared: Arc<Shared>,
    exit: Option<Exit>,
}

impl Process {
    /// Starts `target` with `args` appended to its own arguments, standard
    /// input closed and standard output and error captured.
    pub fn spawn(target: &Target, args: &[String]) -> io::Result<Self> {
        let mut command = Command::new(&target.program);
        command
            .args(&target.args)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn()?;
        let spawned_at = Instant::now();
        let pid = Pid::from_raw(i32::try_from(child.id()).map_err(io::Error::other)?);
        let shared = Arc::new(Shared::default());
        if let Some(stdout) = child.stdout.take() {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("target-stdout".into())
                .spawn(move || read_lines(stdout, &shared))?;
        }
        if let Some(stderr) = child.stderr.take() {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("target-stderr".into())
                .spawn(move || read_stderr(stderr, &shared))?;
        }
        Ok(Self {
            child,
            pid,
            spawned_at,
            shared,
            exit: None,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When the process was started.
    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// Sends `sig` to the process (not to its group) and returns when it was
    /// sent. Refuses once the exit has been collected, as the id may be
    /// reused.
    pub fn send(&mut self, sig: Signal) -> io::Result<Instant> {
        if self.exit.is_some() || self.try_exit().is_some() {
            return Err(io::Error::other(format!(
                "cannot send {sig}: the process has already exited"
            )));
        }
        let at = Instant::now();
        signal::kill(self.pid, sig.nix()).map_err(io::Error::from)?;
        Ok(at)
    }

    /// Every standard-output line read so far.
    pub fn lines(&self) -> Vec<Line> {
        lock(&self.shared.out).lines.clone()
    }

    /// Waits until a line (already read or still to come) satisfies `pred`,
    /// for at most `timeout`; `None` when none did, or standard output ended
    /// without one.
    pub fn wait_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<Line> {
        self.wait_line_from(0, timeout, pred).map(|(_, line)| line)
    }

    /// [`Process::wait_line`] for the lines from index `from` on (an index
    /// into [`Process::lines`]): the first that satisfies `pred`, with its
    /// index, so that a later wait can start after it.
    pub fn wait_line_from(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<(usize, Line)> {
        let deadline = Instant::now() + timeout;
        let mut out = lock(&self.shared.out);
        loop {
            let found = out
                .lines
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, l)| pred(&l.text));
            if let Some((index, line)) = found {
                return Some((index, line.clone()));
            }
            let now = Instant::now();
            if out.eof || now >= deadline {
                return None;
            }
            out = self
                .shared
                .changed
                .wait_timeout(out, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for the `listening HOST:PORT` line and returns the address,
    /// which must be on loopback.
    pub fn wait_listening(&mut self, timeout: Duration) -> Result<SocketAddr, String> {
        let Some(line) = self.wait_line(timeout, |l| l.starts_with("listening ")) else {
            // Standard output may end a moment before the exit is reaped.
            let how = match self
                .try_exit()
                .or_else(|| self.wait_exit(Duration::from_secs(1)))
            {
                Some(exit) => format!("it exited with {}", exit.describe()),
                None => format!("nothing within {} ms", timeout.as_millis()),
            };
            return Err(format!("no `listening` line: {how}"));
        };
        let Ok(Event::Listening(addr)) = Event::parse(&line.text) else {
            return Err(format!("malformed `listening` line: {:?}", line.text));
        };
        let addr = addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| format!("`listening` names no address: {addr:?}"))?;
        if !addr.ip().is_loopback() || addr.port() == 0 {
            return Err(format!("`listening {addr}` is not a loopback port"));
        }
        Ok(addr)
    }

    /// The exit, if the process has ended (without waiting).
    pub fn try_exit(&mut self) -> Option<Exit> {
        if self.exit.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exit = Some(Exit {
                at: Instant::now(),
                status,
            });
        }
        self.exit
    }

    /// Waits at most `timeout` for the process to end. The exit time is
    /// measured to about a millisecond.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<Exit> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exit) = self.try_exit() {
                return Some(exit);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits at most `timeout` for standard output to reach its end (after
    /// the exit, so that every line has been read); `false` on time-out.
    pub fn wait_stdout_end(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut out = lock(&self.shared.out);
        while !out.eof {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            out = self
                .shared
                .changed
                .wait_timeout(out, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Standard error so far (its last 64 KiB), lossily decoded.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&lock(&self.shared.stderr)).into_owned()
    }

    /// A handle that reads standard error later, even after the process is
    /// gone.
    pub(crate) fn stderr_source(&self) -> Box<dyn Fn() -> String> {
        let shared = Arc::clone(&self.shared);
        Box::new(move || String::from_utf8_lossy(&lock(&shared.stderr)).into_owned())
    }

    /// Kills the whole process group with `SIGKILL` and reaps the child.
    pub fn kill(&mut self) {
        // The group outlives the child only while a grandchild is in it;
        // either way a failure here means there is nothing left to kill.
        let _ = signal::killpg(self.pid, signal::Signal::SIGKILL);
        if self.exit.is_none()
            && let Ok(status) = self.child.wait()
        {
            self.exit = Some(Exit {
                at: Instant::now(),
                status,
            });
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_lines(stdout: impl Read, shared: &Shared) {
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).unwrap_or(0);
        let at = Instant::now();
        let mut out = lock(&shared.out);
        if n == 0 {
            out.eof = true;
            shared.changed.notify_all();
            return;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        out.lines.push(Line {
            at,
            text: String::from_utf8_lossy(&buf).into_owned(),
        });
        shared.changed.notify_all();
    }
}

fn read_stderr(mut stderr: impl Read, shared: &Shared) {
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stderr.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut kept = lock(&shared.stderr);
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > STDERR_KEEP {
            let cut = kept.len() - STDERR_KEEP;
            kept.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Target {
        Target::new("sh", "sh").arg("-c").arg(script)
    }

    #[test]
    fn reads_lines_stderr_and_exit_code() {
        let mut p = Process::spawn(&sh("echo one; echo oops >&2; echo two; exit 3"), &[]).unwrap();
        let exit = p.wait_exit(Duration::from_secs(10)).expect("exit");
        assert!(p.wait_stdout_end(Duration::from_secs(5)));
        assert_eq!(exit.code(), Some(3));
        assert_eq!(exit.signal(), None);
        let texts: Vec<_> = p.lines().into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["one", "two"]);
        // Standard error is read by its own thread; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !p.stderr().contains("oops") && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert!(p.stderr().contains("oops"));
    }

    #[test]
    fn tells_death_by_signal_from_exit_code() {
        let mut p = Process::spawn(&sh("echo ready; sleep 30"), &[]).unwrap();
        assert!(
            p.wait_line(Duration::from_secs(10), |l| l == "ready")
                .is_some()
        );
        p.send(Signal::Term).unwrap();
        let exit = p.wait_exit(Duration::from_secs(10)).expect("exit");
        assert_eq!(exit.code(), None);
        assert_eq!(exit.signal(), Some(15));
        assert!(p.send(Signal::Term).is_err(), "signalled an exited process");
    }

    #[test]
    fn wait_listening_parses_the_address() {
        let mut p = Process::spawn(&sh("echo 'listening 127.0.0.1:4567'; sleep 30"), &[]).unwrap();
        let addr = p.wait_listening(Duration::from_secs(10)).unwrap();
        assert_eq!(addr, "127.0.0.1:4567".parse().unwrap());
        let mut q = Process::spawn(&sh("echo 'listening 10.1.2.3:80'"), &[]).unwrap();
        assert!(q.wait_listening(Duration::from_secs(10)).is_err());
        let mut r = Process::spawn(&sh("exit 2"), &[]).unwrap();
        let err = r.wait_listening(Duration::from_secs(10)).unwrap_err();
        assert!(err.contains("no `listening`"), "{err}");
    }

    #[test]
    fn drop_kills_the_process() {
        let p = Process::spawn(&sh("sleep 30"), &[]).unwrap();
        let pid = Pid::from_raw(i32::try_from(p.pid()).unwrap());
        drop(p);
        // Reaped and gone: no process has that id any more (an id is not
        // handed out again this quickly).
        assert_eq!(signal::kill(pid, None), Err(nix::errno::Errno::ESRCH));
    }

    #[test]
    fn from_command_line_splits_program_and_args() {
        let t = Target::from_command_line("x", ["python3", "server.py", "-u"]).unwrap();
        assert_eq!(t.program, PathBuf::from("python3"));
        assert_eq!(
            t.args,
            vec![OsString::from("server.py"), OsString::from("-u")]
        );
        assert!(Target::from_command_line("x", Vec::<String>::new()).is_none());
    }
}
