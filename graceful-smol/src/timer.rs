//! The core's clock, on `async_io::Timer`.

use async_io::Timer as AsyncIoTimer;
use graceful_core::{Sleep, Timer};
use std::time::{Duration, Instant};

/// [`graceful_core::Timer`] on [`async_io::Timer`]: what [`run`](crate::run)
/// passes to the driver.
///
/// async-io's timers are driven by its reactor, which runs on whichever
/// thread blocks in `async_io::block_on` (smol's executors do), or else on
/// async-io's own background thread: its sleeps work on any executor, and
/// outside of one.
///
/// # Examples
///
/// ```
/// use graceful_core::Shutdown;
/// use graceful_smol::SmolTimer;
///
/// let driver = Shutdown::builder().build()?;
/// let run = driver.run(SmolTimer); // what `graceful_smol::run(driver)` does
/// # drop(run);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolTimer;

impl Timer for SmolTimer {
    fn sleep(&self, duration: Duration) -> Sleep {
        // Made now, so that the duration counts from this call, not from the
        // first poll.
        let timer = AsyncIoTimer::after(duration);
        Box::pin(async move {
            timer.await;
        })
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    #[test]
    fn a_sleep_lasts_its_duration_counted_from_the_call() {
        let timer = SmolTimer;
        let start = timer.now();
        let mut sleep = timer.sleep(Duration::from_millis(100));
        assert!(block_on(poll_once(&mut sleep)).is_none(), "not yet due");
        block_on(sleep);
        assert!(timer.now() - start >= Duration::from_millis(100));

        // Not polled until it is due: it is ready at its first poll.
        let sleep = timer.sleep(Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(60));
        assert!(block_on(poll_once(sleep)).is_some());
    }
}
