//! `graceful-conformance`: run the conformance scenarios against any command.
//!
//! ```text
//! graceful-conformance [--scenario NAME]... [--name NAME] [--json FILE] [--list] -- COMMAND [ARGS...]
//! ```
//!
//! Prints one row per scenario, then the failures in detail. Exit code 0 when
//! every scenario passed, 1 when one failed, 2 on a usage error.
//!
//! ```text
//! graceful-conformance app --slow REQUEST [OPTIONS] -- COMMAND [ARGS...]
//! ```
//!
//! checks a server that does not speak the contract, from outside only (see
//! `graceful_conformance::app`).

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command, value_parser};
use graceful_conformance::{Scenario, Target, app, report, run_scenarios};

fn command() -> Command {
    Command::new("graceful-conformance")
        .about("Checks a server process against the graceful-shutdown conformance contract")
        .after_help(
            "To check a server that does not speak the contract (your own service, in any \
             language), see `graceful-conformance app --help`.",
        )
        .arg(
            Arg::new("scenario")
                .long("scenario")
                .value_name("NAME")
                .action(ArgAction::Append)
                .help("Run only this scenario (repeatable); see --list"),
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
                .help("The target's name in reports (default: the program's file name)"),
        )
        .arg(
            Arg::new("list")
                .long("list")
                .action(ArgAction::SetTrue)
                .help("List the scenarios and exit"),
        )
        .arg(
            Arg::new("command")
                .value_name("COMMAND")
                .num_args(1..)
                .last(true)
                .value_parser(value_parser!(OsString))
                .help("The server to check, after `--`"),
        )
}

#[allow(clippy::print_stdout)]
fn main() -> ExitCode {
    // `app` as the first word is app mode; anything else is the contract
    // mode, whose command comes after `--`, so the two cannot be confused.
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|first| first == "app") {
        return app::cli::main(args.skip(1));
    }
    let matches = command().get_matches();
    if matches.get_flag("list") {
        for s in Scenario::all() {
            println!("{:<44} {}", s.name(), s.description());
        }
        return ExitCode::SUCCESS;
    }
    let mut scenarios = Vec::new();
    for name in matches.get_many::<String>("scenario").into_iter().flatten() {
        match Scenario::from_name(name) {
            Some(s) => scenarios.push(s),
            None => {
                eprintln!("error: unknown scenario {name:?} (see --list)");
                return ExitCode::from(2);
            }
        }
    }
    if scenarios.is_empty() {
        scenarios = Scenario::all().to_vec();
    }
    let words: Vec<OsString> = matches
        .get_many::<OsString>("command")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let name = matches
        .get_one::<String>("name")
        .cloned()
        .unwrap_or_else(|| {
            words
                .first()
                .map(|p| {
                    PathBuf::from(p)
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default()
                })
                .unwrap_or_default()
        });
    let Some(target) = Target::from_command_line(name, words) else {
        eprintln!(
            "error: no command given; usage: graceful-conformance [OPTIONS] -- COMMAND [ARGS...]"
        );
        return ExitCode::from(2);
    };
    let reports = run_scenarios(&target, &scenarios, |r| {
        eprintln!("{:<44} {}", r.name, r.verdict());
    });
    print!("{}", report::table(&target.name, &reports));
    if let Some(path) = matches.get_one::<PathBuf>("json") {
        let json = report::to_json(&[(target.name.clone(), reports.clone())]);
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        if let Err(e) = fs::write(path, text + "\n") {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if reports.iter().all(|r| r.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
