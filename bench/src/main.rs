//! The `krake-bench` binary: parses flags and hands over to [`krake_bench::run`].

use clap::Parser;

/// The same allocator as the `krake` binary, so in-process figures match what it serves.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = krake_bench::Cli::parse();
    match krake_bench::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
