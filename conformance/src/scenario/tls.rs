//! TLS: rules 11 (ALPN) and 12, and the `--tls-cert`/`--tls-key` options.

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use super::{Ctx, Expect, PATIENCE, REQUEST_TIMEOUT, Running, finish, ms_between};
use crate::h2;
use crate::process::Signal;
use crate::tls::{self, ALPN_H2, ALPN_HTTP1, Ending};
use crate::tmp::TempDir;

/// A scratch directory with a self-signed pair: (dir, cert, key).
fn pair(label: &str) -> Result<(TempDir, String, String), String> {
    let dir = TempDir::new(label).map_err(|e| format!("temporary directory: {e}"))?;
    let (cert, key) = (dir.file("cert.pem"), dir.file("key.pem"));
    tls::write_self_signed(cert.as_ref(), key.as_ref())?;
    Ok((dir, cert, key))
}

/// Starts the target serving TLS; a target that does not is told so with
/// the rule.
fn start_tls(ctx: &mut Ctx<'_>, cert: &str, key: &str) -> Result<Running, String> {
    ctx.start(&["--tls-cert", cert, "--tls-key", key])
        .map_err(|e| {
            format!("the target did not start with --tls-cert and --tls-key (rule 12): {e}")
        })
}

/// Rules 11 and 12: with `--tls-cert`/`--tls-key`, ALPN `http/1.1` and `h2`
/// are both served.
pub(super) fn tls_served(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let (_dir, cert, key) = pair("tls-served")?;
    let mut run = start_tls(ctx, &cert, &key)?;
    let mut h1 = tls::connect(run.addr, &[ALPN_HTTP1], REQUEST_TIMEOUT)?;
    let alpn = tls::alpn_of(&h1);
    ctx.check(alpn == "http/1.1", || {
        format!("offered only http/1.1, the server chose ALPN {alpn}")
    });
    tls::send_get(&mut h1, "/health/live")?;
    match tls::read_h1(&mut h1) {
        Ok((r, _)) => {
            ctx.check(r.status == 200 && r.body == "live", || {
                format!(
                    "GET /health/live over TLS (http/1.1): {} {:?}, expected 200 \"live\"",
                    r.status, r.body
                )
            });
        }
        Err(e) => ctx.fail(format!("GET /health/live over TLS (http/1.1): {e}")),
    }
    let mut h2s = tls::connect(run.addr, &[ALPN_H2, ALPN_HTTP1], REQUEST_TIMEOUT)?;
    let alpn = tls::alpn_of(&h2s);
    if ctx.check(alpn == "h2", || {
        format!("offered h2 and http/1.1, the server chose ALPN {alpn}, not h2 (rule 11)")
    }) {
        match h2::exchange_once(&mut h2s, "GET", "/sleep?ms=20") {
            Ok(r) => {
                ctx.check(
                    r.complete() && r.status == Some(200) && r.text() == "slept 20",
                    || {
                        format!(
                            "GET /sleep?ms=20 over TLS (h2): {r}, expected a whole 200 \"slept 20\""
                        )
                    },
                );
            }
            Err(e) => ctx.fail(format!("GET /sleep?ms=20 over TLS (h2): {e}")),
        }
    }
    drop((h1, h2s));
    run.signal(Signal::Term)?;
    finish(ctx, &mut run, PATIENCE, &Expect::clean());
    Ok(())
}

/// Rule 12: connections whose handshake never completes do not delay the
/// exit.
pub(super) fn tls_handshake_does_not_delay_exit(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let (_dir, cert, key) = pair("tls-handshake")?;
    let mut run = start_tls(ctx, &cert, &key)?;
    let mut held = Vec::new();
    // Nothing at all; the first bytes of a ClientHello record.
    for bytes in [&b""[..], &[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01][..]] {
        let mut s = TcpStream::connect_timeout(&run.addr, REQUEST_TIMEOUT)
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(bytes).map_err(|e| format!("send: {e}"))?;
        held.push(s);
    }
    thread::sleep(Duration::from_millis(150));
    let signalled = run.signal(Signal::Term)?;
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean()) {
        ctx.bounded(
            "exit-after-signal-ms",
            "the exit with unfinished TLS handshakes open",
            ms_between(signalled, done.exit.at),
        );
        ctx.promote("exit-after-signal-ms");
    }
    drop(held);
    Ok(())
}

/// Rule 12: a TLS connection the server closes during the drain gets a
/// `close_notify` first: an idle h2 one after its final GOAWAY, an
/// HTTP/1.1 one after its 503.
pub(super) fn tls_close_notify(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let (_dir, cert, key) = pair("tls-close-notify")?;
    let mut run = start_tls(ctx, &cert, &key)?;
    let mut keep = tls::connect(run.addr, &[ALPN_HTTP1], REQUEST_TIMEOUT)?;
    tls::send_get(&mut keep, "/health/live")?;
    if let Err(e) = tls::read_h1(&mut keep) {
        ctx.fail(format!("GET /health/live over TLS: {e}"));
    }
    let mut idle_h2 = tls::connect(run.addr, &[ALPN_H2], REQUEST_TIMEOUT)?;
    let h2_ok = tls::alpn_of(&idle_h2) == "h2";
    if h2_ok && let Err(e) = h2::exchange_once(&mut idle_h2, "GET", "/health/live") {
        ctx.fail(format!("GET /health/live over TLS (h2): {e}"));
    }
    let mut holder = tls::connect(run.addr, &[ALPN_HTTP1], REQUEST_TIMEOUT)?;
    tls::send_get(&mut holder, "/sleep?ms=1500")?;
    thread::sleep(Duration::from_millis(100));
    run.signal(Signal::Term)?;
    run.wait_event("closed", Duration::from_secs(2))?;
    // The idle h2 connection is closed after its final GOAWAY (rule 15),
    // while the drain still goes on.
    if h2_ok {
        match h2::read_until_close(&mut idle_h2) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => ctx.fail(
                "the server closed an idle h2 TLS connection after its GOAWAY without a close_notify (rule 12)",
            ),
            Err(e) => ctx.fail(format!("the idle h2 TLS connection after `closed`: {e}")),
        }
    } else {
        ctx.fail("offered h2, the server chose another ALPN protocol (rule 11)");
    }
    let sent = Instant::now();
    tls::send_get(&mut keep, "/health/live")?;
    match tls::read_h1(&mut keep) {
        Ok((r, ending)) => {
            ctx.check(r.status == 503, || {
                format!(
                    "a request on an open TLS connection after `closed`: {}, expected 503",
                    r.status
                )
            });
            match ending {
                Some(Ending::CloseNotify) => ctx.ms("closed-after-request-ms", ms_between(sent, Instant::now())),
                Some(Ending::Truncated) => ctx.fail(
                    "the server closed the TLS connection after its 503 without a close_notify (rule 12)",
                ),
                Some(Ending::Open) => ctx.fail("the TLS connection stayed open after its 503 + Connection: close"),
                Some(Ending::Failed(e)) => ctx.fail(format!("reading to the end of the TLS connection: {e}")),
                None => ctx.fail("the 503 over TLS did not close the connection (no Connection: close)"),
            }
        }
        Err(e) => ctx.fail(format!(
            "a request on an open TLS connection after `closed`: {e}"
        )),
    }
    match tls::read_h1(&mut holder) {
        Ok((r, _)) => {
            ctx.check(r.status == 200 && r.body == "slept 1500", || {
                format!(
                    "the TLS request in progress at the signal: {} {:?}",
                    r.status, r.body
                )
            });
        }
        Err(e) => ctx.fail(format!("the TLS request in progress at the signal: {e}")),
    }
    finish(ctx, &mut run, PATIENCE, &Expect::clean());
    Ok(())
}

/// The `--tls-cert`/`--tls-key` usage errors: one without the other, a
/// missing file, a file that is not PEM: exit 2, nothing served (once a
/// valid pair has been seen to serve, so that an unknown option does not
/// pass for a checked one).
pub(super) fn tls_bad_files(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let (dir, cert, key) = pair("tls-bad-files")?;
    let junk = dir.file("junk.pem");
    std::fs::write(&junk, "this is not PEM\n").map_err(|e| format!("writing {junk}: {e}"))?;
    let missing = dir.file("no-such-file.pem");
    let cases: [Vec<&str>; 6] = [
        vec!["--tls-cert", &cert],
        vec!["--tls-key", &key],
        vec!["--tls-cert", &missing, "--tls-key", &key],
        vec!["--tls-cert", &cert, "--tls-key", &missing],
        vec!["--tls-cert", &junk, "--tls-key", &key],
        vec!["--tls-cert", &cert, "--tls-key", &junk],
    ];
    // The options themselves must be known: a valid pair serves.
    let mut run = start_tls(ctx, &cert, &key)?;
    run.signal(Signal::Term)?;
    finish(ctx, &mut run, PATIENCE, &Expect::clean());
    let mut good = 0;
    for tail in &cases {
        let mut args = vec!["--addr".to_owned(), "127.0.0.1:0".to_owned()];
        args.extend(tail.iter().map(|s| (*s).to_owned()));
        let shown = tail.join(" ");
        let mut process = ctx.spawn(&shown, &args)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let exit = loop {
            if let Some(exit) = process.try_exit() {
                break Some(exit);
            }
            if let Some(line) = process.lines().first() {
                ctx.fail(format!(
                    "`{shown}`: accepted, it printed {:?} and kept running",
                    line.text
                ));
                break None;
            }
            if Instant::now() >= deadline {
                ctx.fail(format!("`{shown}`: still running 5 s later"));
                break None;
            }
            thread::sleep(Duration::from_millis(2));
        };
        let Some(exit) = exit else {
            process.kill();
            continue;
        };
        process.wait_stdout_end(Duration::from_secs(2));
        let quiet = process.lines().is_empty();
        let code2 = exit.code() == Some(2);
        ctx.check(code2, || {
            format!("`{shown}`: exit {}, expected code 2", exit.describe())
        });
        ctx.check(quiet, || {
            format!("`{shown}`: printed on standard output before its usage error")
        });
        if code2 && quiet {
            good += 1;
        }
    }
    ctx.figure("usage-errors", format!("{good}/{}", cases.len()));
    Ok(())
}
