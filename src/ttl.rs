//! The one TTL cache every cached lookup uses (API keys, key enforcement,
//! public routes, deferred-write flags, RPC signatures): entries expire
//! `ttl` after they were stored, memory is bounded by `cap` entries, and an
//! invalidation bumps a generation so that a value read from its source
//! before the invalidation is never stored after it (no refill racing a
//! revoke; `insert_if_current`).
//!
//! The lock is a plain mutex held for a map operation only, never across an
//! `.await`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    cap: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    generation: u64,
    map: HashMap<K, (V, Instant)>,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// `cap` ≥ 1 entries live at most `ttl`.
    pub fn new(ttl: Duration, cap: usize) -> Self {
        TtlCache {
            ttl,
            cap: cap.max(1),
            inner: Mutex::new(Inner {
                generation: 0,
                map: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // The map holds no invariant a panic could break.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = self.lock();
        let (value, at) = inner.map.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// The current generation, to pass to `insert_if_current` after loading
    /// a value from its source.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub fn insert(&self, key: K, value: V) {
        let mut inner = self.lock();
        self.store(&mut inner, key, value);
    }

    /// Stores `value` unless the cache was invalidated since `generation`
    /// (the value may then predate the change); whether it was stored.
    pub fn insert_if_current(&self, generation: u64, key: K, value: V) -> bool {
        let mut inner = self.lock();
        if inner.generation != generation {
            return false;
        }
        self.store(&mut inner, key, value);
        true
    }

    fn store(&self, inner: &mut Inner<K, V>, key: K, value: V) {
        if inner.map.len() >= self.cap && !inner.map.contains_key(&key) {
            let ttl = self.ttl;
            inner.map.retain(|_, (_, at)| at.elapsed() < ttl);
            if inner.map.len() >= self.cap {
                inner.map.clear();
            }
        }
        inner.map.insert(key, (value, Instant::now()));
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.remove(key);
    }

    /// Drops every entry (and bumps the generation).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.clear();
    }

    /// The live value of `key`, or the value `load` reads from the source,
    /// stored unless an invalidation happened meanwhile.
    pub async fn get_or_load<E, F>(&self, key: K, load: F) -> Result<V, E>
    where
        F: std::future::Future<Output = Result<V, E>>,
    {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let generation = self.generation();
        let value = load.await?;
        self.insert_if_current(generation, key, value.clone());
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let c = TtlCache::new(Duration::from_millis(30), 8);
        c.insert("a", 1);
        assert_eq!(c.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get("a"), None);
    }

    #[test]
    fn memory_is_bounded() {
        let c = TtlCache::new(Duration::from_secs(60), 4);
        for i in 0..100 {
            c.insert(i, i);
            assert!(c.lock().map.len() <= 4);
        }
        assert_eq!(c.get(&99), Some(99));
    }

    #[test]
    fn a_load_racing_an_invalidation_is_not_stored() {
        let c = TtlCache::new(Duration::from_secs(60), 4);
        let generation = c.generation();
        c.remove("k"); // a revoke lands while the value is being read
        assert!(!c.insert_if_current(generation, "k", "stale"));
        assert_eq!(c.get("k"), None);
        assert!(c.insert_if_current(c.generation(), "k", "fresh"));
        assert_eq!(c.get("k"), Some("fresh"));
    }

    #[tokio::test]
    async fn get_or_load_reads_the_source_once() {
        let c = TtlCache::new(Duration::from_secs(60), 4);
        let mut loads = 0;
        for _ in 0..3 {
            let v: Result<i32, ()> = c
                .get_or_load("k", async {
                    loads += 1;
                    Ok(7)
                })
                .await;
            assert_eq!(v, Ok(7));
        }
        assert_eq!(loads, 1);
    }
}
