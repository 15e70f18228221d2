//! The `connect-events` command line.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    connect_events_handlers::cli::main().await
}
