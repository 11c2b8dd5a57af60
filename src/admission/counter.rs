//! The Redis side of the limiter: window counters bumped in one pipelined
//! round trip, shared by the requests that arrive together.
//!
//! Each request hands its keys to one task. The task takes everything
//! queued, sends one pipeline (`INCRBY key n` + `EXPIRE key ttl` per distinct
//! key) and gives each request its own position in the new totals: request
//! i of the n that bumped a key whose total is now T counted `T - n + i`
//! (a request drawing several tokens, a lease, gets the first of its run).
//! So every request still costs exactly one round trip (the one it joined),
//! and under load many requests share it instead of each sending its own
//! commands: Redis sees one pipeline per round trip, whatever the
//! concurrency.

use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the next pipeline at most (more count locally).
const QUEUE: usize = 8_192;
/// Requests answered by one pipeline at most.
const BATCH: usize = 512;

/// One key to bump, how long it lives (its window plus a second) and by
/// how much (the tokens this request draws: 1, or a lease).
pub type Key = (String, u64, u64);

type Reply = oneshot::Sender<Result<Vec<u64>, String>>;

pub struct Counter {
    tx: mpsc::Sender<(Vec<Key>, Reply)>,
}

impl Counter {
    /// Starts the task; a pipeline slower than `timeout` fails its batch.
    pub fn start(redis: deadpool_redis::Pool, timeout: Duration) -> Counter {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(redis, rx, timeout));
        Counter { tx }
    }

    /// The first of the tokens each of `keys` drew for this request (its
    /// count when it draws one), in order.
    pub async fn bump(&self, keys: Vec<Key>) -> Result<Vec<u64>, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send((keys, reply))
            .map_err(|_| "the counter queue is full".to_string())?;
        answer
            .await
            .map_err(|_| "the counter stopped".to_string())?
    }
}

async fn run(
    redis: deadpool_redis::Pool,
    mut rx: mpsc::Receiver<(Vec<Key>, Reply)>,
    timeout: Duration,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // Distinct keys in first-seen order, with how many bump each.
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut distinct: Vec<(&str, u64, u64)> = Vec::new();
        for (keys, _) in &batch {
            for (key, ttl, amount) in keys {
                let i = *index.entry(key.as_str()).or_insert_with(|| {
                    distinct.push((key.as_str(), 0, *ttl));
                    distinct.len() - 1
                });
                distinct[i].1 += amount;
            }
        }
        let totals = tokio::time::timeout(timeout, async {
            let mut conn = redis.get().await.map_err(|e| e.to_string())?;
            let mut pipe = deadpool_redis::redis::pipe();
            for (key, n, ttl) in &distinct {
                pipe.cmd("INCRBY").arg(*key).arg(*n);
                pipe.cmd("EXPIRE").arg(*key).arg(*ttl).ignore();
            }
            pipe.query_async::<Vec<u64>>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
        .and_then(|t| match t.len() == distinct.len() {
            true => Ok(t),
            false => Err("unexpected pipeline answer".into()),
        });
        match totals {
            Ok(totals) => {
                // Each key's first count in this batch, handed out in order.
                let mut next: Vec<u64> = distinct
                    .iter()
                    .zip(&totals)
                    .map(|((_, n, _), total)| total.saturating_sub(*n) + 1)
                    .collect();
                let mut replies = Vec::with_capacity(batch.len());
                for (keys, _) in &batch {
                    let counts: Vec<u64> = keys
                        .iter()
                        .map(|(key, _, amount)| {
                            let i = index[key.as_str()];
                            let first = next[i];
                            next[i] += amount;
                            first
                        })
                        .collect();
                    replies.push(counts);
                }
                drop(index);
                drop(distinct);
                for ((_, reply), counts) in batch.drain(..).zip(replies) {
                    let _ = reply.send(Ok(counts));
                }
            }
            Err(e) => {
                drop(index);
                drop(distinct);
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
