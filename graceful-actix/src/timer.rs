//! The core's clock, on actix-rt's (tokio's) time.

use graceful_core::{Sleep, Timer};
use std::time::{Duration, Instant};

/// [`graceful_core::Timer`] on `actix_rt::time`, which is tokio's: what
/// [`run`](crate::run) passes to the driver.
///
/// It reads tokio's clock, so a test runtime with paused time drives the
/// shutdown's delays and deadlines on virtual time too. Its sleeps need the
/// actix `System` (or another tokio runtime with the time driver enabled).
///
/// # Examples
///
/// ```
/// use graceful_actix::{ActixTimer, Shutdown};
///
/// # actix_web::rt::System::new().block_on(async {
/// let driver = Shutdown::builder().build()?;
/// let run = driver.run(ActixTimer); // what `graceful_actix::run(driver)` does
/// # drop(run);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ActixTimer;

impl Timer for ActixTimer {
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(actix_rt::time::sleep(duration))
    }

    fn now(&self) -> Instant {
        actix_rt::time::Instant::now().into_std()
    }
}
