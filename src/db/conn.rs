//! Pooled connections that keep their own prepared statements. The gateway
//! sends the same few statement shapes over and over; preparing each once
//! per connection lets Postgres skip parsing (and, after a few runs,
//! planning), and each request is then a single Bind/Execute round trip.

use bb8_postgres::PostgresConnectionManager;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Statement};

/// Statements kept per connection; past this the cache starts over (the
/// shapes that matter are re-prepared at once).
const MAX_STATEMENTS: usize = 256;

pub struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
    /// Session state may have changed and could not be reset: the pool
    /// drops the connection instead of handing it out again.
    tainted: bool,
}

impl Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl From<Client> for Conn {
    /// A connection opened outside the pool (e.g. a verified first one).
    fn from(client: Client) -> Self {
        Conn {
            client,
            statements: HashMap::new(),
            tainted: false,
        }
    }
}

impl Conn {
    /// The statement for `sql` with these parameter types, prepared on first use.
    pub async fn prepare_cached(
        &mut self,
        sql: &str,
        types: &[Type],
    ) -> Result<Statement, tokio_postgres::Error> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare_typed(sql, types).await?;
        if self.statements.len() >= MAX_STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    /// Drops every cached statement (after DDL changed what one describes).
    pub fn forget_statements(&mut self) {
        self.statements.clear();
    }

    /// Resets every piece of session state caller SQL may have left
    /// (`SET`, roles, prepared statements, advisory locks, `LISTEN`, temp
    /// tables, cursors) with `DISCARD ALL`; if that fails, the connection is
    /// never reused.
    pub async fn reset_session(&mut self) {
        self.statements.clear();
        match self.client.batch_execute("DISCARD ALL").await {
            Ok(()) => self.tainted = false,
            Err(e) => {
                tracing::warn!(error = %e, "DISCARD ALL failed; dropping the connection");
                self.tainted = true;
            }
        }
    }

    /// Marks the session as changed: unless `reset_session` succeeds
    /// afterwards, the pool drops the connection.
    pub fn taint(&mut self) {
        self.tainted = true;
    }
}

/// bb8-postgres' manager, with `Conn` as the connection type.
pub struct Manager(pub PostgresConnectionManager<tokio_postgres_rustls::MakeRustlsConnect>);

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<Conn, Self::Error> {
        Ok(Conn {
            client: self.0.connect().await?,
            statements: HashMap::new(),
            tainted: false,
        })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), Self::Error> {
        self.0.is_valid(&mut conn.client).await
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.tainted || self.0.has_broken(&mut conn.client)
    }
}
