//! The `krake` binary: parses flags and hands over to [`krake_bot::run`].

use clap::Parser;

/// mimalloc: the webhook and REST paths allocate many small short-lived buffers, which the
/// system allocator serves measurably slower under concurrency (`krake-bench webhooks`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = krake_bot::cli::Cli::parse();
    match krake_bot::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
