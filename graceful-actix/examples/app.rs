//! An actix-web service with a graceful shutdown, as it would be deployed
//! behind a load balancer.
//!
//! ```text
//! cargo run -p graceful-actix --example app
//! curl localhost:8080/work        # takes 2 s
//! kill -TERM <pid>                # during the request: it completes, then the process exits 0
//! ```
//!
//! What changes from a plain `HttpServer` program:
//!
//! - signals go to the shutdown (`graceful_actix::signals`), not to actix:
//!   SIGTERM and SIGINT both drain, a second one exits at once with
//!   `128 + N`;
//! - the app is served by `graceful_actix::Server` instead of `HttpServer`:
//!   the same factory closure, the same settings, and a listener that is
//!   closed without resetting anyone;
//! - resources register a cleanup step when they are acquired; the steps
//!   run after the last request has been answered, last registered first;
//! - the exit code says how it went: 0 clean, 1 when requests were cut off
//!   at the deadline or a step failed.

use actix_web::{App, HttpResponse, web};
use graceful_actix::{Server, Shutdown};
use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

/// A stand-in for a connection pool.
#[derive(Clone, Debug)]
struct Database;

impl Database {
    async fn connect() -> std::io::Result<Database> {
        Ok(Database)
    }

    async fn close(self) -> std::io::Result<()> {
        eprintln!("app: database closed");
        Ok(())
    }
}

async fn work(_db: web::Data<Database>) -> HttpResponse {
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    HttpResponse::Ok().body("done\n")
}

#[actix_web::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let driver = Shutdown::builder()
        // Kubernetes: keep serving while the endpoint is removed, then
        // give requests 20 s, all within the 30 s grace period.
        .unready_delay(Duration::from_secs(5))
        .drain_timeout(Duration::from_secs(20))
        .cleanup_timeout(Duration::from_secs(3))
        .grace_period(Duration::from_secs(30))
        .on_event(|event| eprintln!("app: {event:?}"))
        .build()?;
    let shutdown = driver.handle();

    // First the signals: from here on, SIGTERM is a clean shutdown.
    let signals = graceful_actix::signals(&shutdown)?;

    let db = Database::connect().await?;
    shutdown.on_cleanup("database", {
        let db = db.clone();
        move || db.close()
    })?;

    let listener = TcpListener::bind("127.0.0.1:8080")?;
    let factory = {
        let shutdown = shutdown.clone();
        move || {
            App::new()
                .app_data(web::Data::new(db.clone()))
                .route("/work", web::get().to(work))
                .route("/health/ready", graceful_actix::readiness(&shutdown))
                .route("/health/live", web::get().to(|| async { "live" }))
        }
    };
    let serve = Server::new(factory)
        .workers(2)
        .keep_alive(Duration::from_secs(75))
        .serve(listener, &shutdown);
    actix_web::rt::spawn(async move {
        if let Err(error) = serve.await {
            eprintln!("app: cannot serve: {error}");
            std::process::exit(1);
        }
    });
    eprintln!("app: listening on 127.0.0.1:8080");

    // The report, whether the drain finished or a second signal forced it.
    let report = graceful_actix::run(driver).with_signals(signals).await;
    eprintln!("app: {report}");
    // Exit now: idle keep-alive connections and the workers go with the
    // process, there is nothing left to wait for.
    Ok(ExitCode::from(report.exit_code()))
}
