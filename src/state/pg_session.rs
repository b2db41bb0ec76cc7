//! Statements on a connection the server may drop (a restart, a failover, an idle timeout, an
//! administrator's `pg_terminate_backend`): what is run again on a new connection and what is not.
//!
//! - A job run with [`Session::once`] is never run twice. If the connection was lost before it,
//!   a reconnecting session connects again first (the job had not started: nothing is repeated);
//!   if it is lost during the job, the error is returned and the outcome is the caller's to settle.
//! - A job run with [`Session::repeatable`] is run again on a new connection when the connection is
//!   lost during it. It is told that an earlier run's outcome is unknown (its answer was lost: it
//!   may have committed), so a statement that is not idempotent reads back what it did before
//!   doing it again (see `PgLedger::begin`); reads and idempotent writes just run again.
//! - A session without a [`Reconnect`] (the run's lock) is never made again: once lost, every call
//!   fails, because what the session held (a session advisory lock) went with it.
//!
//! Generic over the connection so the rules are tested without a server.

use super::pg_error::PgError;
use std::sync::Arc;
use std::time::Duration;

/// A connection whose errors say whether it was lost.
pub trait Connection {
    /// Whether `error` (from a job on this connection) means the connection is gone.
    fn is_lost(&self, error: &PgError) -> bool;
}

impl Connection for postgres::Client {
    fn is_lost(&self, error: &PgError) -> bool {
        self.is_closed() || matches!(error, PgError::Postgres(e) if connection_error(e))
    }
}

/// Errors that end a connection: the socket closed or failed, the server ended the session
/// (SQLSTATE 57P01-57P03: terminated, crash shutdown, starting up) or any connection exception
/// (class 08).
pub fn connection_error(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
}

/// How a lost connection is made again: at once, then after each refusal waiting `first_wait`,
/// twice as long each time up to `max_wait`; a call gives up after `tries` failures (the loss of
/// its connection, each refusal).
#[derive(Clone)]
pub struct Reconnect {
    pub tries: u32,
    pub first_wait: Duration,
    pub max_wait: Duration,
    /// How a wait is spent: `std::thread::sleep`, or a test's recorder.
    pub sleep: Arc<dyn Fn(Duration) + Send + Sync>,
}

impl Reconnect {
    /// Six tries over about 8 s: a server restart or a failover, not a long outage (the run
    /// fails then, and the next one resumes from the ledger).
    pub fn standard() -> Reconnect {
        Reconnect {
            tries: 6,
            first_wait: Duration::from_millis(250),
            max_wait: Duration::from_secs(4),
            sleep: Arc::new(std::thread::sleep),
        }
    }

    /// The wait after the `refused`-th connection refused in a row (1-based).
    fn wait(&self, refused: u32) -> Duration {
        let doubled = self
            .first_wait
            .saturating_mul(2u32.saturating_pow(refused.saturating_sub(1)));
        doubled.min(self.max_wait)
    }
}

/// Makes a connection.
pub type Connect<C> = Box<dyn FnMut() -> Result<C, PgError> + Send>;

/// One connection and how to make it again.
pub struct Session<C> {
    conn: Option<C>,
    connect: Connect<C>,
    reconnect: Option<Reconnect>,
    /// Why the connection of a session that is not made again was lost.
    lost: Option<String>,
}

impl<C: Connection> Session<C> {
    /// A session on `conn`; `reconnect: None` for one that must not outlive its connection.
    pub fn new(conn: C, connect: Connect<C>, reconnect: Option<Reconnect>) -> Session<C> {
        Session {
            conn: Some(conn),
            connect,
            reconnect,
            lost: None,
        }
    }

    /// Runs `job` once (see the module's notes).
    pub fn once<R>(
        &mut self,
        job: impl FnOnce(&mut C) -> Result<R, PgError>,
    ) -> Result<R, PgError> {
        let mut failures = 0;
        let conn = self.connected(&mut failures)?;
        match job(conn) {
            Err(e) if conn.is_lost(&e) => {
                self.lose(&e);
                Err(e)
            }
            other => other,
        }
    }

    /// Runs `job`, again on a new connection each time the connection is lost during it, within
    /// the reconnect budget; `job`'s flag says an earlier run's answer was lost.
    pub fn repeatable<R>(
        &mut self,
        mut job: impl FnMut(&mut C, bool) -> Result<R, PgError>,
    ) -> Result<R, PgError> {
        let mut failures = 0;
        let mut answer_lost = false;
        loop {
            let conn = self.connected(&mut failures)?;
            match job(conn, answer_lost) {
                Err(e) if conn.is_lost(&e) => {
                    self.lose(&e);
                    let Some(policy) = self.reconnect.clone() else {
                        return Err(e);
                    };
                    failures += 1;
                    if failures > policy.tries {
                        return Err(PgError::GaveUp {
                            tries: policy.tries,
                            last: Box::new(e),
                        });
                    }
                    tracing::warn!(error = %e, "PostgreSQL connection lost during a statement; reconnecting to run it again");
                    answer_lost = true;
                }
                other => return other,
            }
        }
    }

    fn lose(&mut self, error: &PgError) {
        self.conn = None;
        self.lost = Some(error.to_string());
    }

    /// The connection, made again first when it was lost (if this session may).
    fn connected(&mut self, failures: &mut u32) -> Result<&mut C, PgError> {
        let mut refused = 0;
        while self.conn.is_none() {
            let Some(policy) = self.reconnect.clone() else {
                return Err(PgError::ConnectionLost(
                    self.lost.clone().unwrap_or_else(|| "closed".to_string()),
                ));
            };
            match (self.connect)() {
                Ok(conn) => {
                    tracing::info!("PostgreSQL connection made again");
                    self.conn = Some(conn);
                }
                Err(e) => {
                    *failures += 1;
                    if *failures > policy.tries {
                        return Err(PgError::GaveUp {
                            tries: policy.tries,
                            last: Box::new(e),
                        });
                    }
                    refused += 1;
                    let wait = policy.wait(refused);
                    tracing::warn!(error = %e, ?wait, "Could not reconnect to PostgreSQL; trying again");
                    (policy.sleep)(wait);
                }
            }
        }
        // The loop ends with a connection.
        self.conn.as_mut().ok_or(PgError::WorkerGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fake connection: a number, lost when a job says so.
    struct Fake(u32);

    impl Connection for Fake {
        fn is_lost(&self, error: &PgError) -> bool {
            matches!(error, PgError::ConnectionLost(why) if why == "dropped")
        }
    }

    fn dropped() -> PgError {
        PgError::ConnectionLost("dropped".into())
    }

    /// A session whose reconnects fail `refusals` times first; the waits it spent are recorded.
    fn session(
        refusals: u32,
        reconnect: bool,
    ) -> (Session<Fake>, Arc<Mutex<Vec<Duration>>>, Arc<AtomicU32>) {
        let waits = Arc::new(Mutex::new(Vec::new()));
        let made = Arc::new(AtomicU32::new(0));
        let refused = Arc::new(AtomicU32::new(0));
        let counter = made.clone();
        let connect: Connect<Fake> = Box::new(move || {
            if refused.fetch_add(1, Ordering::Relaxed) < refusals {
                return Err(PgError::Url("connection refused".into()));
            }
            Ok(Fake(counter.fetch_add(1, Ordering::Relaxed) + 1))
        });
        let recorder = waits.clone();
        let policy = Reconnect {
            tries: 4,
            first_wait: Duration::from_millis(100),
            max_wait: Duration::from_millis(300),
            sleep: Arc::new(move |d| recorder.lock().expect("waits").push(d)),
        };
        let session = Session::new(Fake(0), connect, reconnect.then_some(policy));
        (session, waits, made)
    }

    #[test]
    fn a_repeatable_job_runs_again_on_a_new_connection_told_its_answer_was_lost() {
        let (mut session, waits, _) = session(1, true);
        let mut runs = Vec::new();
        let got = session
            .repeatable(|conn, answer_lost| {
                runs.push((conn.0, answer_lost));
                if conn.0 == 0 {
                    Err(dropped())
                } else {
                    Ok("done")
                }
            })
            .expect("done on the new connection");
        assert_eq!(got, "done");
        // Connection 0 lost; one refused reconnect (a wait); connection 1 runs it, told.
        assert_eq!(runs, [(0, false), (1, true)]);
        assert_eq!(*waits.lock().expect("waits"), [Duration::from_millis(100)]);
    }

    #[test]
    fn reconnecting_gives_up_after_its_tries_with_growing_waits() {
        let (mut session, waits, _) = session(u32::MAX, true);
        let err = session
            .repeatable(|conn, _| {
                if conn.0 == 0 {
                    Err::<(), _>(dropped())
                } else {
                    Ok(())
                }
            })
            .expect_err("never reconnects");
        assert!(matches!(err, PgError::GaveUp { tries: 4, .. }), "{err}");
        assert!(err.to_string().contains("connection refused"), "{err}");
        // The loss counts as the first failure; three refused reconnects follow.
        let ms: Vec<u128> = waits
            .lock()
            .expect("waits")
            .iter()
            .map(Duration::as_millis)
            .collect();
        assert_eq!(ms, [100, 200, 300]);
    }

    #[test]
    fn a_once_job_is_not_run_again_but_the_next_call_reconnects_first() {
        let (mut session, _, made) = session(0, true);
        let mut runs = 0;
        let err = session
            .once(|_| {
                runs += 1;
                Err::<(), _>(dropped())
            })
            .expect_err("lost");
        assert!(matches!(err, PgError::ConnectionLost(_)));
        assert_eq!(runs, 1, "run once only");
        assert_eq!(session.once(|conn| Ok(conn.0)).expect("reconnected"), 1);
        assert_eq!(made.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_session_without_reconnect_stays_lost() {
        let (mut session, _, made) = session(0, false);
        assert!(session.once(|_| Err::<(), _>(dropped())).is_err());
        let err = session
            .repeatable(|conn, _| Ok(conn.0))
            .expect_err("stays lost");
        assert!(err.to_string().contains("dropped"), "{err}");
        assert_eq!(made.load(Ordering::Relaxed), 0, "never connected again");
    }
}
