use clap::Parser;

/// mimalloc: many threads allocate small values (runs, JSON, log lines) at once, and the
/// system allocator's arena locks were a tenth of the CPU under load (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = baton::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,actix_server=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("baton: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(baton::cli::run(cli));
    // Drop every task (and with them the store's last users), then let the database close
    // cleanly: an unclean close makes the next open repair, and write, the whole file.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    if !baton::store::wait_all_closed(std::time::Duration::from_secs(5)) {
        eprintln!("baton: the database did not close in time; the next start will check it");
    }
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baton: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
