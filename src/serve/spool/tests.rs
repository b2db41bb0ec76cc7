//! Unit tests of `spool`.

use super::*;

fn event(key: Option<&str>, body: &str) -> NewEvent {
    NewEvent {
        source: EventSource::Ghl,
        key: key.map(str::to_string),
        received_at_ms: chrono::Utc::now().timestamp_millis(),
        body: body.to_string(),
    }
}

#[tokio::test]
async fn appends_dedupes_and_reads_back_in_order_across_reopen() {
    let state = tempfile::tempdir().expect("tempdir");
    let dir = spool_dir(state.path());
    let (writer, handle) = SpoolWriter::open(&dir, SpoolLimits::default()).expect("open");
    assert_eq!(
        writer.append(event(Some("a"), "{}")).await,
        AppendOutcome::Stored { seq: 0 }
    );
    assert_eq!(
        writer.append(event(Some("b"), "{\"x\":1}")).await,
        AppendOutcome::Stored { seq: 1 }
    );
    assert_eq!(
        writer.append(event(Some("a"), "{}")).await,
        AppendOutcome::Duplicate
    );
    drop(writer);
    handle.join();
    let (writer, handle) = SpoolWriter::open(&dir, SpoolLimits::default()).expect("reopen");
    assert_eq!(
        writer.append(event(Some("b"), "{}")).await,
        AppendOutcome::Duplicate,
        "keys survive a restart"
    );
    assert_eq!(
        writer.append(event(None, "[]")).await,
        AppendOutcome::Stored { seq: 2 }
    );
    drop(writer);
    handle.join();
    let reader = SpoolReader::new(state.path());
    let all = reader.read_from(0, 100).expect("read");
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(all[1].body, "{\"x\":1}");
    assert_eq!(reader.read_from(2, 100).expect("read")[0].body, "[]");
    assert_eq!(reader.committed("batcher").expect("none yet"), 0);
    reader.commit("batcher", 2).expect("commit");
    assert_eq!(reader.committed("batcher").expect("committed"), 2);
    assert!(reader.commit("../x", 1).is_err());
}

#[tokio::test]
async fn a_torn_tail_is_dropped_on_reopen_and_appends_continue() {
    let state = tempfile::tempdir().expect("tempdir");
    let dir = spool_dir(state.path());
    let (writer, handle) = SpoolWriter::open(&dir, SpoolLimits::default()).expect("open");
    writer.append(event(Some("a"), "{}")).await;
    writer.append(event(Some("b"), "{}")).await;
    drop(writer);
    handle.join();
    let segment = list_segments(&dir).expect("list")[0].1.clone();
    let full = std::fs::read(&segment).expect("read");
    // A third record cut half way, as kill -9 in the middle of a write leaves it.
    let mut torn = Vec::new();
    encode_record(
        &SpooledEvent {
            seq: 2,
            source: EventSource::Ghl,
            key: Some("c".into()),
            received_at_ms: 0,
            body: "{\"long\":\"xxxxxxxxxxxxxxxx\"}".into(),
        },
        &mut torn,
    );
    let mut data = full.clone();
    data.extend_from_slice(&torn[..torn.len() / 2]);
    std::fs::write(&segment, &data).expect("write");
    assert_eq!(
        SpoolReader::new(state.path())
            .read_from(0, 10)
            .expect("a reader skips the torn tail")
            .len(),
        2
    );
    let (writer, handle) = SpoolWriter::open(&dir, SpoolLimits::default()).expect("reopen");
    assert_eq!(
        std::fs::metadata(&segment).expect("meta").len(),
        full.len() as u64
    );
    assert_eq!(
        writer.append(event(Some("c"), "{}")).await,
        AppendOutcome::Stored { seq: 2 },
        "the torn event was never acknowledged, so it is not a duplicate"
    );
    drop(writer);
    handle.join();
    assert_eq!(
        SpoolReader::new(state.path())
            .read_from(0, 10)
            .expect("read")
            .len(),
        3
    );
}

#[tokio::test]
async fn over_the_size_limit_appends_are_refused_and_segments_rotate() {
    let state = tempfile::tempdir().expect("tempdir");
    let dir = spool_dir(state.path());
    let limits = SpoolLimits {
        max_bytes: 400,
        segment_bytes: 100,
        ..SpoolLimits::default()
    };
    let (writer, handle) = SpoolWriter::open(&dir, limits).expect("open");
    let mut stored = 0;
    for i in 0..20 {
        match writer.append(event(Some(&format!("k{i}")), "{}")).await {
            AppendOutcome::Stored { .. } => stored += 1,
            AppendOutcome::Unavailable => break,
            AppendOutcome::Duplicate => panic!("unique keys"),
        }
    }
    assert!((2..20).contains(&stored), "stored {stored}");
    assert!(writer.is_refusing());
    drop(writer);
    handle.join();
    let segments = list_segments(&dir).expect("list");
    assert!(segments.len() >= 2);
    let events = SpoolReader::new(state.path())
        .read_from(1, 100)
        .expect("read");
    assert_eq!(events.len(), stored - 1);
    assert_eq!(events[0].seq, 1);

    // A consumer that read past the first segment frees it (and so room) on the next open.
    let reader = SpoolReader::new(state.path());
    reader.commit("batcher", segments[1].0).expect("commit");
    let (writer, handle) = SpoolWriter::open(&dir, limits_small()).expect("reopen");
    assert!(
        !writer.is_refusing(),
        "room again after the consumed segment went"
    );
    drop(writer);
    handle.join();
    let left = list_segments(&dir).expect("list");
    assert_eq!(left.len(), segments.len() - 1);
    assert_eq!(left[0].0, segments[1].0);
    assert_eq!(
        reader.read_from(0, 100).expect("read")[0].seq,
        segments[1].0,
        "reading from an offset before the oldest segment starts at the oldest kept"
    );
}

fn limits_small() -> SpoolLimits {
    SpoolLimits {
        max_bytes: 400,
        segment_bytes: 100,
        ..SpoolLimits::default()
    }
}
