//! The `contactsync` binary: parse the command line, set up logging, run, map errors to exit codes.

use clap::Parser;
use contactsync::cli::{self, Cli};
use contactsync::exit_code::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    contactsync::logging::init(cli.log_format, cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::Failure.into();
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code.into(),
        Err(err) => {
            // `{:#}` prints the whole cause chain: what failed and on what.
            eprintln!("error: {:#}", err.error);
            err.code.into()
        }
    }
}
