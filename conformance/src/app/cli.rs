//! `graceful-conformance app`: the command line of app mode.
//!
//! ```text
//! graceful-conformance app --slow REQUEST [--addr HOST:PORT | --port-env NAME]
//!     [--slow-body TEXT] [--slow-ms N] [--probe PATH] [--ready PATH]
//!     [--unready-delay-ms N] [BOUNDS] [--check NAME]... [--json FILE]
//!     [--name NAME] [--list] -- COMMAND [ARGS...]
//! ```
//!
//! Prints one row per check, the findings of the checks that failed or did
//! not apply, and a summary line. Exit code 0 when no check failed, 1 when
//! one did, 2 on a usage error (nothing is started then).

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write as _};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};

use super::options::{Bounds, Options, OptionsError, Reach, SlowRequest};
use super::{Check, report};

/// Exit code of a usage error.
const USAGE: u8 = 2;

fn number(name: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("N")
        .value_parser(value_parser!(u64))
        .help(help)
}

/// The `app` command line.
pub fn command() -> Command {
    Command::new("app")
        .bin_name("graceful-conformance app")
        .about(
            "Checks any HTTP server's shutdown from outside: in-flight requests, refused \
             connections, keep-alive, idle clients, readiness, exit status, second signal, load",
        )
        .after_help(
            "Placeholders: {port} and {addr} in COMMAND become a free loopback port and \
             127.0.0.1:PORT; {ms} in --slow becomes how long the request should take; {n} in \
             --slow and --slow-body a counter.\n\nExample:\n  graceful-conformance app \
             --slow '/sleep?ms={ms}' --ready /health/ready -- ./my-server --listen {addr}",
        )
        .arg(
            Arg::new("addr")
                .long("addr")
                .value_name("HOST:PORT")
                .conflicts_with("port-env")
                .help("The server always listens on this loopback address"),
        )
        .arg(
            Arg::new("port-env")
                .long("port-env")
                .value_name("NAME")
                .help("Tell the server its port in this environment variable (e.g. PORT)"),
        )
        .arg(Arg::new("slow").long("slow").value_name("REQUEST").help(
            "A request that takes a while: `[METHOD ]PATH`, e.g. `/sleep?ms={ms}` (required)",
        ))
        .arg(
            Arg::new("slow-body")
                .long("slow-body")
                .value_name("TEXT")
                .help("The slow request's body ({n}: a counter)"),
        )
        .arg(number(
            "slow-ms",
            "How long the slow request takes when it has {ms} [default: 2000]",
        ))
        .arg(
            Arg::new("probe")
                .long("probe")
                .value_name("PATH")
                .default_value("/")
                .help("A quick GET for the keep-alive checks; any status will do"),
        )
        .arg(
            Arg::new("ready")
                .long("ready")
                .value_name("PATH")
                .help("The readiness path: 2xx while ready, anything else once shutting down"),
        )
        .arg(number(
            "unready-delay-ms",
            "How long the server keeps accepting after the signal [default: 0]",
        ))
        .arg(number(
            "start-timeout-ms",
            "How long the server may take to answer after it is started [default: 10000]",
        ))
        .arg(number(
            "exit-bound-ms",
            "With nothing in progress, from signal plus unready delay to exit [default: 500]",
        ))
        .arg(number(
            "drain-exit-ms",
            "From the last response of the drain to the exit [default: 500]",
        ))
        .arg(number(
            "second-signal-ms",
            "From a second signal to the exit [default: 500]",
        ))
        .arg(number(
            "load-loss-permille",
            "Requests under load that may be lost to the exit race, per 1000 [default: 5]",
        ))
        .arg(
            Arg::new("check")
                .long("check")
                .value_name("NAME")
                .action(ArgAction::Append)
                .help("Run only this check (repeatable; `start` always runs); see --list"),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("Also write the reports as JSON to FILE"),
        )
        .arg(
            Arg::new("name")
                .long("name")
                .value_name("NAME")
                .help("The server's name in reports (default: the program's file name)"),
        )
        .arg(
            Arg::new("list")
                .long("list")
                .action(ArgAction::SetTrue)
                .help("List the checks and exit"),
        )
        .arg(
            Arg::new("command")
                .value_name("COMMAND")
                .num_args(1..)
                .last(true)
                .value_parser(value_parser!(OsString))
                .help("The command that starts the server, after `--`"),
        )
}

fn millis(matches: &ArgMatches, name: &str, default: Duration) -> Duration {
    matches
        .get_one::<u64>(name)
        .map_or(default, |ms| Duration::from_millis(*ms))
}

/// The options and the checks a parsed command line asks for.
pub fn options_from(matches: &ArgMatches) -> Result<(Options, Vec<Check>), OptionsError> {
    let command: Vec<OsString> = matches
        .get_many::<OsString>("command")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if command.is_empty() {
        return Err(OptionsError::NoCommand);
    }
    let reach = if let Some(text) = matches.get_one::<String>("addr") {
        let addr: Option<SocketAddr> = text.to_socket_addrs().ok().and_then(|mut a| a.next());
        Reach::Fixed(addr.ok_or_else(|| OptionsError::BadValue {
            option: "--addr",
            value: text.clone(),
            expected: "HOST:PORT, e.g. 127.0.0.1:8080",
        })?)
    } else if let Some(name) = matches.get_one::<String>("port-env") {
        Reach::Env(name.clone())
    } else {
        Reach::Placeholder
    };
    let mut slow = SlowRequest::parse(
        matches
            .get_one::<String>("slow")
            .ok_or(OptionsError::NoSlow)?,
    )?;
    if let Some(body) = matches.get_one::<String>("slow-body") {
        body.clone_into(&mut slow.body);
    }
    let name = matches
        .get_one::<String>("name")
        .cloned()
        .unwrap_or_else(|| {
            PathBuf::from(&command[0])
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let mut options = Options::new(name, command, reach, slow);
    if let Some(ms) = matches.get_one::<u64>("slow-ms") {
        options.slow_ms = *ms;
    }
    if let Some(probe) = matches.get_one::<String>("probe") {
        probe.clone_into(&mut options.probe);
    }
    options.ready = matches.get_one::<String>("ready").cloned();
    options.unready_delay = millis(matches, "unready-delay-ms", Duration::ZERO);
    let defaults = Bounds::default();
    options.bounds = Bounds {
        start: millis(matches, "start-timeout-ms", defaults.start),
        exit: millis(matches, "exit-bound-ms", defaults.exit),
        drain_exit: millis(matches, "drain-exit-ms", defaults.drain_exit),
        second_signal: millis(matches, "second-signal-ms", defaults.second_signal),
        load_loss_permille: match matches.get_one::<u64>("load-loss-permille") {
            Some(n) => u32::try_from(*n)
                .ok()
                .filter(|n| *n <= 1000)
                .ok_or_else(|| OptionsError::BadValue {
                    option: "--load-loss-permille",
                    value: n.to_string(),
                    expected: "0 to 1000",
                })?,
            None => defaults.load_loss_permille,
        },
    };
    options.validate()?;
    let mut checks = Vec::new();
    for name in matches.get_many::<String>("check").into_iter().flatten() {
        let check =
            Check::from_name(name).ok_or_else(|| OptionsError::UnknownCheck(name.clone()))?;
        if !checks.contains(&check) {
            checks.push(check);
        }
    }
    if checks.is_empty() {
        checks = Check::all().to_vec();
    }
    Ok((options, checks))
}

/// Runs app mode on `args` (without the program name and `app`) and
/// returns the exit code: 0 when no check failed, 1 when one did, 2 on a
/// usage error.
#[allow(clippy::print_stdout)]
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from("app")).chain(args);
    let matches = match command().try_get_matches_from(argv) {
        Ok(matches) => matches,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(USAGE));
        }
    };
    if matches.get_flag("list") {
        for check in Check::all() {
            println!("{:<24} {}", check.name(), check.description());
        }
        return ExitCode::SUCCESS;
    }
    let (options, checks) = match options_from(&matches) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let reports = super::run(&options, &checks, |r| {
        eprintln!("{:<24} {}", r.check.name(), r.verdict);
    });
    print!("{}", report::table(&options.name, &reports));
    let _ = io::stdout().flush();
    if let Some(path) = matches.get_one::<PathBuf>("json") {
        let json = report::to_json(&options.name, &reports);
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        if let Err(e) = fs::write(path, text + "\n") {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::from(USAGE);
        }
    }
    if report::passed(&reports) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
