//! Background tasks that must keep running (the catalog change listener,
//! the deferred-write workers) run under a supervisor: when one ends or
//! panics, it is logged and started again after a backoff that doubles from
//! [`Backoff::first`] up to [`Backoff::max`], and starts over once the task
//! has run for [`Backoff::healthy`].

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    /// A run this long resets the backoff.
    pub healthy: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(30),
            healthy: Duration::from_secs(60),
        }
    }
}

/// Runs `task()` in its own tokio task, again and again: whenever a run
/// returns or panics, the supervisor logs it (`name`) and starts a new one
/// after the backoff. The returned handle ends the supervision when aborted
/// (the running task is aborted with it).
pub fn supervise<F, Fut>(name: &'static str, backoff: Backoff, mut task: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut delay = backoff.first;
        loop {
            let started = Instant::now();
            let mut run = AbortOnDrop(tokio::spawn(task()));
            let outcome = (&mut run.0).await;
            match outcome {
                Ok(()) => tracing::warn!(task = name, "background task stopped; restarting"),
                Err(e) if e.is_panic() => {
                    let panic = e.into_panic();
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(no message)".into());
                    tracing::error!(task = name, panic = %message, "background task panicked; restarting");
                }
                // Cancelled: only at runtime shutdown.
                Err(_) => return,
            }
            if started.elapsed() >= backoff.healthy {
                delay = backoff.first;
            }
            tracing::info!(
                task = name,
                delay_ms = delay.as_millis() as u64,
                "restarting background task"
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(backoff.max);
        }
    })
}

/// The supervised run, aborted if the supervisor itself is aborted.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn restarts_tasks_that_panic_or_return() {
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let counter = runs.clone();
        let backoff = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(400),
            healthy: Duration::from_secs(60),
        };
        let started = Instant::now();
        let handle = supervise("test", backoff, move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            async move {
                let _ = tx.send(n);
                match n {
                    0 => panic!("first run fails"),
                    1 => {} // returns
                    _ => std::future::pending().await,
                }
            }
        });
        for expected in 0..3 {
            assert_eq!(rx.recv().await, Some(expected));
        }
        // Two restarts: after 100 ms, then after 200 ms.
        assert!(started.elapsed() >= Duration::from_millis(300));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "a running task is left alone"
        );
        handle.abort();
    }
}
