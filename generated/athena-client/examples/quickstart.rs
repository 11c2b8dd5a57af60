//! Quickstart: health check, then rows from one table.
//!
//! ```sh
//! ATHENA_URL=http://127.0.0.1:4052 ATHENA_CLIENT=local ATHENA_TABLE=items \
//!     cargo run -p athena-client --example quickstart
//! ```
//!
//! `ATHENA_KEY` (optional) is sent as `X-Athena-Key`. The table must exist in
//! the database behind `ATHENA_CLIENT` (create it with psql; see README).

use athena_client::{types, ApiError, AthenaClientBuilder};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = env_or("ATHENA_URL", "http://127.0.0.1:4052");
    let client_name = env_or("ATHENA_CLIENT", "local");
    let table = env_or("ATHENA_TABLE", "items");

    let mut builder = AthenaClientBuilder::new(&url).client_name(&client_name);
    if let Ok(key) = std::env::var("ATHENA_KEY") {
        builder = builder.api_key(key);
    }
    let athena = builder.build()?;

    match athena.get_health().send().await {
        Ok(health) => {
            let status = health.status();
            let health = health.into_inner();
            println!(
                "GET /health: {status} status={} version={}",
                health.status.as_deref().unwrap_or("?"),
                health.version.as_deref().unwrap_or("?")
            );
        }
        Err(e) => {
            let e = ApiError::from_progenitor(e).await;
            eprintln!("GET /health failed: {e}");
            std::process::exit(1);
        }
    }

    let body = types::PostGatewayFetchBody {
        table_name: Some(table.clone()),
        limit: Some(20),
        ..Default::default()
    };
    match athena.post_gateway_fetch().body(body).send().await {
        Ok(rows) => {
            let rows = rows.into_inner();
            println!(
                "POST /gateway/fetch {table} (client {client_name}): {} rows",
                rows.data.len()
            );
            for row in &rows.data {
                println!("  {}", serde_json::to_string(row)?);
            }
        }
        Err(e) => {
            let e = ApiError::from_progenitor(e).await;
            eprintln!("POST /gateway/fetch {table} failed: {e}");
            if let Some(code) = e.code() {
                eprintln!("  code: {code}");
            }
            std::process::exit(1);
        }
    }
    Ok(())
}
