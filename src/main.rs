//! The `contactsync` binary: parse the command line, set up logging, run, map errors to exit codes.

use clap::Parser;
use contactsync::cli::{self, Cli};
use contactsync::exit_code::ExitCode;

/// mimalloc, keeping what it frees. A 10 M-row dedupe frees and allocates gigabytes of row tables
/// from one step to the next; glibc's malloc maps each large block fresh and unmaps it when freed,
/// and on a virtual machine that hands freed pages back to its host every fresh page costs a host
/// fault and a zeroing (the kernel's page clearing was the top item of a 10 M profile, 13 % of all
/// CPU, and 60 % of reading the input). Reusing freed memory took 10 M from 87-107 s to 77-86 s in
/// alternating runs, for a peak of 7.5 -> 9.3 GB; 1 M is unchanged (see README, Dedupe speed).
#[cfg(target_os = "linux")]
mod allocator {
    #[global_allocator]
    static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

    /// mimalloc v3's `mi_option_purge_delay` (its position in `mi_option_e`, mimalloc.h); the
    /// -sys crate names only the options whose numbers v2 and v3 share. The test below checks it
    /// by the option's documented default.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

    /// Never return freed memory to the OS: this is a batch process, and its memory goes back
    /// when it exits. `MIMALLOC_PURGE_DELAY` in the environment still wins, to measure the
    /// difference.
    pub fn keep_freed_memory() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: sets one of mimalloc's process-wide options; any value is valid, and -1
            // means "never purge".
            unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn purge_delay_option_number_is_mimalloc_v3s() {
            // purge_delay defaults to 1000 ms; its neighbours (deprecated_eager_commit_delay = 1,
            // use_numa_nodes = 0) default to other values, so a shifted number fails here.
            if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
                let value = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
                assert_eq!(value, 1000);
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    contactsync::snapshot::atomic::restrict_new_files();
    #[cfg(target_os = "linux")]
    allocator::keep_freed_memory();
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
    let command = cli.command.name();
    let json_report = cli.command.wants_json();
    let json_logs = cli.log_format == cli::LogFormat::Json;
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code.into(),
        Err(err) => {
            // `{:#}` prints the whole cause chain: what failed and on what.
            let message = format!("{:#}", err.error);
            if json_logs {
                tracing::error!(command, exit_code = err.code as u8, error = %message, "Command failed");
            } else {
                eprintln!("error: {message}");
            }
            if json_report {
                cli::CommandReport {
                    command: command.to_string(),
                    errors: vec![message],
                    exit_code: err.code as u8,
                    ..cli::CommandReport::default()
                }
                .print();
            }
            err.code.into()
        }
    }
}
