use athena::config::Config;
use athena::http::server::serve;
use std::process::ExitCode;

/// Each request allocates and frees many small buffers across threads;
/// glibc's malloc spent about a fifth of the gateway's own CPU on them
/// (bench: point read and 50-row list).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("athena: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match athena::telemetry::init(config.otlp_endpoint.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("athena: telemetry: {e}");
            return ExitCode::from(2);
        }
    };
    let listen = config.listen;
    let app = match athena::runtime::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("start-up failed: {e}");
            telemetry.shutdown();
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {listen}: {e}");
            telemetry.shutdown();
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        "athena {} listening on http://{}",
        env!("CARGO_PKG_VERSION"),
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    serve(listener, app, shutdown_signal()).await;
    telemetry.shutdown();
    ExitCode::SUCCESS
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
