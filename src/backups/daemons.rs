//! The daemon registry (`GET /admin/daemons`): one task per replica writes
//! every supervised loop of the replica (`crate::supervisor::Loops`) to
//! `athena_daemon_registry` each heartbeat period — one row per loop, kind
//! = the loop's name. A loop that is backing off after a crash is written
//! `running = false`, its heartbeat time kept, so it lists as `stale`; a
//! stopped replica's rows stop moving and turn `stale` after 3 periods.

use super::Backups;
use crate::domain::DomainError;
use crate::supervisor::{supervise, Backoff, Loops};
use std::sync::Arc;
use std::time::Duration;

/// Rows not heard from for this long are deleted (replicas long gone).
const FORGET_AFTER_SECS: f64 = 86_400.0;

impl Backups {
    /// Writes one heartbeat of every loop in `loops`.
    pub async fn heartbeat_loops(&self, loops: &Loops) -> Result<(), DomainError> {
        let list = loops.snapshot();
        let ids: Vec<&str> = list.iter().map(|l| l.daemon_id.as_str()).collect();
        let kinds: Vec<&str> = list.iter().map(|l| l.kind.as_str()).collect();
        let running: Vec<bool> = list.iter().map(|l| l.running()).collect();
        let conn = self.catalog.get().await?;
        conn.execute(
            "INSERT INTO athena_daemon_registry (daemon_id, kind, host, pid, version, running)
             SELECT t.d, t.k, $4, $5, $6, t.r FROM unnest($1::text[], $2::text[], $3::bool[]) AS t(d, k, r)
             ON CONFLICT (daemon_id) DO UPDATE
                SET running = EXCLUDED.running,
                    last_heartbeat_at = CASE WHEN EXCLUDED.running THEN now()
                                             ELSE athena_daemon_registry.last_heartbeat_at END",
            &[
                &ids,
                &kinds,
                &running,
                &loops.host(),
                &(loops.pid() as i32),
                &env!("CARGO_PKG_VERSION"),
            ],
        )
        .await?;
        Ok(())
    }

    /// Forgets daemons not heard from for a day.
    pub async fn prune_daemons(&self) -> Result<(), DomainError> {
        let conn = self.catalog.get().await?;
        conn.execute(
            "DELETE FROM athena_daemon_registry
              WHERE last_heartbeat_at < now() - make_interval(secs => $1)",
            &[&FORGET_AFTER_SECS],
        )
        .await?;
        Ok(())
    }
}

/// Starts this replica's heartbeat task (itself a supervised loop, listed
/// with the others when started inside `loops`' scope).
pub fn spawn(backups: Arc<Backups>, loops: Arc<Loops>) {
    supervise("daemon heartbeat", Backoff::default(), move || {
        let (b, loops) = (backups.clone(), loops.clone());
        async move {
            let every = b.settings.heartbeat;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut rounds: u64 = 0;
            loop {
                tick.tick().await;
                // Right after start-up, let the other loops begin first.
                if rounds == 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if let Err(e) = b.heartbeat_loops(&loops).await {
                    tracing::warn!(error = %e, "daemon registry heartbeat failed");
                }
                if rounds % 360 == 0 {
                    if let Err(e) = b.prune_daemons().await {
                        tracing::warn!(error = %e, "pruning the daemon registry failed");
                    }
                }
                rounds += 1;
            }
        }
    });
}
