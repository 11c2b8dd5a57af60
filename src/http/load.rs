//! How busy the server is: the admission cap (`ATHENA_MAX_IN_FLIGHT`, one
//! permit per request) and a count of the requests admitted, read as a
//! load signal by the background work that gives way to requests (the
//! event delivery workers, `src/events/`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{Semaphore, SemaphorePermit, TryAcquireError};

/// The server's in-flight requests (shared: cloning shares the count).
#[derive(Debug, Clone)]
pub struct Load {
    permits: Arc<Semaphore>,
    max: usize,
    admitted: Arc<AtomicU64>,
}

impl Load {
    /// At most `max` requests at once.
    pub fn new(max: usize) -> Load {
        Load {
            permits: Arc::new(Semaphore::new(max)),
            max,
            admitted: Arc::default(),
        }
    }

    /// One request's permit; an error past the cap.
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        let permit = self.permits.try_acquire()?;
        self.admitted.fetch_add(1, Ordering::Relaxed);
        Ok(permit)
    }

    /// Requests admitted since the server started (a rate is the
    /// difference of two readings).
    pub fn admitted(&self) -> u64 {
        self.admitted.load(Ordering::Relaxed)
    }

    /// The most requests answered at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Requests being answered now.
    pub fn in_flight(&self) -> usize {
        self.max.saturating_sub(self.permits.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_permits_held() {
        let load = Load::new(4);
        let shared = load.clone();
        assert_eq!(shared.in_flight(), 0);
        let a = load.try_acquire().unwrap();
        let b = load.try_acquire().unwrap();
        assert_eq!(shared.in_flight(), 2);
        assert_eq!(shared.admitted(), 2);
        drop(a);
        assert_eq!(shared.in_flight(), 1);
        drop(b);
        assert_eq!(shared.in_flight(), 0);
        assert_eq!(shared.admitted(), 2);
    }
}
