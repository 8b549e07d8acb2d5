//! The core's clock, on `tokio::time`.

use graceful_core::{Sleep, Timer};
use std::time::{Duration, Instant};

/// [`graceful_core::Timer`] on `tokio::time`: what [`run`](crate::run)
/// passes to the driver.
///
/// It reads tokio's clock, so a test runtime with paused time
/// (`#[tokio::test(start_paused = true)]`) drives the shutdown's delays and
/// deadlines on virtual time too. Its sleeps need a tokio runtime with the
/// time driver enabled.
///
/// # Examples
///
/// ```
/// use graceful_core::Shutdown;
/// use graceful_tokio::TokioTimer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let driver = Shutdown::builder().build()?;
/// let run = driver.run(TokioTimer); // what `graceful_tokio::run(driver)` does
/// # drop(run);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioTimer;

impl Timer for TokioTimer {
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}
