//! Request accounting for `GET /_sandbox/stats`: what the pipeline asked, what it changed, what it hit.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by both emulators.
#[derive(Debug, Default)]
pub struct SandboxStats {
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    writes: AtomicU64,
    rate_limited: AtomicU64,
    faults: AtomicU64,
}

/// The JSON body of `GET /_sandbox/stats`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct StatsSnapshot {
    /// `"<METHOD> <route>"` → status → count.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Requests that changed state (a deduplicated replay does not count).
    pub writes: u64,
    /// Requests answered 429 by the rate limiter (injected 429 faults count as faults).
    pub rate_limited: u64,
    /// Faults injected.
    pub faults: u64,
    /// All requests answered.
    pub total_requests: u64,
}

impl SandboxStats {
    /// Counts one answered request by its route template and status.
    pub fn record(&self, method: &str, route: &str, status: u16) {
        let mut map = self.requests.lock().expect("stats lock poisoned");
        *map.entry(format!("{method} {route}"))
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    /// Counts a request that changed emulator state.
    pub fn record_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a 429 from the rate limiter.
    pub fn record_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an injected fault.
    pub fn record_fault(&self) {
        self.faults.fetch_add(1, Ordering::Relaxed);
    }

    /// Zeroes every counter (for measuring one phase of a test).
    pub fn reset(&self) {
        self.requests.lock().expect("stats lock poisoned").clear();
        self.writes.store(0, Ordering::Relaxed);
        self.rate_limited.store(0, Ordering::Relaxed);
        self.faults.store(0, Ordering::Relaxed);
    }

    /// A consistent copy for serialising.
    pub fn snapshot(&self) -> StatsSnapshot {
        let map = self.requests.lock().expect("stats lock poisoned");
        let mut total = 0;
        let requests = map
            .iter()
            .map(|(route, by_status)| {
                let inner = by_status
                    .iter()
                    .map(|(status, n)| {
                        total += n;
                        (status.to_string(), *n)
                    })
                    .collect();
                (route.clone(), inner)
            })
            .collect();
        StatsSnapshot {
            requests,
            writes: self.writes.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            faults: self.faults.load(Ordering::Relaxed),
            total_requests: total,
        }
    }
}
