//! The contract's command line, and the shutdown it configures.
//!
//! [`Options::parse`] reads the command line with clap. A usage error (an
//! unknown option, a missing or bad value, a `--cleanup-fail NAME` that
//! names no step) ends the process with a short message naming the option
//! on standard error, exit code 2 and nothing on standard output, before
//! anything is bound; so is a `--tls-cert` without `--tls-key` (or the
//! other way round) or a certificate or key file that cannot be read or
//! parsed, named with its option and path. [`Options::driver`] builds the shutdown driver from
//! it, with [`print_event`] as its observer; a setting the core refuses is
//! reported the same way, naming the option behind it (`option_of`, the one
//! place that knows how the core names its settings).

use crate::events::{self, print_event};
use crate::steps::{self, Step, Told};
use crate::store::{Journal, Store};
use crate::tls;
use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser};
use graceful_core::{ConfigError, Driver, Setting, Shutdown};
use graceful_tokio::tls::rustls::ServerConfig;
use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// An HTTP server (HTTP/1.1, and HTTP/2 with prior knowledge where the
/// adapter serves it) that shuts down gracefully, as the conformance
/// contract says.
#[derive(Debug, Parser)]
#[command(version, allow_negative_numbers = true)]
struct Args {
    /// Where to listen; port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0", value_parser = parse_addr)]
    addr: SocketAddr,
    /// How long requests in progress may run, from `closed`, before they are abandoned.
    #[arg(long, value_name = "N", default_value_t = 30_000)]
    drain_timeout_ms: u64,
    /// After the first signal, serve on (unready) for N ms before closing the listener.
    #[arg(long, value_name = "N", default_value_t = 0)]
    unready_delay_ms: u64,
    /// Names of cleanup steps, registered in this order at start-up.
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    cleanup: Vec<String>,
    /// How long each `--cleanup` step takes.
    #[arg(long, value_name = "N", default_value_t = 0)]
    cleanup_ms: u64,
    /// How long one cleanup step may take before it is abandoned.
    #[arg(long, value_name = "N", default_value_t = 5_000)]
    cleanup_timeout_ms: u64,
    /// That step returns an error.
    #[arg(long, value_name = "NAME")]
    cleanup_fail: Vec<String>,
    /// That step panics.
    #[arg(long, value_name = "NAME")]
    cleanup_panic: Vec<String>,
    /// That step never finishes by itself.
    #[arg(long, value_name = "NAME")]
    cleanup_hang: Vec<String>,
    /// SQLite database for `/orders` and `/jobs`, created if missing.
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// A process started by an upgrade (SIGHUP) exits with code 3 before it listens.
    #[arg(long)]
    upgrade_child_fails: bool,
    /// Serve TLS on `--addr` with this PEM certificate chain (with `--tls-key`).
    #[arg(long, value_name = "PATH")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, value_name = "PATH")]
    tls_key: Option<PathBuf>,
    /// The default interval of `/events`.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    events_ms: u64,
}

fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    let mut addrs = value
        .to_socket_addrs()
        .map_err(|error| format!("not HOST:PORT ({error})"))?;
    addrs.next().ok_or_else(|| "no address".to_owned())
}

/// A usage error of the target called `name`, naming `option`.
fn usage(name: &'static str, option: &str, message: impl fmt::Display) -> clap::Error {
    Args::command().name(name).error(
        ErrorKind::ValueValidation,
        format!("invalid value for {option}: {message}"),
    )
}

/// Exits with a usage error naming `option`: a short message on standard
/// error, exit code 2, nothing on standard output.
pub fn usage_error(option: &str, message: impl fmt::Display) -> ! {
    usage(events::name(), option, message).exit()
}

/// The option behind a setting the core refuses.
///
/// The one place that knows how the core names its settings: no grace
/// period is set here, so what is neither the unready delay nor the drain
/// timeout is the cleanup timeout.
fn option_of(error: &ConfigError) -> &'static str {
    match error.setting() {
        Setting::UnreadyDelay => "--unready-delay-ms",
        Setting::DrainTimeout => "--drain-timeout-ms",
        Setting::CleanupTimeout => "--cleanup-timeout-ms",
        // The targets set no grace period, so the core never names it;
        // should one be set, its option is the drain's.
        Setting::GracePeriod => "--drain-timeout-ms",
    }
}

/// The contract's command line, parsed and checked.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--addr`: where to listen.
    pub addr: SocketAddr,
    /// `--drain-timeout-ms`.
    pub drain_timeout: Duration,
    /// `--unready-delay-ms`.
    pub unready_delay: Duration,
    /// `--cleanup-ms`: how long each `--cleanup` step works (not the
    /// [`STORE`](crate::STORE) step).
    pub cleanup_work: Duration,
    /// `--cleanup-timeout-ms`.
    pub cleanup_timeout: Duration,
    /// `--store`: the SQLite file for `/orders` and `/jobs`.
    pub store: Option<PathBuf>,
    /// `--events-ms`: the interval of `/events` when the query has no `ms`.
    pub events_every: Duration,
    /// The cleanup steps in registration order: [`STORE`](crate::STORE)
    /// first when there is a store, then the `--cleanup` steps.
    pub steps: Vec<Step>,
    /// `--upgrade-child-fails`: a process started by an upgrade exits 3
    /// before `listening`.
    pub upgrade_child_fails: bool,
    /// `--tls-cert` and `--tls-key`, loaded: serve TLS with this config
    /// (ALPN `h2` and `http/1.1`); `None` for plaintext.
    pub tls: Option<Arc<ServerConfig>>,
}

impl Options {
    /// Parses the process's command line for the target called `name`, or
    /// exits with a usage error (code 2; `--help` and `--version` exit 0).
    ///
    /// `name` is also the prefix of what the target logs on standard error.
    pub fn parse(name: &'static str) -> Options {
        events::set_name(name);
        Options::try_parse_from(name, std::env::args_os()).unwrap_or_else(|error| error.exit())
    }

    /// Parses `args` (the program's name first) for the target called
    /// `name`.
    ///
    /// # Errors
    ///
    /// clap's usage error: an unknown option, a missing or bad value, or a
    /// cleanup step that is badly named, named twice, or told two things.
    pub fn try_parse_from<I, T>(name: &'static str, args: I) -> Result<Options, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Args::command().name(name).try_get_matches_from(args)?;
        let args = Args::from_arg_matches(&matches)?;
        let told = [
            ("--cleanup-fail", Told::Fail, &args.cleanup_fail[..]),
            ("--cleanup-panic", Told::Panic, &args.cleanup_panic[..]),
            ("--cleanup-hang", Told::Hang, &args.cleanup_hang[..]),
        ];
        let steps = steps::plan(args.store.is_some(), &args.cleanup, told)
            .map_err(|(option, message)| usage(name, option, message))?;
        let tls = tls::config(args.tls_cert.as_deref(), args.tls_key.as_deref())
            .map_err(|(option, message)| usage(name, option, message))?;
        Ok(Options {
            addr: args.addr,
            drain_timeout: Duration::from_millis(args.drain_timeout_ms),
            unready_delay: Duration::from_millis(args.unready_delay_ms),
            cleanup_work: Duration::from_millis(args.cleanup_ms),
            cleanup_timeout: Duration::from_millis(args.cleanup_timeout_ms),
            store: args.store,
            events_every: Duration::from_millis(args.events_ms),
            steps,
            upgrade_child_fails: args.upgrade_child_fails,
            tls,
        })
    }

    /// The shutdown's driver, with these settings and [`print_event`] as its
    /// observer; a setting the core refuses is a usage error naming its
    /// option.
    pub fn driver(&self) -> Driver {
        self.try_driver().unwrap_or_else(|error| error.exit())
    }

    /// [`Options::driver`], with the usage error returned.
    ///
    /// # Errors
    ///
    /// The usage error for the option behind the [`ConfigError`].
    pub fn try_driver(&self) -> Result<Driver, clap::Error> {
        Shutdown::builder()
            .unready_delay(self.unready_delay)
            .drain_timeout(self.drain_timeout)
            .cleanup_timeout(self.cleanup_timeout)
            .on_event(print_event)
            .build()
            .map_err(|error| usage(events::name(), option_of(&error), error))
    }

    /// Opens the `--store` file, if any; a file that cannot be opened is a
    /// usage error naming `--store`.
    pub fn open_store(&self, journal: Journal) -> Option<Store> {
        self.store.as_ref().map(|path| {
            Store::open(path, journal).unwrap_or_else(|error| {
                usage_error(
                    "--store",
                    format!("cannot open {}: {error}", path.display()),
                )
            })
        })
    }

    /// Registers the cleanup steps on `shutdown`, in order, with the
    /// target's runtime doing their work: the [`STORE`](crate::STORE) step,
    /// when there is a `store`, closes it with `close` (which runs
    /// [`Store::close`], a blocking call, off the runtime's threads); the
    /// others `sleep` for `--cleanup-ms`. Then each behaves as [`Told`].
    ///
    /// Registration stops at the first refusal: a signal came during
    /// start-up and cleanup has begun; what is registered so far is what
    /// runs.
    pub fn register_cleanup<S, SF, C, CF>(
        &self,
        shutdown: &Shutdown,
        store: Option<&Store>,
        sleep: S,
        close: C,
    ) where
        S: FnOnce(Duration) -> SF + Clone + Send + 'static,
        SF: Future + Send + 'static,
        C: FnOnce(Store) -> CF + Clone + Send + 'static,
        CF: Future<Output = io::Result<()>> + Send + 'static,
    {
        steps::register(
            shutdown,
            &self.steps,
            self.cleanup_work,
            store,
            sleep,
            close,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::STORE;

    const TARGET: &str = "test-target";

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(TARGET, std::iter::once(TARGET).chain(args.iter().copied()))
    }

    /// The usage error `args` gives: it must exist, exit 2 and name `option`.
    fn refused(args: &[&str], option: &str) -> String {
        let error = parse(args).expect_err("a usage error");
        let text = error.to_string();
        assert_eq!(error.exit_code(), 2, "{args:?}: {text}");
        assert!(
            text.contains(option),
            "{args:?} does not name {option}: {text}"
        );
        text
    }

    #[test]
    fn defaults_are_the_contracts() {
        let options = parse(&[]).unwrap();
        assert_eq!(options.addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!(options.drain_timeout, Duration::from_secs(30));
        assert_eq!(options.unready_delay, Duration::ZERO);
        assert_eq!(options.cleanup_work, Duration::ZERO);
        assert_eq!(options.cleanup_timeout, Duration::from_secs(5));
        assert_eq!(options.store, None);
        assert_eq!(options.events_every, Duration::from_secs(1));
        assert!(options.steps.is_empty());
        assert!(options.tls.is_none());
    }

    #[test]
    fn values_are_read_in_milliseconds() {
        let options = parse(&[
            "--addr",
            "127.0.0.1:8080",
            "--drain-timeout-ms",
            "1500",
            "--unready-delay-ms",
            "20",
            "--cleanup-ms",
            "3",
            "--cleanup-timeout-ms",
            "40",
            "--events-ms",
            "250",
        ])
        .unwrap();
        assert_eq!(options.events_every, Duration::from_millis(250));
        assert_eq!(options.addr.port(), 8080);
        assert_eq!(options.drain_timeout, Duration::from_millis(1500));
        assert_eq!(options.unready_delay, Duration::from_millis(20));
        assert_eq!(options.cleanup_work, Duration::from_millis(3));
        assert_eq!(options.cleanup_timeout, Duration::from_millis(40));
    }

    #[test]
    fn bad_values_name_their_option() {
        refused(&["--no-such-option"], "--no-such-option");
        refused(&["--drain-timeout-ms", "abc"], "--drain-timeout-ms");
        refused(&["--drain-timeout-ms"], "--drain-timeout-ms");
        refused(&["--unready-delay-ms=-1"], "--unready-delay-ms");
        refused(&["--unready-delay-ms", "-1"], "--unready-delay-ms");
        refused(&["--drain-timeout-ms", "-5"], "--drain-timeout-ms");
        refused(&["--cleanup-ms", "1.5"], "--cleanup-ms");
        refused(&["--cleanup-timeout-ms", "x"], "--cleanup-timeout-ms");
        refused(&["--events-ms", "-1"], "--events-ms");
        refused(&["--addr", "no-such-address"], "--addr");
        refused(&["--addr", "127.0.0.1"], "--addr");
    }

    #[test]
    fn steps_come_store_first_then_in_order() {
        let options =
            parse(&["--store", "x.sqlite", "--cleanup", "b,a", "--cleanup", "c"]).unwrap();
        let names: Vec<&str> = options.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [STORE, "b", "a", "c"]);
        assert!(options.steps.iter().all(|s| s.told == Told::Succeed));
    }

    #[test]
    fn steps_are_told_what_to_do() {
        let options = parse(&[
            "--cleanup",
            "a,b,c,d",
            "--cleanup-fail",
            "a",
            "--cleanup-panic",
            "b",
            "--cleanup-hang",
            "c",
            "--cleanup-fail",
            "a",
        ])
        .unwrap();
        let told: Vec<Told> = options.steps.iter().map(|s| s.told).collect();
        assert_eq!(told, [Told::Fail, Told::Panic, Told::Hang, Told::Succeed]);
    }

    #[test]
    fn bad_steps_name_their_option() {
        refused(&["--cleanup", "a,a"], "--cleanup");
        refused(&["--cleanup", "a,,b"], "--cleanup");
        refused(&["--cleanup", "a b"], "--cleanup");
        let text = refused(&["--store", "x", "--cleanup", "store"], "--cleanup");
        assert!(text.contains("named twice"), "{text}");
        let text = refused(&["--cleanup", "a", "--cleanup-fail", "b"], "--cleanup-fail");
        assert!(text.contains("no cleanup step is named `b`"), "{text}");
        refused(&["--cleanup-panic", "store"], "--cleanup-panic");
        refused(&["--cleanup-hang", "x"], "--cleanup-hang");
        let text = refused(
            &[
                "--cleanup",
                "a",
                "--cleanup-fail",
                "a",
                "--cleanup-hang",
                "a",
            ],
            "--cleanup-hang",
        );
        assert!(text.contains("already told to fail"), "{text}");
        // The store step can be told too.
        let options = parse(&["--store", "x", "--cleanup-fail", STORE]).unwrap();
        assert_eq!(options.steps[0].told, Told::Fail);
    }

    #[test]
    fn settings_the_core_refuses_name_their_option() {
        let day_and_more = (24 * 60 * 60 * 1000 + 1).to_string();
        for option in [
            "--drain-timeout-ms",
            "--unready-delay-ms",
            "--cleanup-timeout-ms",
        ] {
            let error = parse(&[option, &day_and_more])
                .unwrap()
                .try_driver()
                .expect_err("refused by the core");
            assert_eq!(error.exit_code(), 2);
            assert!(error.to_string().contains(option), "{option}: {error}");
        }
        let error = parse(&["--cleanup-timeout-ms", "0"])
            .unwrap()
            .try_driver()
            .expect_err("a zero cleanup timeout");
        assert!(
            error.to_string().contains("--cleanup-timeout-ms"),
            "{error}"
        );
        assert!(parse(&[]).unwrap().try_driver().is_ok());
    }

    /// A fresh self-signed certificate and its key, as PEM files in a
    /// directory of their own.
    fn pem_files() -> (std::path::PathBuf, String, String) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "graceful-targets-tls-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
        let path = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
        (dir, path(cert), path(key))
    }

    #[test]
    fn tls_files_are_loaded_with_alpn() {
        let (dir, cert, key) = pem_files();
        let options = parse(&["--tls-cert", &cert, "--tls-key", &key]).unwrap();
        let config = options.tls.expect("a TLS config");
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_tls_options_name_their_option_and_file() {
        let (dir, cert, key) = pem_files();
        refused(&["--tls-cert", &cert], "--tls-key");
        refused(&["--tls-key", &key], "--tls-cert");
        let missing = dir.join("missing.pem");
        let missing = missing.to_str().unwrap();
        let text = refused(&["--tls-cert", missing, "--tls-key", &key], "--tls-cert");
        assert!(text.contains(missing), "{text}");
        let text = refused(&["--tls-cert", &cert, "--tls-key", missing], "--tls-key");
        assert!(text.contains(missing), "{text}");
        // Each file holding the other's kind of PEM: nothing to load.
        let text = refused(&["--tls-cert", &key, "--tls-key", &key], "--tls-cert");
        assert!(text.contains(&key), "{text}");
        let text = refused(&["--tls-cert", &cert, "--tls-key", &cert], "--tls-key");
        assert!(text.contains(&cert), "{text}");
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "not pem at all").unwrap();
        let garbage = garbage.to_str().unwrap();
        refused(&["--tls-cert", garbage, "--tls-key", &key], "--tls-cert");
        refused(&["--tls-cert", &cert, "--tls-key", garbage], "--tls-key");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
