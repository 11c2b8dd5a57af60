//! Applies `migrations/*.sql` to the catalog at start: versioned, each in a
//! transaction, serialized across replicas by an advisory lock, and checked
//! against the recorded checksum so an edited migration is caught.

use super::Pool;
use crate::domain::DomainError;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Arbitrary constant: the advisory lock key for catalog migrations.
const LOCK_KEY: i64 = 0x4154_4845_4e41; // "ATHENA"

fn checksum(sql: &str) -> String {
    // FNV-1a 64: stable across builds and platforms, enough to detect edits.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

pub async fn run(pool: &Pool) -> Result<usize, DomainError> {
    let mut conn = pool.get().await?;
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS athena_schema_migrations (
             version bigint PRIMARY KEY,
             name text NOT NULL,
             checksum text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    conn.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply(&mut conn).await;
    let _ = conn
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    result
}

async fn apply(conn: &mut tokio_postgres::Client) -> Result<usize, DomainError> {
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS {
        let sum = checksum(sql);
        let row = conn
            .query_opt(
                "SELECT checksum FROM athena_schema_migrations WHERE version = $1",
                &[version],
            )
            .await?;
        match row {
            Some(row) => {
                let recorded: String = row.get(0);
                if recorded != sum {
                    return Err(DomainError::Internal(format!(
                        "migration {name} was changed after it was applied (checksum {recorded} → {sum})"
                    )));
                }
            }
            None => {
                let tx = conn.transaction().await?;
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO athena_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    &[version, name, &sum],
                )
                .await?;
                tx.commit().await?;
                tracing::info!(migration = name, "applied catalog migration");
                applied += 1;
            }
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_ordered_and_unique() {
        let versions: Vec<i64> = super::MIGRATIONS.iter().map(|(v, _, _)| *v).collect();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(versions, sorted);
        assert!(!versions.is_empty());
    }
}
