//! The IP policy of API keys as stored in the catalog (issue 13,
//! `migrations/0006_ip_policy.sql`): per-key settings and lists, the
//! global lists, the addresses virgin keys were seen from, and the virgin
//! lock-in.
//!
//! Lock order: every write to one key's policy (list changes, learning,
//! promote, reset) first takes that key's row lock (`lock_key`,
//! `SELECT … FOR NO KEY UPDATE` on `athena_api_keys`, which does not block
//! the foreign-key checks of other tables), then decides inside that one
//! transaction. Concurrent first requests of a virgin key are thereby
//! serialized: the cap on distinct addresses is read and enforced under
//! the lock, so it holds however many arrive at once.
//!
//! Addresses are bound as text and cast in SQL (`$n::text::cidr`): the
//! driver has no `cidr` type; the text was validated by
//! `auth::ip_policy::parse_net` before it got here.

use crate::auth::ip_policy::{GlobalRules, KeyRules, ScopedNet};
use crate::db::Pool;
use crate::domain::DomainError;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use std::net::IpAddr;
use tokio_postgres::{GenericClient, Transaction};
use uuid::Uuid;

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    White,
    Black,
}

impl List {
    fn key_table(self) -> &'static str {
        match self {
            List::White => "api_key_ip_whitelist",
            List::Black => "api_key_ip_blacklist",
        }
    }

    fn global_table(self) -> &'static str {
        match self {
            List::White => "api_key_ip_global_whitelist",
            List::Black => "api_key_ip_global_blacklist",
        }
    }
}

/// A key's IP settings and virgin state (defaults when it has none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub virgin_mode: bool,
    pub virgin_until_n_requests: i32,
    pub max_whitelist_ips: i32,
    pub virgin_resolved: bool,
    pub virgin_resolved_at: Option<DateTime<Utc>>,
    pub virgin_request_count: i64,
}

/// A per-key list entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: Uuid,
    /// CIDR text (a single address is a /32 or /128).
    pub addr: String,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub key_id: Uuid,
    pub settings: Settings,
    pub whitelist: Vec<Rule>,
    pub blacklist: Vec<Rule>,
}

/// An address a virgin key was used from.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub id: Uuid,
    /// The address (no prefix length).
    pub addr: String,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub hit_count: i64,
    pub locked_in: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GlobalRule {
    pub id: Uuid,
    pub addr: String,
    pub client_name: Option<String>,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The IP settings of a key being created (validated by the caller).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewPolicy {
    pub virgin_mode: bool,
    pub virgin_until_n_requests: i32,
    pub max_whitelist_ips: i32,
    pub whitelist: Vec<IpNet>,
    pub blacklist: Vec<IpNet>,
}

/// What learning an address decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// Let through; `locked_in` when this request resolved the key.
    Allowed { locked_in: bool },
    /// A new address past the cap (or not on the whitelist of a key
    /// resolved meanwhile).
    Denied,
}

fn texts(nets: &[IpNet]) -> Vec<String> {
    nets.iter().map(IpNet::to_string).collect()
}

fn net(text: &str) -> Result<IpNet, DomainError> {
    text.parse()
        .map_err(|_| DomainError::Internal(format!("unreadable address in the catalog: {text}")))
}

const SETTINGS: &str = "COALESCE(p.virgin_mode, false), COALESCE(p.virgin_until_n_requests, 0),
        COALESCE(p.max_whitelist_ips, 0), COALESCE(p.virgin_resolved, false), p.virgin_resolved_at,
        COALESCE(p.virgin_request_count, 0)";

fn settings_row(r: &tokio_postgres::Row) -> Settings {
    Settings {
        virgin_mode: r.get(0),
        virgin_until_n_requests: r.get(1),
        max_whitelist_ips: r.get(2),
        virgin_resolved: r.get(3),
        virgin_resolved_at: r.get(4),
        virgin_request_count: r.get(5),
    }
}

/// Takes the key's row lock and reads its settings; `None`: no such key.
async fn lock_key(tx: &Transaction<'_>, id: Uuid) -> Result<Option<Settings>, DomainError> {
    let sql = format!(
        "SELECT {SETTINGS} FROM athena_api_keys k
           LEFT JOIN api_key_ip_policy p ON p.api_key_id = k.id
          WHERE k.id = $1 FOR NO KEY UPDATE OF k"
    );
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(settings_row))
}

/// The global lists and the keys with rules of their own (the hot path's
/// snapshot).
pub async fn global_rules(pool: &Pool) -> Result<GlobalRules, DomainError> {
    let conn = pool.get().await?;
    let mut rules = GlobalRules::default();
    for r in conn
        .query(
            "SELECT true, addr::text, client_name FROM api_key_ip_global_blacklist
             UNION ALL
             SELECT false, addr::text, client_name FROM api_key_ip_global_whitelist",
            &[],
        )
        .await?
    {
        let rule = ScopedNet {
            net: net(r.get(1))?.into(),
            client: r.get(2),
        };
        match r.get::<_, bool>(0) {
            true => rules.black.push(rule),
            false => rules.white.push(rule),
        }
    }
    rules.keyed = conn
        .query(
            "SELECT api_key_id FROM api_key_ip_whitelist
             UNION SELECT api_key_id FROM api_key_ip_blacklist
             UNION SELECT api_key_id FROM api_key_ip_policy WHERE virgin_mode AND NOT virgin_resolved",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(rules)
}

/// One key's rules for the hot path.
pub async fn key_rules(pool: &Pool, id: Uuid) -> Result<KeyRules, DomainError> {
    let conn = pool.get().await?;
    let mut rules = KeyRules::default();
    for r in conn
        .query(
            "SELECT true, addr::text FROM api_key_ip_whitelist WHERE api_key_id = $1
             UNION ALL
             SELECT false, addr::text FROM api_key_ip_blacklist WHERE api_key_id = $1",
            &[&id],
        )
        .await?
    {
        let n = net(r.get(1))?.into();
        match r.get::<_, bool>(0) {
            true => rules.white.push(n),
            false => rules.black.push(n),
        }
    }
    rules.virgin_open = conn
        .query_opt(
            "SELECT virgin_mode AND NOT virgin_resolved FROM api_key_ip_policy WHERE api_key_id = $1",
            &[&id],
        )
        .await?
        .is_some_and(|r| r.get(0));
    Ok(rules)
}

/// A successful authentication of a virgin key from `ip`, in one
/// transaction under the key's row lock: the address is recorded (or its
/// hit counted) and the request counted; the key locks in at
/// `virgin_until_n_requests` requests or `max_whitelist_ips` distinct
/// addresses. A new address once the cap of distinct addresses is reached
/// is denied and not recorded.
pub async fn learn(pool: &Pool, id: Uuid, ip: IpAddr) -> Result<Learned, DomainError> {
    let addr = IpNet::from(ip.to_canonical()).to_string();
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let Some(s) = lock_key(&tx, id).await? else {
        // Deleted meanwhile: the next request gets the 401.
        return Ok(Learned::Denied);
    };
    if !s.virgin_mode || s.virgin_resolved {
        // Resolved since the cache was read: the whitelist decides.
        let allowed: bool = tx
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM api_key_ip_whitelist WHERE api_key_id = $1)
                     OR EXISTS (SELECT 1 FROM api_key_ip_whitelist
                                 WHERE api_key_id = $1 AND addr >>= $2::text::inet)",
                &[&id, &addr],
            )
            .await?
            .get(0);
        tx.commit().await?;
        return Ok(match allowed {
            true => Learned::Allowed { locked_in: false },
            false => Learned::Denied,
        });
    }
    let row = tx
        .query_one(
            "SELECT count(*), COALESCE(bool_or(addr = $2::text::cidr), false)
               FROM api_key_ip_seen WHERE api_key_id = $1",
            &[&id, &addr],
        )
        .await?;
    let (distinct, seen): (i64, bool) = (row.get(0), row.get(1));
    let cap = i64::from(s.max_whitelist_ips);
    // Without a cap, learning still stops at the lists' bound: a leaked
    // virgin key rotated through an IPv6 /64 cannot grow its whitelist
    // past what the API would accept.
    let learn_cap = match cap {
        0 => crate::auth::ip_policy::MAX_ENTRIES as i64,
        cap => cap,
    };
    if !seen && distinct >= learn_cap {
        return Ok(Learned::Denied);
    }
    tx.execute(
        "INSERT INTO api_key_ip_seen (api_key_id, addr) VALUES ($1, $2::text::cidr)
         ON CONFLICT (api_key_id, addr)
         DO UPDATE SET hit_count = api_key_ip_seen.hit_count + 1, last_seen_at = now()",
        &[&id, &addr],
    )
    .await?;
    let count: i64 = tx
        .query_one(
            "UPDATE api_key_ip_policy SET virgin_request_count = virgin_request_count + 1
              WHERE api_key_id = $1 RETURNING virgin_request_count",
            &[&id],
        )
        .await?
        .get(0);
    let distinct = distinct + i64::from(!seen);
    let until = i64::from(s.virgin_until_n_requests);
    let lock = (until > 0 && count >= until) || (cap > 0 && distinct >= cap);
    if lock {
        lock_in(&tx, id, cap).await?;
    }
    tx.commit().await?;
    Ok(Learned::Allowed { locked_in: lock })
}

/// Whitelists the earliest-seen addresses (as many as the cap leaves room
/// for; 0 = the lists' bound, `MAX_ENTRIES`), marks them `locked_in` and resolves the key. The
/// caller holds the key's row lock.
async fn lock_in(tx: &Transaction<'_>, id: Uuid, cap: i64) -> Result<(), DomainError> {
    let existing: i64 = tx
        .query_one(
            "SELECT count(*) FROM api_key_ip_whitelist WHERE api_key_id = $1",
            &[&id],
        )
        .await?
        .get(0);
    let cap = match cap {
        0 => crate::auth::ip_policy::MAX_ENTRIES as i64,
        cap => cap,
    };
    let room = (cap - existing).max(0);
    tx.execute(
        "INSERT INTO api_key_ip_whitelist (api_key_id, addr, label, learned)
         SELECT api_key_id, addr, 'virgin lock-in', true FROM api_key_ip_seen
          WHERE api_key_id = $1
          ORDER BY first_seen_at, id
          LIMIT $2
         ON CONFLICT (api_key_id, addr) DO NOTHING",
        &[&id, &room],
    )
    .await?;
    tx.execute(
        "UPDATE api_key_ip_seen s SET locked_in = EXISTS (
             SELECT 1 FROM api_key_ip_whitelist w WHERE w.api_key_id = s.api_key_id AND w.addr = s.addr)
          WHERE s.api_key_id = $1",
        &[&id],
    )
    .await?;
    tx.execute(
        "UPDATE api_key_ip_policy
            SET virgin_resolved = true, virgin_resolved_at = now(), updated_at = now()
          WHERE api_key_id = $1",
        &[&id],
    )
    .await?;
    Ok(())
}

/// Stores a new key's IP settings, in the key's creating transaction.
pub async fn store_new(tx: &Transaction<'_>, id: Uuid, new: &NewPolicy) -> Result<(), DomainError> {
    if new.virgin_mode || new.virgin_until_n_requests > 0 || new.max_whitelist_ips > 0 {
        tx.execute(
            "INSERT INTO api_key_ip_policy (api_key_id, virgin_mode, virgin_until_n_requests, max_whitelist_ips)
             VALUES ($1, $2, $3, $4)",
            &[
                &id,
                &new.virgin_mode,
                &new.virgin_until_n_requests,
                &new.max_whitelist_ips,
            ],
        )
        .await?;
    }
    for (list, nets) in [(List::White, &new.whitelist), (List::Black, &new.blacklist)] {
        if !nets.is_empty() {
            insert_entries(tx, id, list, nets, None).await?;
        }
    }
    Ok(())
}

async fn insert_entries(
    tx: &Transaction<'_>,
    id: Uuid,
    list: List,
    nets: &[IpNet],
    label: Option<&str>,
) -> Result<u64, DomainError> {
    let table = list.key_table();
    let sql = format!(
        "INSERT INTO {table} AS t (api_key_id, addr, label)
         SELECT $1, a::cidr, $3 FROM unnest($2::text[]) a
         ON CONFLICT (api_key_id, addr) DO UPDATE SET label = COALESCE(EXCLUDED.label, t.label)"
    );
    Ok(tx.execute(&sql, &[&id, &texts(nets), &label]).await?)
}

async fn rules(conn: &impl GenericClient, id: Uuid, list: List) -> Result<Vec<Rule>, DomainError> {
    let table = list.key_table();
    let sql = format!(
        "SELECT id, addr::text, label, created_at FROM {table}
          WHERE api_key_id = $1 ORDER BY created_at, addr"
    );
    Ok(conn
        .query(&sql, &[&id])
        .await?
        .iter()
        .map(|r| Rule {
            id: r.get(0),
            addr: r.get(1),
            label: r.get(2),
            created_at: r.get(3),
        })
        .collect())
}

async fn read_policy(conn: &impl GenericClient, id: Uuid) -> Result<Option<Policy>, DomainError> {
    let sql = format!(
        "SELECT {SETTINGS} FROM athena_api_keys k
           LEFT JOIN api_key_ip_policy p ON p.api_key_id = k.id WHERE k.id = $1"
    );
    let Some(settings) = conn
        .query_opt(&sql, &[&id])
        .await?
        .as_ref()
        .map(settings_row)
    else {
        return Ok(None);
    };
    Ok(Some(Policy {
        key_id: id,
        settings,
        whitelist: rules(conn, id, List::White).await?,
        blacklist: rules(conn, id, List::Black).await?,
    }))
}

/// A key's policy; `None`: no such key.
pub async fn policy(pool: &Pool, id: Uuid) -> Result<Option<Policy>, DomainError> {
    let mut conn = pool.get().await?;
    // One snapshot of settings and lists.
    let tx = conn
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let policy = read_policy(&tx, id).await?;
    tx.commit().await?;
    Ok(policy)
}

/// Adds entries to a key's list (idempotent: present ones keep their row,
/// a given label replaces theirs); the whitelist stays within
/// `max_whitelist_ips`. `None`: no such key.
pub async fn add(
    pool: &Pool,
    id: Uuid,
    list: List,
    nets: &[IpNet],
    label: Option<&str>,
) -> Result<Option<Policy>, DomainError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let Some(s) = lock_key(&tx, id).await? else {
        return Ok(None);
    };
    if list == List::White && s.max_whitelist_ips > 0 {
        let total: i64 = tx
            .query_one(
                "SELECT count(*) FROM (
                     SELECT addr FROM api_key_ip_whitelist WHERE api_key_id = $1
                     UNION SELECT a::cidr FROM unnest($2::text[]) a) t",
                &[&id, &texts(nets)],
            )
            .await?
            .get(0);
        if total > i64::from(s.max_whitelist_ips) {
            return Err(DomainError::IpWhitelistCapExceeded(format!(
                "the whitelist would hold {total} entries; max_whitelist_ips is {}",
                s.max_whitelist_ips
            )));
        }
    }
    insert_entries(&tx, id, list, nets, label).await?;
    let policy = read_policy(&tx, id).await?;
    tx.commit().await?;
    Ok(policy)
}

/// Removes entries from a key's list (absent ones are ignored). `None`: no
/// such key.
pub async fn remove(
    pool: &Pool,
    id: Uuid,
    list: List,
    nets: &[IpNet],
) -> Result<Option<Policy>, DomainError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    if lock_key(&tx, id).await?.is_none() {
        return Ok(None);
    }
    let table = list.key_table();
    let sql =
        format!("DELETE FROM {table} WHERE api_key_id = $1 AND addr = ANY($2::text[]::cidr[])");
    tx.execute(&sql, &[&id, &texts(nets)]).await?;
    let policy = read_policy(&tx, id).await?;
    tx.commit().await?;
    Ok(policy)
}

/// The addresses a key was seen from, most recent first. `None`: no such
/// key.
pub async fn seen(
    pool: &Pool,
    id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Option<Vec<Seen>>, DomainError> {
    let conn = pool.get().await?;
    let exists = conn
        .query_opt("SELECT 1 FROM athena_api_keys WHERE id = $1", &[&id])
        .await?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let rows = conn
        .query(
            "SELECT id, host(addr), first_seen_at, last_seen_at, hit_count, locked_in
               FROM api_key_ip_seen WHERE api_key_id = $1
              ORDER BY last_seen_at DESC, id LIMIT $2 OFFSET $3",
            &[&id, &limit, &offset],
        )
        .await?;
    Ok(Some(
        rows.iter()
            .map(|r| Seen {
                id: r.get(0),
                addr: r.get(1),
                first_seen_at: r.get(2),
                last_seen_at: r.get(3),
                hit_count: r.get(4),
                locked_in: r.get(5),
            })
            .collect(),
    ))
}

fn not_virgin(id: Uuid) -> DomainError {
    DomainError::Invalid(format!("API key {id} is not in virgin mode"))
}

/// Locks a virgin key in now (as the thresholds would). A resolved key is
/// left as it is. `None`: no such key.
pub async fn promote(pool: &Pool, id: Uuid) -> Result<Option<Policy>, DomainError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let Some(s) = lock_key(&tx, id).await? else {
        return Ok(None);
    };
    if !s.virgin_mode {
        return Err(not_virgin(id));
    }
    if !s.virgin_resolved {
        let seen: i64 = tx
            .query_one(
                "SELECT count(*) FROM api_key_ip_seen WHERE api_key_id = $1",
                &[&id],
            )
            .await?
            .get(0);
        if seen == 0 {
            // An empty whitelist would let every address in.
            return Err(DomainError::Invalid(
                "the key has not been used from any address yet: nothing to lock in".into(),
            ));
        }
        lock_in(&tx, id, i64::from(s.max_whitelist_ips)).await?;
    }
    let policy = read_policy(&tx, id).await?;
    tx.commit().await?;
    Ok(policy)
}

/// Back to learning: counters zeroed, unresolved, the whitelist entries a
/// lock-in added removed, and the seen addresses deleted when asked (else
/// kept, no longer locked in). `None`: no such key.
pub async fn reset(pool: &Pool, id: Uuid, clear_seen: bool) -> Result<Option<Policy>, DomainError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let Some(s) = lock_key(&tx, id).await? else {
        return Ok(None);
    };
    if !s.virgin_mode {
        return Err(not_virgin(id));
    }
    tx.execute(
        "UPDATE api_key_ip_policy
            SET virgin_resolved = false, virgin_resolved_at = NULL, virgin_request_count = 0,
                updated_at = now()
          WHERE api_key_id = $1",
        &[&id],
    )
    .await?;
    tx.execute(
        "DELETE FROM api_key_ip_whitelist WHERE api_key_id = $1 AND learned",
        &[&id],
    )
    .await?;
    let seen_sql = match clear_seen {
        true => "DELETE FROM api_key_ip_seen WHERE api_key_id = $1",
        false => "UPDATE api_key_ip_seen SET locked_in = false WHERE api_key_id = $1",
    };
    tx.execute(seen_sql, &[&id]).await?;
    let policy = read_policy(&tx, id).await?;
    tx.commit().await?;
    Ok(policy)
}

const GLOBAL_COLUMNS: &str = "id, addr::text, client_name, label, created_at, updated_at";

fn global_row(r: &tokio_postgres::Row) -> GlobalRule {
    GlobalRule {
        id: r.get(0),
        addr: r.get(1),
        client_name: r.get(2),
        label: r.get(3),
        created_at: r.get(4),
        updated_at: r.get(5),
    }
}

pub async fn list_global(pool: &Pool, list: List) -> Result<Vec<GlobalRule>, DomainError> {
    let conn = pool.get().await?;
    let table = list.global_table();
    let sql = format!("SELECT {GLOBAL_COLUMNS} FROM {table} ORDER BY created_at, id");
    Ok(conn
        .query(&sql, &[])
        .await?
        .iter()
        .map(global_row)
        .collect())
}

/// Adds a global rule, or relabels the rule for the same network and
/// client.
pub async fn upsert_global(
    pool: &Pool,
    list: List,
    net: IpNet,
    client_name: Option<&str>,
    label: Option<&str>,
) -> Result<GlobalRule, DomainError> {
    let conn = pool.get().await?;
    let table = list.global_table();
    let sql = format!(
        "INSERT INTO {table} (addr, client_name, label) VALUES ($1::text::cidr, $2, $3)
         ON CONFLICT (addr, (COALESCE(client_name, '')))
         DO UPDATE SET label = EXCLUDED.label, updated_at = now()
         RETURNING {GLOBAL_COLUMNS}"
    );
    let row = conn
        .query_one(&sql, &[&net.to_string(), &client_name, &label])
        .await?;
    Ok(global_row(&row))
}

/// Deletes the global rule for `net` and `client_name` (`None`: the rule
/// for every client); how many were deleted (0 or 1).
pub async fn delete_global(
    pool: &Pool,
    list: List,
    net: IpNet,
    client_name: Option<&str>,
) -> Result<u64, DomainError> {
    let conn = pool.get().await?;
    let table = list.global_table();
    let sql = format!(
        "DELETE FROM {table} WHERE addr = $1::text::cidr AND client_name IS NOT DISTINCT FROM $2"
    );
    Ok(conn
        .execute(&sql, &[&net.to_string(), &client_name])
        .await?)
}
