//! The listener's token goes only after its socket is closed, also when
//! serving fails: here every worker's app fails to start, so the first
//! accepted connection cannot be handed to anyone.

use actix_web::{App, web};
use graceful_actix::{Phase, Server, Shutdown};
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

/// Woken by the shutdown's wait list, which the token's drop notifies:
/// checks, at that instant, whether the socket still takes connections.
struct OpenAtWake {
    addr: SocketAddr,
    woken: AtomicBool,
    open: AtomicBool,
}

impl Wake for OpenAtWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if TcpStream::connect(self.addr).is_ok() {
            self.open.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_server_whose_apps_all_fail_closes_its_socket_before_its_token() {
    actix_web::rt::System::new().block_on(async {
        let shutdown = Shutdown::builder().build().expect("build").handle();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let watcher = Arc::new(OpenAtWake {
            addr,
            woken: AtomicBool::new(false),
            open: AtomicBool::new(false),
        });
        // Nothing else notifies the shutdown's waiters here: no request,
        // no guard, the phase stays `Running`.
        let mut finished = shutdown.reached(Phase::Finished);
        let waker = Waker::from(watcher.clone());
        assert!(
            Pin::new(&mut finished)
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );

        let failing = || {
            App::new()
                .data_factory(|| async { Err::<u32, _>("no database") })
                .route("/", web::get().to(|| async { "unreachable" }))
        };
        let serve =
            actix_web::rt::spawn(Server::new(failing).workers(1).serve(listener, &shutdown));
        // Connect until the loop, finding no worker left, gives up.
        let start = Instant::now();
        let mut clients = Vec::new();
        while !serve.is_finished() {
            assert!(start.elapsed() < Duration::from_secs(10), "still serving");
            if let Ok(client) = TcpStream::connect(addr) {
                clients.push(client);
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        let result = serve.await.expect("join");
        assert!(result.is_err(), "no worker could start the app");
        assert!(
            watcher.woken.load(Ordering::SeqCst),
            "the token was dropped"
        );
        assert!(
            !watcher.open.load(Ordering::SeqCst),
            "the token went while the socket still took connections"
        );
        assert!(TcpStream::connect(addr).is_err());
    });
}
