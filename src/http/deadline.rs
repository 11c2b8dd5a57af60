//! The request deadline (`ATHENA_REQUEST_TIMEOUT_MS`), visible to the code a
//! request runs, so work done on its behalf elsewhere (an insert window's
//! flusher) stays inside it.
//!
//! A request is cut at its deadline (its future is dropped) unless it holds
//! a [`Shield`]: a statement with its effect is running for it. Then the
//! server waits for the statement: once it ran, the caller gets its answer
//! ([`Shield::settle`]), so a timeout never hides a committed write. A shield
//! can only be taken before the deadline expired; after expiry (or after the
//! caller went away) [`Deadline::shield`] refuses, and the work is not done.

use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::Instant;

tokio::task_local! {
    static CURRENT: Arc<Deadline>;
}

/// The deadline of the request running on this task, if any.
pub fn current() -> Option<Arc<Deadline>> {
    CURRENT.try_with(Arc::clone).ok()
}

#[derive(Debug)]
pub struct Deadline {
    at: Instant,
    state: Mutex<State>,
    /// Signalled when the last shield is dropped.
    released: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// The request was cut (or dropped): no shield is granted any more.
    expired: bool,
    /// Statements running on the request's behalf.
    shields: usize,
    /// A statement ran: the request answers whatever the deadline says.
    settled: bool,
}

/// The request ran past its deadline and was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired;

impl Deadline {
    pub fn new(at: Instant) -> Arc<Deadline> {
        Arc::new(Deadline {
            at,
            state: Mutex::new(State::default()),
            released: Notify::new(),
        })
    }

    pub fn at(&self) -> Instant {
        self.at
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the request was cut or its caller went away.
    pub fn expired(&self) -> bool {
        self.state().expired
    }

    /// Enters a section whose effect must reach the caller (a statement
    /// that writes); `None` when the request was already cut, in which case
    /// the section must not run.
    pub fn shield(self: &Arc<Self>) -> Option<Shield> {
        let mut s = self.state();
        if s.expired {
            return None;
        }
        s.shields += 1;
        Some(Shield(self.clone()))
    }

    /// Cuts the request unless a shield is held or a statement already ran.
    fn try_expire(&self) -> bool {
        let mut s = self.state();
        if s.shields > 0 || s.settled {
            return false;
        }
        s.expired = true;
        true
    }
}

/// A statement is running for the request; see [`Deadline::shield`].
#[derive(Debug)]
pub struct Shield(Arc<Deadline>);

impl Shield {
    /// The statement ran: the request is past the point of no return and
    /// answers even after its deadline.
    pub fn settle(self) {
        self.0.state().settled = true;
    }
}

impl Drop for Shield {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.shields -= 1;
        if s.shields == 0 {
            drop(s);
            self.0.released.notify_one();
        }
    }
}

/// Marks the deadline expired when the request's future is dropped (the
/// caller went away), so nothing is started for it any more.
struct ExpireOnDrop(Arc<Deadline>);

impl Drop for ExpireOnDrop {
    fn drop(&mut self) {
        let mut s = self.0.state();
        if !s.settled {
            s.expired = true;
        }
    }
}

/// Runs `work` as a request with deadline `d` ([`current`] returns it inside
/// `work`). At the deadline `work` is dropped and `Err(Expired)` returned,
/// unless it holds a shield or settled: then it runs to its end.
pub async fn run<F: Future>(d: Arc<Deadline>, work: F) -> Result<F::Output, Expired> {
    let _guard = ExpireOnDrop(d.clone());
    let work = CURRENT.scope(d.clone(), work);
    tokio::pin!(work);
    let sleep = tokio::time::sleep_until(d.at);
    tokio::pin!(sleep);
    let mut waiting = false;
    loop {
        tokio::select! {
            biased;
            out = &mut work => return Ok(out),
            () = &mut sleep, if !waiting => {
                if d.try_expire() {
                    return Err(Expired);
                }
                waiting = true;
            }
            () = d.released.notified(), if waiting => {
                if d.try_expire() {
                    return Err(Expired);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn soon(ms: u64) -> Arc<Deadline> {
        Deadline::new(Instant::now() + Duration::from_millis(ms))
    }

    #[tokio::test(start_paused = true)]
    async fn unshielded_work_is_cut() {
        let d = soon(100);
        let out = run(d.clone(), tokio::time::sleep(Duration::from_secs(5))).await;
        assert_eq!(out, Err(Expired));
        assert!(d.shield().is_none(), "no shield after expiry");
    }

    #[tokio::test(start_paused = true)]
    async fn work_sees_its_deadline() {
        let d = soon(100);
        let seen = run(d.clone(), async { current().map(|c| c.at()) })
            .await
            .unwrap();
        assert_eq!(seen, Some(d.at()));
        assert!(current().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_shield_holds_the_request_until_it_settles() {
        let d = soon(100);
        let work = {
            let d = d.clone();
            async move {
                let s = d.shield().unwrap();
                tokio::time::sleep(Duration::from_millis(500)).await;
                s.settle();
                // Work after the statement ran still answers.
                tokio::time::sleep(Duration::from_millis(500)).await;
                "answered"
            }
        };
        assert_eq!(run(d, work).await, Ok("answered"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_shield_lets_the_deadline_cut() {
        let d = soon(100);
        let work = {
            let d = d.clone();
            async move {
                let s = d.shield().unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                drop(s); // the statement failed before doing anything
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        };
        let started = Instant::now();
        assert_eq!(run(d, work).await, Err(Expired));
        assert!(started.elapsed() < Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_request_grants_no_shield() {
        let d = soon(10_000);
        let fut = run(d.clone(), tokio::time::sleep(Duration::from_secs(60)));
        let _ = tokio::time::timeout(Duration::from_millis(10), fut).await;
        assert!(d.expired());
        assert!(d.shield().is_none());
    }
}
