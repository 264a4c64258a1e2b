//! The `gsai-load` binary: load `.env`, parse flags, run, print the error chain, exit.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any thread starts: it sets environment variables.
    if let Err(e) = gsai_load::config::dotenv::load(std::path::Path::new(".env")) {
        eprintln!("error: {e}");
        return ExitCode::from(gsai_load::app::EXIT_USAGE);
    }
    let cli = gsai_load::cli::Cli::parse();
    gsai_load::app::raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(gsai_load::app::EXIT_USAGE);
        }
    };
    let outcome = runtime.block_on(gsai_load::app::main(cli));
    // Do not wait for blocking work still running (a token count of a huge reply): the
    // results are written, and a stop must stay bounded.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(gsai_load::app::EXIT_USAGE)
        }
    }
}
