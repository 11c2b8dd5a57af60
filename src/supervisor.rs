//! Background tasks that must keep running (the catalog change listener,
//! the deferred-write workers) run under a supervisor: when one ends or
//! panics, it is logged and started again after a backoff that doubles from
//! [`Backoff::first`] up to [`Backoff::max`], and starts over once the task
//! has run for [`Backoff::healthy`].
//!
//! Every supervised loop is named; the loops a server starts while its
//! [`Loops::scope`] runs (`runtime::build`) are listed in that server's
//! [`Loops`], each with a daemon id and whether it is running now (not while
//! it backs off after a crash). One task per replica writes them to the
//! daemon registry (`src/backups/daemons.rs`, `GET /admin/daemons`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

tokio::task_local! {
    /// The loops of the server being built.
    static LOOPS: Arc<Loops>;
    /// The loop a supervised run belongs to.
    static CURRENT: Arc<Loop>;
}

/// The supervised loops of one server (one replica).
pub struct Loops {
    host: String,
    pid: u32,
    /// Tells apart two servers of one process (tests) and a reused pid.
    boot: String,
    list: Mutex<Vec<Arc<Loop>>>,
}

/// One supervised loop.
pub struct Loop {
    /// The supervisor's name with `_` for spaces (`backup_worker`).
    pub kind: String,
    /// `{kind}-{n}@{host}:{pid}:{boot}`, `n` counting loops of one kind.
    pub daemon_id: String,
    running: AtomicBool,
}

impl Loop {
    /// A run is under way (false while the supervisor backs off).
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

impl Loops {
    pub fn new() -> Arc<Loops> {
        Arc::new(Loops {
            host: hostname(),
            pid: std::process::id(),
            boot: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
            list: Mutex::new(Vec::new()),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Runs `f`: every loop it supervises (synchronously, not from a task
    /// it spawns) is listed here.
    pub async fn scope<F: Future>(self: &Arc<Self>, f: F) -> F::Output {
        LOOPS.scope(self.clone(), f).await
    }

    fn add(&self, name: &str) -> Arc<Loop> {
        let kind = name.replace(' ', "_");
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        let n = list.iter().filter(|l| l.kind == kind).count() + 1;
        let l = Arc::new(Loop {
            daemon_id: format!("{kind}-{n}@{}:{}:{}", self.host, self.pid, self.boot),
            kind,
            running: AtomicBool::new(false),
        });
        list.push(l.clone());
        l
    }

    /// The loops now.
    pub fn snapshot(&self) -> Vec<Arc<Loop>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The daemon id of the supervised loop this code runs in (its own task).
pub fn daemon_id() -> Option<String> {
    CURRENT.try_with(|l| l.daemon_id.clone()).ok()
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Runs `task()` in its own tokio task, again and again: whenever a run
/// returns or panics, the supervisor logs it (`name`) and starts a new one
/// after the backoff. The returned handle ends the supervision when aborted
/// (the running task is aborted with it). Called inside a [`Loops::scope`],
/// the loop is listed there.
pub fn supervise<F, Fut>(name: &'static str, backoff: Backoff, mut task: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    // Outside a server's build the loop is listed nowhere.
    let this = LOOPS
        .try_with(|l| l.add(name))
        .unwrap_or_else(|_| Loops::new().add(name));
    tokio::spawn(async move {
        let mut delay = backoff.first;
        loop {
            let started = Instant::now();
            this.running.store(true, Ordering::Relaxed);
            let mut run = AbortOnDrop(tokio::spawn(CURRENT.scope(this.clone(), task())));
            let outcome = (&mut run.0).await;
            this.running.store(false, Ordering::Relaxed);
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

    #[tokio::test(start_paused = true)]
    async fn loops_are_listed_and_running_only_between_restarts() {
        let loops = Loops::new();
        let backoff = Backoff {
            first: Duration::from_secs(10),
            max: Duration::from_secs(10),
            healthy: Duration::from_secs(60),
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut handle = None;
        loops
            .scope(async {
                handle = Some(supervise("test loop", backoff, move || {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(daemon_id());
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        panic!("crash");
                    }
                }));
            })
            .await;
        let listed = loops.snapshot();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].kind, "test_loop");
        // The run knows its own daemon id.
        assert_eq!(
            rx.recv().await.unwrap().as_deref(),
            Some(listed[0].daemon_id.as_str())
        );
        assert!(listed[0].running());
        // Crashed, backing off: not running.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!listed[0].running());
        // Restarted.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(listed[0].running());
        // Outside a scope a loop is listed nowhere.
        let other = supervise("elsewhere", backoff, std::future::pending);
        assert_eq!(loops.snapshot().len(), 1);
        other.abort();
        handle.unwrap().abort();
    }
}
