//! The kit's gRPC scenarios, with their controls: every one passes against
//! the tokio target (the positive control), and each fails, for the reason
//! it is about, against a gRPC server shut down the way tonic teaches
//! (`Server::serve_with_incoming_shutdown`, tonic-health as it is), or one
//! that exits at the signal (the negative controls).
//!
//! Run with `cargo test -p graceful-targets --test grpc`; an argument keeps
//! only the rows whose name contains it. The scenarios run one after the
//! other, so that their timings stay meaningful on a busy machine.
//!
//! The control servers are this same test program, run again with
//! `--control naive` or `--control exits-at-signal`: it then serves the
//! contract's command line (`--addr`; the other options are ignored) and
//! event lines, instead of running the controls.

use graceful_conformance::{GrpcScenario, ScenarioReport, Target, run_grpc_scenario};
use graceful_targets::grpc::pb::contract_server::{Contract, ContractServer};
use graceful_targets::grpc::pb::{SleepReply, SleepRequest, Tick, TicksRequest};
use std::env;
use std::io::{self, Write};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_stream::Stream;
use tokio_stream::wrappers::{IntervalStream, TcpListenerStream};
use tonic::{Request, Response, Status};

/// Each scenario, the control server that must fail it, and words its
/// failure must contain.
const NEGATIVE: &[(GrpcScenario, &str, &str)] = &[
    (GrpcScenario::HealthFlips, "naive", "expected NOT_SERVING"),
    (GrpcScenario::WatchEndsAtClosed, "naive", "did not end"),
    (
        GrpcScenario::SleepCompletes,
        "exits-at-signal",
        "Sleep call 0",
    ),
    (GrpcScenario::TicksUnavailable, "naive", "Ticks did not end"),
    (GrpcScenario::PingLess, "naive", "did not exit"),
    (GrpcScenario::PrefaceLess, "naive", "did not exit"),
];

fn main() -> ExitCode {
    let mut args = env::args().skip_while(|a| a != "--control").skip(1);
    if let Some(mode) = args.next() {
        return control_server(&mode);
    }
    let filter = env::args().nth(1).filter(|a| !a.starts_with('-'));
    let keep = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let tokio = Target::new("tokio", env!("CARGO_BIN_EXE_tokio-target"));
    let mut failed = Vec::new();
    for &scenario in GrpcScenario::all() {
        let row = format!("positive {scenario}");
        if !keep(&row) {
            continue;
        }
        let report = run_grpc_scenario(&tokio, scenario);
        show(&row, &report);
        if !report.passed {
            failed.push(row);
        }
    }
    let me = env::current_exe().expect("the test program's path");
    for &(scenario, mode, words) in NEGATIVE {
        let row = format!("negative {scenario} {mode}");
        if !keep(&row) {
            continue;
        }
        let control = Target::new(mode, &me).arg("--control").arg(mode);
        let report = run_grpc_scenario(&control, scenario);
        show(&row, &report);
        if report.passed {
            failed.push(format!("{row}: passed, but it must fail"));
        } else if !report.failures.iter().any(|f| f.contains(words)) {
            failed.push(format!("{row}: failed without {words:?}"));
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("failed rows:\n  {}", failed.join("\n  "));
        ExitCode::FAILURE
    }
}

fn show(row: &str, report: &ScenarioReport) {
    let figures: Vec<String> = report
        .figures
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    eprintln!(
        "{row}: {} ({} ms) {}",
        report.verdict(),
        report.elapsed.as_millis(),
        figures.join(" ")
    );
    for failure in &report.failures {
        eprintln!("    {failure}");
    }
}

/// One contract line on standard output, at once.
fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The control server: `naive` shuts down with tonic's own
/// `serve_with_incoming_shutdown` and tonic-health as it is;
/// `exits-at-signal` prints a clean shutdown and exits at the signal.
fn control_server(mode: &str) -> ExitCode {
    let mut args = env::args().skip_while(|a| a != "--addr").skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let listener = TcpListener::bind(&addr).await.expect("bind");
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_serving::<ContractServer<Naive>>().await;
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        say(&format!(
            "listening {}",
            listener.local_addr().expect("address")
        ));
        let exits = mode == "exits-at-signal";
        let signalled = async move {
            term.recv().await;
            say("draining SIGTERM");
            say("closed");
            if exits {
                say("drained");
                say("exit 0");
                std::process::exit(0);
            }
        };
        let served = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(ContractServer::new(Naive))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signalled)
            .await;
        if let Err(error) = served {
            eprintln!("serve: {error}");
        }
        say("drained");
        say("exit 0");
    });
    ExitCode::SUCCESS
}

/// The contract's service, with nothing of graceful's.
#[derive(Debug, Clone, Copy)]
struct Naive;

type TickStream = Pin<Box<dyn Stream<Item = Result<Tick, Status>> + Send>>;

#[tonic::async_trait]
impl Contract for Naive {
    async fn sleep(&self, request: Request<SleepRequest>) -> Result<Response<SleepReply>, Status> {
        let ms = request.into_inner().ms;
        tokio::time::sleep(Duration::from_millis(ms.into())).await;
        Ok(Response::new(SleepReply {
            message: format!("slept {ms}"),
        }))
    }

    type TicksStream = TickStream;

    async fn ticks(&self, request: Request<TicksRequest>) -> Result<Response<TickStream>, Status> {
        let every = Duration::from_millis(request.into_inner().ms.max(1).into());
        let mut index = 0;
        let ticks = tokio_stream::StreamExt::map(
            IntervalStream::new(tokio::time::interval(every)),
            move |_| {
                index += 1;
                Ok(Tick { index: index - 1 })
            },
        );
        Ok(Response::new(Box::pin(ticks)))
    }
}
