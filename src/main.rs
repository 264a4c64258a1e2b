//! The `gsai-load` binary: load `.env`, parse flags (over config files), run, print the error
//! chain, exit.

use gsai_load::cli::sources::{self, ParseError};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any thread starts: it sets environment variables.
    if let Err(e) = gsai_load::config::dotenv::load(std::path::Path::new(".env")) {
        eprintln!("error: {e}");
        return ExitCode::from(gsai_load::app::EXIT_USAGE);
    }
    // Flags over the environment over config files (locust.conf, gsai-load.toml, --config).
    let parsed = match sources::parse_process_args() {
        Ok(p) => p,
        Err(ParseError::Clap(e)) => e.exit(),
        Err(ParseError::Source(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(gsai_load::app::EXIT_USAGE);
        }
    };
    for note in &parsed.notes {
        eprintln!("note: {note}");
    }
    let cli = parsed.cli;
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
