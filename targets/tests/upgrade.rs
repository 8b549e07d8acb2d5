//! The kit's upgrade scenarios (rules 23 to 27) against the three targets.
//! The kit's own controls, the fake with and without its upgrade faults,
//! are in `conformance/tests/controls.rs`.

use graceful_conformance::{Scenario, Target, run_scenario};

const SCENARIOS: &[&str] = &[
    "upgrade-under-load",
    "upgrade-child-fails",
    "sighup-ignored",
    "sigterm-during-upgrade",
];

fn passes(name: &str, program: &str) {
    for scenario in SCENARIOS {
        let report = run_scenario(
            &Target::new(name, program),
            Scenario::from_name(scenario).expect("a scenario of the kit"),
        );
        assert!(
            report.passed,
            "{name} fails {scenario}\nfigures: {:?}\nfailures: {:#?}\nstderr:\n{}",
            report.figures, report.failures, report.stderr_tail
        );
        eprintln!("{name} {scenario}: {:?}", report.figures);
    }
}

#[test]
fn tokio_target_upgrades() {
    passes("tokio", env!("CARGO_BIN_EXE_tokio-target"));
}

#[test]
fn smol_target_upgrades() {
    passes("smol", env!("CARGO_BIN_EXE_smol-target"));
}

#[test]
fn actix_target_upgrades() {
    passes("actix", env!("CARGO_BIN_EXE_actix-target"));
}

/// Issue 14's figure: requests failed during 10 upgrades under load, against
/// 10 stop-then-start restarts of the same server on the same port, in the
/// same run. Each client sends `GET /sleep?ms=20` on a new connection, in a
/// loop; a request fails unless it gets its `200`. The restarts must show
/// failures (the count sees them), the upgrades none.
#[test]
fn ten_upgrades_fail_no_request_where_ten_restarts_do() {
    let program = env!("CARGO_BIN_EXE_tokio-target");
    let upgrades = failed_requests(program, Restart::Upgrade);
    let restarts = failed_requests(program, Restart::StopThenStart);
    eprintln!(
        "requests failed during 10 upgrades under load: {} of {}; during 10 stop-then-start restarts: {} of {}",
        upgrades.0, upgrades.1, restarts.0, restarts.1
    );
    assert_eq!(upgrades.0, 0, "requests failed during the upgrades");
    assert!(restarts.0 > 0, "no request failed during the restarts");
}

#[derive(Clone, Copy)]
enum Restart {
    Upgrade,
    StopThenStart,
}

/// Failed and sent requests during 10 restarts of `program` the given way.
fn failed_requests(program: &str, how: Restart) -> (usize, usize) {
    use graceful_conformance::http::{self, Outcome, Request};
    use graceful_conformance::process::{Process, Signal};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let addr_arg = format!("127.0.0.1:{port}");
    let target = Target::new("tokio", program);
    let start = || {
        let mut process = Process::spawn(&target, &["--addr".into(), addr_arg.clone()]).unwrap();
        let addr = process.wait_listening(Duration::from_secs(10)).unwrap();
        (process, addr)
    };
    let (mut process, addr) = start();
    let stop = Arc::new(AtomicBool::new(false));
    let (failed, sent) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (stop, failed, sent) = (stop.clone(), failed.clone(), sent.clone());
            std::thread::spawn(move || {
                let request = Request::get("/sleep?ms=20").header("Connection", "close");
                while !stop.load(Ordering::Relaxed) {
                    sent.fetch_add(1, Ordering::Relaxed);
                    match http::request(addr, &request, Duration::from_secs(5)) {
                        Outcome::Response(r) if r.status() == 200 => {}
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut pid = process.pid();
    let mut old = Vec::new();
    for _ in 0..10 {
        match how {
            Restart::Upgrade => {
                let seen = process.lines().len();
                let hup = std::process::Command::new("kill")
                    .args(["-HUP", &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(hup.success());
                let deadline = std::time::Instant::now() + Duration::from_secs(15);
                let (index, new_pid) = loop {
                    let lines = process.lines();
                    if let Some((i, pid)) =
                        lines.iter().enumerate().skip(seen).find_map(|(i, l)| {
                            l.text
                                .strip_prefix("upgrade ")
                                .and_then(|p| p.parse::<u32>().ok())
                                .map(|p| (i, p))
                        })
                    {
                        break (i, pid);
                    }
                    assert!(std::time::Instant::now() < deadline, "no hand-over");
                    std::thread::sleep(Duration::from_millis(2));
                };
                // The old process's `exit`, before the next upgrade.
                while !process
                    .lines()
                    .iter()
                    .skip(index)
                    .any(|l| l.text.starts_with("exit "))
                {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the old process did not exit"
                    );
                    std::thread::sleep(Duration::from_millis(2));
                }
                pid = new_pid;
            }
            Restart::StopThenStart => {
                process.send(Signal::Term).unwrap();
                process
                    .wait_exit(Duration::from_secs(10))
                    .expect("exit on SIGTERM");
                let (next, _) = start();
                old.push(std::mem::replace(&mut process, next));
                pid = process.pid();
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    assert!(
        process.wait_stdout_end(Duration::from_secs(10)),
        "the last process did not exit"
    );
    (failed.load(Ordering::Relaxed), sent.load(Ordering::Relaxed))
}
