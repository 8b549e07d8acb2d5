//! The kit's upgrade scenarios (rules 23 to 27) against the three targets:
//! their positive controls. The negative ones run against the kit's fake,
//! which has no upgrade (`conformance/tests/controls.rs`).

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
