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
6 another run holds the lock. \
With many locations (`[ghl] locations`), each location ends with one of these codes and the run \
with: 0 when every location ended 0; 3 when some ended 0 and others did not (the report and \
metrics say which); when none ended 0, their common code, or 1 when they differ.";

    /// The exit code of a run over many locations, from each location's (see [`ExitCode::HELP`]).
    pub fn across_locations(codes: &[ExitCode]) -> ExitCode {
        let failed: Vec<ExitCode> = codes
            .iter()
            .copied()
            .filter(|c| *c != ExitCode::Ok)
            .collect();
        match failed.first() {
            None => ExitCode::Ok,
            Some(_) if failed.len() < codes.len() => ExitCode::PartialFailure,
            Some(first) if failed.iter().all(|c| c == first) => *first,
            Some(_) => ExitCode::Failure,
        }
    }

    /// The code of a number this binary exits with (1 for an unknown one).
    pub fn from_u8(code: u8) -> ExitCode {
        [
            ExitCode::Ok,
            ExitCode::Failure,
            ExitCode::BadConfig,
            ExitCode::PartialFailure,
            ExitCode::AuditThreshold,
            ExitCode::SafetyLimit,
            ExitCode::Locked,
        ]
        .into_iter()
        .find(|c| *c as u8 == code)
        .unwrap_or(ExitCode::Failure)
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCode::*;
    use super::*;

    #[test]
    fn many_locations_end_with_the_documented_code() {
        assert_eq!(ExitCode::across_locations(&[]), Ok);
        assert_eq!(ExitCode::across_locations(&[Ok, Ok]), Ok);
        assert_eq!(
            ExitCode::across_locations(&[Ok, Failure, Ok]),
            PartialFailure
        );
        assert_eq!(
            ExitCode::across_locations(&[SafetyLimit, Ok]),
            PartialFailure
        );
        assert_eq!(
            ExitCode::across_locations(&[SafetyLimit, SafetyLimit]),
            SafetyLimit
        );
        assert_eq!(ExitCode::across_locations(&[SafetyLimit, Locked]), Failure);
        assert_eq!(ExitCode::from_u8(5), SafetyLimit);
        assert_eq!(ExitCode::from_u8(77), Failure);
    }
}
