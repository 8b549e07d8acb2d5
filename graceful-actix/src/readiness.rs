//! A readiness probe for actix-web routes.

use actix_web::body::BoxBody;
use actix_web::http::header::{CACHE_CONTROL, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, Responder, Route, web};
use graceful_core::Shutdown;

/// Readiness as an actix-web responder: `200 ready` while no shutdown was
/// requested, `503 not ready` from the first signal on.
///
/// It answers from [`Shutdown::is_ready`], which turns false at the first
/// request, before the unready delay: the load balancer sees the instance
/// go unready while it still serves everything else, which is the point of
/// the delay. Liveness is a different question (is the process stuck?) and
/// should keep answering `200` during the shutdown.
///
/// It is a cheap handle (a [`Shutdown`] clone): keep one in app data, or
/// use [`readiness`] for a ready-made route.
///
/// # Examples
///
/// ```
/// use actix_web::{App, web};
/// use graceful_actix::{Readiness, Shutdown};
///
/// let shutdown = Shutdown::builder().build()?.handle();
/// let readiness = Readiness::new(&shutdown);
/// let app = App::new()
///     .app_data(web::Data::new(readiness))
///     .route(
///         "/health/ready",
///         web::get().to(|readiness: web::Data<Readiness>| async move {
///             readiness.get_ref().clone()
///         }),
///     );
/// # drop(app);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Readiness {
    shutdown: Shutdown,
}

impl Readiness {
    /// The readiness of `shutdown`.
    pub fn new(shutdown: &Shutdown) -> Readiness {
        Readiness {
            shutdown: shutdown.clone(),
        }
    }

    /// True while no shutdown was requested.
    pub fn is_ready(&self) -> bool {
        self.shutdown.is_ready()
    }
}

impl Responder for Readiness {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        let ready = self.is_ready();
        let mut response = if ready {
            HttpResponse::Ok()
        } else {
            HttpResponse::ServiceUnavailable()
        };
        // A probe must see the state now, not a cached answer.
        response.insert_header((CACHE_CONTROL, CacheControl(vec![CacheDirective::NoStore])));
        response.body(if ready { "ready" } else { "not ready" })
    }
}

/// A `GET` route for a readiness probe, answered by a [`Readiness`]:
/// `200 ready` until the first signal, `503 not ready` from then on.
///
/// # Examples
///
/// ```
/// use actix_web::{App, web};
/// use graceful_actix::Shutdown;
///
/// let shutdown = Shutdown::builder().build()?.handle();
/// let app = App::new()
///     .route("/health/ready", graceful_actix::readiness(&shutdown))
///     .route("/health/live", web::get().to(|| async { "live" }));
/// # drop(app);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn readiness(shutdown: &Shutdown) -> Route {
    let readiness = Readiness::new(shutdown);
    web::get().to(move || {
        let readiness = readiness.clone();
        async move { readiness }
    })
}
