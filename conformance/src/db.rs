//! The tenant database, for the fixtures and for the reads that prove a
//! write's effect (`After::Db`): one connection shared by every task
//! (tokio-postgres pipelines concurrent queries on it).

use serde_json::Value;
use tokio_postgres::{Client, NoTls};

pub struct Db {
    client: Client,
}

impl Db {
    pub async fn connect(url: &str) -> Result<Db, String> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| format!("connecting to the tenant database: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("conformance: tenant database connection: {e}");
            }
        });
        Ok(Db { client })
    }

    /// Runs statements (fixtures).
    pub async fn execute(&self, sql: &str) -> Result<(), String> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| format!("tenant database: {e}"))
    }

    /// The rows of a query as a JSON array of objects (Postgres renders
    /// them: `json_agg`).
    pub async fn rows(&self, sql: &str) -> Result<Value, String> {
        let wrapped = format!("SELECT coalesce(json_agg(t), '[]'::json)::text FROM ({sql}) t");
        let row = self
            .client
            .query_one(wrapped.as_str(), &[])
            .await
            .map_err(|e| format!("reading back with {sql:?}: {e}"))?;
        serde_json::from_str(&row.get::<_, String>(0))
            .map_err(|e| format!("reading back with {sql:?}: {e}"))
    }
}
