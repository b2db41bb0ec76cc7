//! Documented process exit codes, shared by every subcommand so cron and CI can branch on them.

/// Exit codes of the `contactsync` binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Everything asked for was done.
    Ok = 0,
    /// The run failed: nothing (or nothing trustworthy) was produced; see the error on stderr.
    Failure = 1,
    /// Bad command line or pipeline file; nothing was run.
    BadConfig = 2,
    /// The run finished but some rows or operations failed; they are recorded and retried next run.
    PartialFailure = 3,
    /// The audit found findings over a threshold set in the pipeline file.
    AuditThreshold = 4,
    /// The plan exceeds a safety limit (creates, deletes, sends, merges): only its opt-outs were written.
    SafetyLimit = 5,
    /// Another run holds the state directory's lock.
    Locked = 6,
}

impl ExitCode {
    /// Text for `--help` and the README.
    pub const HELP: &'static str = "Exit codes: 0 ok; 1 failure; 2 bad config or usage; \
3 partial failure (some rows or operations failed and are recorded for the next run); \
4 audit threshold breached; 5 plan over a safety limit (only opt-outs written); \
6 another run holds the lock.";
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}
