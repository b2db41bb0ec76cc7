//! The durable spool: webhook events appended to segment files in `STATE/spool/`, acknowledged only
//! once fsynced, read back in order by consumers that commit their own offsets.
//!
//! Over 600 lines because the segment format, its writer thread and its reader share invariants
//! (record layout, torn-tail rule, pruning by committed offsets) that stay private to this file.
//!
//! Record format, little-endian: `len: u32 | crc32(payload): u32 | payload` where the payload is a
//! JSON [`SpooledEvent`]. A record whose header or payload is short, or whose checksum differs, is a
//! torn write: only the tail of the last segment can hold one (it was never acknowledged, since acks
//! follow the fsync), and opening the spool for writing truncates it away.
//!
//! One writer thread owns the files. Requests reach it through a channel; it takes everything that
//! is waiting, writes it as one batch, fsyncs once and then answers every request of the batch (group
//! commit), so many concurrent requests cost one fsync.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

/// Where the spool lives under a state directory.
pub fn spool_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("spool")
}

const HEADER_LEN: usize = 8;
const SEGMENT_SUFFIX: &str = ".seg";
/// Largest batch written with one fsync.
const MAX_BATCH: usize = 4096;
/// How often the writer deletes segments every consumer has read past.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Requests waiting for the writer before senders queue up behind the channel.
const CHANNEL_CAPACITY: usize = 8192;

/// Errors of the spool's files.
#[derive(Debug, Error)]
pub enum SpoolError {
    #[error("spool I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spool segment {path} is corrupt at byte {offset} (not its tail): {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("another contactsync serve holds {0}")]
    Locked(PathBuf),
    #[error("invalid consumer name {0:?}: use letters, digits, '-' and '_'")]
    ConsumerName(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Which service sent an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventSource {
    Ghl,
    Bulksms,
}

/// One event as stored, in the order it was acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpooledEvent {
    /// Position in the spool: 0, 1, 2, ... with no gaps.
    pub seq: u64,
    pub source: EventSource,
    /// Deduplication key (GHL's `webhookId`); none for BulkSMS, whose duplicates are normal and
    /// harmless (a status report repeats a status).
    pub key: Option<String>,
    /// When the receiver stored it, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// The request body exactly as received (verified JSON).
    pub body: String,
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub source: EventSource,
    pub key: Option<String>,
    pub received_at_ms: i64,
    pub body: String,
}

/// What became of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Written and fsynced at this position.
    Stored { seq: u64 },
    /// Its key is already in the spool (stored earlier, possibly before a restart).
    Duplicate,
    /// The spool is over its size limit, draining, or could not write: try again later.
    Unavailable,
}

/// Limits of the spool.
#[derive(Debug, Clone)]
pub struct SpoolLimits {
    /// Total bytes of segment files above which appends are refused.
    pub max_bytes: u64,
    /// A new segment is started once the current one reaches this size.
    pub segment_bytes: u64,
    /// How long a key is remembered for deduplication, in milliseconds of `received_at_ms`.
    pub dedup_retention_ms: i64,
    /// Most keys remembered (the oldest are forgotten first).
    pub dedup_max_keys: usize,
}

impl Default for SpoolLimits {
    fn default() -> Self {
        SpoolLimits {
            max_bytes: 1 << 30,
            segment_bytes: 64 << 20,
            dedup_retention_ms: 24 * 3600 * 1000,
            dedup_max_keys: 1_000_000,
        }
    }
}

struct AppendRequest {
    event: NewEvent,
    ack: oneshot::Sender<AppendOutcome>,
}

/// The writing end of the spool; cheap to clone, shared by every request handler.
#[derive(Clone)]
pub struct SpoolWriter {
    tx: mpsc::Sender<AppendRequest>,
    bytes: Arc<AtomicU64>,
    max_bytes: u64,
    draining: Arc<AtomicBool>,
}

/// Keeps the writer thread; dropping every [`SpoolWriter`] and then calling [`SpoolHandle::join`]
/// flushes and stops it.
pub struct SpoolHandle {
    thread: std::thread::JoinHandle<()>,
}

impl SpoolHandle {
    /// Waits for the writer thread to finish (after every writer was dropped).
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("Spool writer thread panicked");
        }
    }
}

impl SpoolWriter {
    /// Opens (or creates) the spool, drops a torn tail, rebuilds the deduplication keys from the
    /// segments present, and starts the writer thread.
    pub fn open(dir: &Path, limits: SpoolLimits) -> Result<(SpoolWriter, SpoolHandle), SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        // One writer per spool: two would interleave records and sequence numbers.
        let lock_path = dir.join("writer.lock");
        let lock = File::create(&lock_path).map_err(io_err(&lock_path))?;
        fs2::FileExt::try_lock_exclusive(&lock).map_err(|_| SpoolError::Locked(lock_path))?;
        let mut state = WriterState::recover(dir, limits.clone())?;
        state.prune_consumed(&AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(state.total_bytes));
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let thread_bytes = bytes.clone();
        let thread = std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || {
                state.run(rx, &thread_bytes);
                drop(lock);
            })
            .map_err(io_err(dir))?;
        Ok((
            SpoolWriter {
                tx,
                bytes,
                max_bytes: limits.max_bytes,
                draining: Arc::new(AtomicBool::new(false)),
            },
            SpoolHandle { thread },
        ))
    }

    /// Refuse new appends from now on (shutdown): they answer [`AppendOutcome::Unavailable`].
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether appends are refused for now (draining or over the size limit).
    pub fn is_refusing(&self) -> bool {
        self.draining.load(Ordering::SeqCst) || self.bytes.load(Ordering::Relaxed) >= self.max_bytes
    }

    /// Appends one event and waits until it is durable (or refused).
    pub async fn append(&self, event: NewEvent) -> AppendOutcome {
        if self.is_refusing() {
            return AppendOutcome::Unavailable;
        }
        let (ack, answer) = oneshot::channel();
        if self.tx.send(AppendRequest { event, ack }).await.is_err() {
            return AppendOutcome::Unavailable;
        }
        answer.await.unwrap_or(AppendOutcome::Unavailable)
    }
}

struct Segment {
    first_seq: u64,
    path: PathBuf,
    len: u64,
}

struct WriterState {
    dir: PathBuf,
    limits: SpoolLimits,
    segments: Vec<Segment>,
    file: Option<File>,
    next_seq: u64,
    total_bytes: u64,
    keys: HashMap<String, i64>,
    key_order: VecDeque<(String, i64)>,
    broken: bool,
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_SUFFIX}")
}

fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SEGMENT_SUFFIX)) else {
            continue;
        };
        if let Ok(first) = stem.parse::<u64>() {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The records of one segment's bytes, and where the valid part ends (with why it ended early).
fn parse_records(data: &[u8]) -> (Vec<SpooledEvent>, usize, Option<String>) {
    let mut events = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let Some(header) = data.get(pos..pos + HEADER_LEN) else {
            return (events, pos, Some("short record header".into()));
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let Some(payload) = data.get(pos + HEADER_LEN..pos + HEADER_LEN + len) else {
            return (events, pos, Some("short record payload".into()));
        };
        if crc32fast::hash(payload) != crc {
            return (events, pos, Some("checksum mismatch".into()));
        }
        match serde_json::from_slice::<SpooledEvent>(payload) {
            Ok(event) => events.push(event),
            Err(e) => return (events, pos, Some(format!("undecodable record: {e}"))),
        }
        pos += HEADER_LEN + len;
    }
    (events, pos, None)
}

fn encode_record(event: &SpooledEvent, out: &mut Vec<u8>) {
    let payload = serde_json::to_vec(event).unwrap_or_default();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl WriterState {
    fn recover(dir: &Path, limits: SpoolLimits) -> Result<WriterState, SpoolError> {
        let listed = list_segments(dir)?;
        let mut state = WriterState {
            dir: dir.to_path_buf(),
            limits,
            segments: Vec::new(),
            file: None,
            next_seq: 0,
            total_bytes: 0,
            keys: HashMap::new(),
            key_order: VecDeque::new(),
            broken: false,
        };
        let count = listed.len();
        for (index, (first_seq, path)) in listed.into_iter().enumerate() {
            let data = std::fs::read(&path).map_err(io_err(&path))?;
            let (events, valid_len, problem) = parse_records(&data);
            if let Some(reason) = problem {
                if index + 1 < count {
                    return Err(SpoolError::Corrupt {
                        path,
                        offset: valid_len as u64,
                        reason,
                    });
                }
                tracing::warn!(
                    segment = %path.display(),
                    dropped_bytes = data.len() - valid_len,
                    reason,
                    "Dropping the torn tail of the spool (never acknowledged)"
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                file.set_len(valid_len as u64).map_err(io_err(&path))?;
                file.sync_all().map_err(io_err(&path))?;
            }
            if index == 0 {
                state.next_seq = first_seq;
            }
            for event in events {
                if event.seq != state.next_seq {
                    return Err(SpoolError::Corrupt {
                        path,
                        offset: 0,
                        reason: format!("sequence {} where {} was due", event.seq, state.next_seq),
                    });
                }
                state.next_seq += 1;
                if let Some(key) = event.key {
                    state.remember(key, event.received_at_ms);
                }
            }
            state.total_bytes += valid_len as u64;
            state.segments.push(Segment {
                first_seq,
                path,
                len: valid_len as u64,
            });
        }
        if let Some(last) = state.segments.last() {
            let file = OpenOptions::new()
                .append(true)
                .open(&last.path)
                .map_err(io_err(&last.path))?;
            state.file = Some(file);
        }
        Ok(state)
    }

    fn remember(&mut self, key: String, at_ms: i64) {
        self.keys.insert(key.clone(), at_ms);
        self.key_order.push_back((key, at_ms));
        while self.key_order.len() > self.limits.dedup_max_keys {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((key, at)) = self.key_order.pop_front()
            && self.keys.get(&key) == Some(&at)
        {
            self.keys.remove(&key);
        }
    }

    fn prune_keys(&mut self, now_ms: i64) {
        while let Some((_, at)) = self.key_order.front() {
            if now_ms - *at <= self.limits.dedup_retention_ms {
                break;
            }
            self.forget_oldest();
        }
    }

    /// Starts a new segment, named after the first sequence number it will hold, when there is
    /// none or the current one is full.
    fn ensure_segment(&mut self, first_seq: u64) -> Result<(), SpoolError> {
        let need_new = match self.segments.last() {
            None => true,
            Some(last) => last.len >= self.limits.segment_bytes,
        };
        if !need_new {
            return Ok(());
        }
        let path = self.dir.join(segment_name(first_seq));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        // The new file's name must survive a crash too, or its records would vanish with it.
        sync_dir(&self.dir)?;
        self.segments.push(Segment {
            first_seq,
            path,
            len: 0,
        });
        self.file = Some(file);
        Ok(())
    }

    fn write_batch(&mut self, first_seq: u64, buf: &[u8]) -> Result<(), SpoolError> {
        self.ensure_segment(first_seq)?;
        let segment = self.segments.last_mut().expect("ensure_segment made one");
        let file = self.file.as_mut().expect("ensure_segment opened it");
        let result = file.write_all(buf).and_then(|()| file.sync_data());
        if let Err(source) = result {
            // Take the partial batch back out so the file holds only acknowledged records.
            let _ = file.set_len(segment.len);
            let _ = file.seek(SeekFrom::End(0));
            return Err(SpoolError::Io {
                path: segment.path.clone(),
                source,
            });
        }
        segment.len += buf.len() as u64;
        Ok(())
    }

    /// Deletes segments every consumer has read past (all of them: none is deleted while no
    /// consumer has committed), never the one being written. The webhookIds they held stay
    /// remembered until restart; after one, a replay of such an old event is caught by the
    /// timestamp window and, past that, by the ledger's idempotency keys.
    fn prune_consumed(&mut self, bytes: &AtomicU64) {
        let consumed = match consumed_by_all(&self.dir) {
            Ok(Some(consumed)) => consumed,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read spool consumer offsets; keeping segments");
                return;
            }
        };
        while self.segments.len() > 1 && self.segments[1].first_seq <= consumed {
            let segment = self.segments.remove(0);
            if let Err(e) = std::fs::remove_file(&segment.path) {
                tracing::warn!(segment = %segment.path.display(), error = %e, "Cannot delete a consumed spool segment");
                self.segments.insert(0, segment);
                return;
            }
            self.total_bytes -= segment.len;
        }
        bytes.store(self.total_bytes, Ordering::Relaxed);
    }

    fn run(mut self, mut rx: mpsc::Receiver<AppendRequest>, bytes: &AtomicU64) {
        let mut last_prune = std::time::Instant::now();
        let mut batch: Vec<AppendRequest> = Vec::with_capacity(MAX_BATCH);
        let mut buf = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            if last_prune.elapsed() >= PRUNE_EVERY {
                self.prune_consumed(bytes);
                last_prune = std::time::Instant::now();
            }
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            buf.clear();
            let seq_before = self.next_seq;
            let mut outcomes = Vec::with_capacity(batch.len());
            let mut new_keys: Vec<String> = Vec::new();
            // Retention runs on the receiver's clock (the events' own stamps), not the system's.
            if let Some(newest) = batch.iter().map(|r| r.event.received_at_ms).max() {
                self.prune_keys(newest);
            }
            for request in &batch {
                let event = &request.event;
                if let Some(key) = &event.key
                    && (self.keys.contains_key(key) || new_keys.contains(key))
                {
                    outcomes.push(AppendOutcome::Duplicate);
                    continue;
                }
                if self.broken || self.total_bytes + buf.len() as u64 >= self.limits.max_bytes {
                    outcomes.push(AppendOutcome::Unavailable);
                    continue;
                }
                let stored = SpooledEvent {
                    seq: self.next_seq,
                    source: event.source,
                    key: event.key.clone(),
                    received_at_ms: event.received_at_ms,
                    body: event.body.clone(),
                };
                encode_record(&stored, &mut buf);
                outcomes.push(AppendOutcome::Stored { seq: self.next_seq });
                self.next_seq += 1;
                if let Some(key) = &event.key {
                    new_keys.push(key.clone());
                }
            }
            if !buf.is_empty() {
                match self.write_batch(seq_before, &buf) {
                    Ok(()) => {
                        self.total_bytes += buf.len() as u64;
                        bytes.store(self.total_bytes, Ordering::Relaxed);
                        for (request, outcome) in batch.iter().zip(&outcomes) {
                            if let (Some(key), AppendOutcome::Stored { .. }) =
                                (&request.event.key, outcome)
                            {
                                self.remember(key.clone(), request.event.received_at_ms);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "Spool write failed; refusing events until restart");
                        self.broken = true;
                        self.next_seq = seq_before;
                        for outcome in &mut outcomes {
                            if matches!(outcome, AppendOutcome::Stored { .. }) {
                                *outcome = AppendOutcome::Unavailable;
                            }
                        }
                    }
                }
            }
            for (request, outcome) in batch.drain(..).zip(outcomes) {
                // A handler that gave up waiting is gone; its event is stored all the same.
                let _ = request.ack.send(outcome);
            }
        }
    }
}

/// The lowest offset committed by any consumer (`*.offset` files), or None when there is none.
fn consumed_by_all(dir: &Path) -> Result<Option<u64>, SpoolError> {
    let mut lowest: Option<u64> = None;
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(consumer) = name.to_str().and_then(|n| n.strip_suffix(".offset")) else {
            continue;
        };
        let reader = SpoolReader {
            dir: dir.to_path_buf(),
        };
        let offset = reader.committed(consumer)?;
        lowest = Some(lowest.map_or(offset, |l| l.min(offset)));
    }
    Ok(lowest)
}

/// Reads the spool in order, for consumers (the micro-batcher, the nightly run). Each consumer
/// commits how far it got under its own name; reading never changes the spool.
pub struct SpoolReader {
    dir: PathBuf,
}

impl SpoolReader {
    /// A reader of the spool under a state directory (which may not exist yet: then it is empty).
    pub fn new(state_dir: &Path) -> SpoolReader {
        SpoolReader {
            dir: spool_dir(state_dir),
        }
    }

    /// Up to `max` events with `seq >= from`, in order. A torn or still-being-written tail is not
    /// returned (it was never acknowledged). Corruption before the tail is an error.
    pub fn read_from(&self, from: u64, max: usize) -> Result<Vec<SpooledEvent>, SpoolError> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let segments = list_segments(&self.dir)?;
        let mut out = Vec::new();
        for (index, (_, path)) in segments.iter().enumerate() {
            let next_first = segments.get(index + 1).map(|(s, _)| *s);
            if next_first.is_some_and(|next| next <= from) {
                continue;
            }
            let mut data = Vec::new();
            File::open(path)
                .and_then(|mut f| f.read_to_end(&mut data))
                .map_err(io_err(path))?;
            let (events, valid_len, problem) = parse_records(&data);
            if let Some(reason) = problem
                && next_first.is_some()
            {
                return Err(SpoolError::Corrupt {
                    path: path.clone(),
                    offset: valid_len as u64,
                    reason,
                });
            }
            for event in events.into_iter().filter(|e| e.seq >= from) {
                out.push(event);
                if out.len() >= max {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    fn offset_path(&self, consumer: &str) -> Result<PathBuf, SpoolError> {
        let valid = !consumer.is_empty()
            && consumer
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(SpoolError::ConsumerName(consumer.to_string()));
        }
        Ok(self.dir.join(format!("{consumer}.offset")))
    }

    /// The next `seq` this consumer has not yet processed (0 when it never committed).
    pub fn committed(&self, consumer: &str) -> Result<u64, SpoolError> {
        let path = self.offset_path(consumer)?;
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|e| SpoolError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason: format!("not an offset: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(source) => Err(SpoolError::Io { path, source }),
        }
    }

    /// Records durably that this consumer has processed every event below `next_seq`
    /// (written to a temporary file, fsynced and renamed over the old offset).
    pub fn commit(&self, consumer: &str, next_seq: u64) -> Result<(), SpoolError> {
        let path = self.offset_path(consumer)?;
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let tmp = self.dir.join(format!("{consumer}.offset.tmp"));
        let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
        file.write_all(format!("{next_seq}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests;
