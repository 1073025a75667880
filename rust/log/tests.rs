use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::record::SEGMENT_MAGIC;
use super::*;

const WAIT: Duration = Duration::from_secs(30);

fn payload(i: u64) -> Vec<u8> {
    format!("event-{i}-{}", "x".repeat((i % 37) as usize)).into_bytes()
}

fn read_all(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    let mut r = LogReader::new(dir);
    let mut out = Vec::new();
    loop {
        let after = out.last().map_or(0, |(p, _): &(u64, Vec<u8>)| *p);
        let batch = r.read(after, 7, 1 << 20).unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

fn write_n(dir: &Path, durability: Durability, seg: u64, from: u64, n: u64) -> LogWriter {
    let w = LogWriter::open(dir, durability, seg).unwrap();
    for i in from..from + n {
        w.append(&[payload(i)]).unwrap();
    }
    w
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    segment::path(dir, *segment::list(dir).unwrap().last().unwrap())
}

#[test]
fn positions_start_at_one_and_survive_reopen_across_rolls() {
    let tmp = tempfile::tempdir().unwrap();
    let w = write_n(tmp.path(), Durability::Fsync, 300, 1, 40);
    assert_eq!(w.wait_durable(40, WAIT).unwrap(), 40);
    assert!(w.stats().segments > 3, "small segments roll");
    drop(w);
    let w = LogWriter::open(tmp.path(), Durability::Fsync, 300).unwrap();
    assert_eq!(w.last_position(), 40);
    assert_eq!(w.append(&[b"next".as_slice()]).unwrap(), 41);
    w.close().unwrap();
    let all = read_all(tmp.path());
    assert_eq!(
        all.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=41).collect::<Vec<_>>()
    );
    assert_eq!(all[9].1, payload(10));
    assert_eq!(all[40].1, b"next");
}

#[test]
fn torn_tail_is_cut_on_open() {
    for garbage in [
        &b"\x05\x00"[..],
        &[0u8; 40][..],
        &b"\x10\x00\x00\x00garbagegarbagegarbagegarbage"[..],
    ] {
        let tmp = tempfile::tempdir().unwrap();
        write_n(tmp.path(), Durability::None, 1 << 20, 1, 10)
            .close()
            .unwrap();
        let seg = last_segment(tmp.path());
        let good_len = fs::metadata(&seg).unwrap().len();
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(garbage)
            .unwrap();
        let w = LogWriter::open(tmp.path(), Durability::Fsync, 1 << 20).unwrap();
        assert_eq!(w.stats().torn_bytes_cut, garbage.len() as u64);
        assert_eq!(fs::metadata(&seg).unwrap().len(), good_len);
        assert_eq!(w.append(&[b"after".as_slice()]).unwrap(), 11);
        w.close().unwrap();
        assert_eq!(read_all(tmp.path()).len(), 11);
    }
}

#[test]
fn a_record_cut_in_half_is_dropped_whole() {
    let tmp = tempfile::tempdir().unwrap();
    write_n(tmp.path(), Durability::None, 1 << 20, 1, 5)
        .close()
        .unwrap();
    let seg = last_segment(tmp.path());
    let len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let w = LogWriter::open(tmp.path(), Durability::None, 1 << 20).unwrap();
    assert_eq!(w.last_position(), 4);
    drop(w);
    assert_eq!(read_all(tmp.path()).len(), 4);
}

#[test]
fn a_flipped_byte_fails_the_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    write_n(tmp.path(), Durability::None, 1 << 20, 1, 3)
        .close()
        .unwrap();
    let seg = last_segment(tmp.path());
    let mut bytes = fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 0xff; // inside the payload of record 3
    fs::write(&seg, bytes).unwrap();
    let w = LogWriter::open(tmp.path(), Durability::None, 1 << 20).unwrap();
    assert_eq!(w.last_position(), 2);
}

#[test]
fn segment_after_a_lost_tail_is_dropped() {
    // A machine crash right after a roll: the older segment lost its tail, the new one has
    // records that never became durable. They cannot be reached and must go.
    let tmp = tempfile::tempdir().unwrap();
    write_n(tmp.path(), Durability::None, 200, 1, 12)
        .close()
        .unwrap();
    let segs = segment::list(tmp.path()).unwrap();
    let older = segment::path(tmp.path(), segs[segs.len() - 2]);
    let len = fs::metadata(&older).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&older)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let w = LogWriter::open(tmp.path(), Durability::None, 200).unwrap();
    assert_eq!(w.last_position(), segs[segs.len() - 1] - 2);
    assert_eq!(segment::list(tmp.path()).unwrap().len(), segs.len() - 1);
    assert_eq!(
        w.append(&[b"z".as_slice()]).unwrap(),
        segs[segs.len() - 1] - 1
    );
}

#[test]
fn reader_stops_at_the_durable_position() {
    let tmp = tempfile::tempdir().unwrap();
    write_n(tmp.path(), Durability::None, 1 << 20, 1, 10)
        .close()
        .unwrap();
    marker::Marker::open(tmp.path()).unwrap().store(6).unwrap();
    let mut r = LogReader::new(tmp.path());
    assert_eq!(r.last_position().unwrap(), 6);
    let got = r.read(0, 100, 1 << 20).unwrap();
    assert_eq!(got.len(), 6);
    assert!(r.read(6, 100, 1 << 20).unwrap().is_empty());
    marker::Marker::open(tmp.path()).unwrap().store(10).unwrap();
    let rest = r.read(6, 100, 1 << 20).unwrap();
    assert_eq!(
        rest.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![7, 8, 9, 10]
    );
}

#[test]
fn reader_limits_by_bytes_and_records_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    write_n(tmp.path(), Durability::None, 500, 1, 30)
        .close()
        .unwrap();
    let mut r = LogReader::new(tmp.path());
    assert_eq!(r.read(0, 3, 1 << 20).unwrap().len(), 3);
    let one = r.read(3, 100, 1).unwrap();
    assert_eq!(one.len(), 1, "at least one record even over max_bytes");
    assert_eq!(one[0].0, 4);
    let some = r.read(4, 100, 40).unwrap();
    assert!(!some.is_empty() && some.len() < 26);
    assert_eq!(some[0].0, 5);
    // Out-of-order reads work too (no cursor reuse).
    assert_eq!(r.read(20, 2, 1 << 20).unwrap()[0].0, 21);
    assert_eq!(r.read(1, 1, 1 << 20).unwrap()[0].0, 2);
}

#[test]
fn delete_segments_keeps_a_contiguous_suffix_and_the_active_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let w = write_n(tmp.path(), Durability::None, 300, 1, 40);
    let segs = segment::list(tmp.path()).unwrap();
    assert!(segs.len() > 3);
    // Too young: nothing goes.
    assert_eq!(
        w.delete_segments(u64::MAX, Duration::from_secs(3600))
            .unwrap(),
        0
    );
    // Only segments entirely <= the position go.
    let up_to = segs[2] - 1; // the end of the second segment
    assert_eq!(w.delete_segments(up_to, Duration::ZERO).unwrap(), 2);
    assert_eq!(w.stats().first_position, segs[2]);
    let mut r = LogReader::new(tmp.path());
    assert_eq!(
        r.read(0, 1, 1 << 20).unwrap()[0].0,
        segs[2],
        "a read before the oldest starts there"
    );
    // Everything archived: all but the active segment.
    assert_eq!(
        w.delete_segments(u64::MAX, Duration::ZERO).unwrap(),
        segs.len() - 3
    );
    assert_eq!(
        segment::list(tmp.path()).unwrap(),
        vec![*segs.last().unwrap()]
    );
    assert_eq!(w.append(&[b"more".as_slice()]).unwrap(), 41);
}

#[test]
fn concurrent_publishers_share_fsyncs() {
    let tmp = tempfile::tempdir().unwrap();
    let w = Arc::new(LogWriter::open(tmp.path(), Durability::Fsync, 1 << 20).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let w = Arc::clone(&w);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let pos = w.append(&[payload(t * 100 + i)]).unwrap();
                    assert!(w.wait_durable(pos, WAIT).unwrap() >= pos);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = w.stats();
    assert_eq!(stats.durable_position, 200);
    assert!(
        stats.fsyncs <= 200,
        "never more fsyncs than appends: {}",
        stats.fsyncs
    );
    assert_eq!(LogReader::new(tmp.path()).last_position().unwrap(), 200);
}

#[test]
fn interval_mode_fsyncs_in_the_background() {
    let tmp = tempfile::tempdir().unwrap();
    let w = write_n(
        tmp.path(),
        Durability::Interval(Duration::from_millis(5)),
        1 << 20,
        1,
        3,
    );
    assert_eq!(w.durable_position(), 3, "durable when written");
    // Readers see records only once the interval fsync covered them.
    let reader = LogReader::new(tmp.path());
    while reader.last_position().unwrap() < 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(w.stats().fsyncs >= 1);
    w.close().unwrap();
}

#[test]
fn an_empty_segment_after_a_roll_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    write_n(tmp.path(), Durability::None, 1 << 20, 1, 4)
        .close()
        .unwrap();
    // As if the writer crashed right after creating segment 5 (magic torn too).
    fs::write(segment::path(tmp.path(), 5), &SEGMENT_MAGIC[..3]).unwrap();
    let w = LogWriter::open(tmp.path(), Durability::None, 1 << 20).unwrap();
    assert_eq!(w.last_position(), 4);
    assert_eq!(w.append(&[b"e".as_slice()]).unwrap(), 5);
    drop(w);
    assert_eq!(read_all(tmp.path()).len(), 5);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Cut the log at any byte: reopening keeps exactly the records that were whole before the
    /// cut, and appending continues right after them.
    #[test]
    fn any_cut_keeps_a_whole_prefix(sizes in prop::collection::vec(0usize..200, 1..30), cut_frac in 0.0f64..1.0) {
        let tmp = tempfile::tempdir().unwrap();
        let w = LogWriter::open(tmp.path(), Durability::None, 1 << 20).unwrap();
        let payloads: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, n)| vec![i as u8; *n]).collect();
        w.append(&payloads).unwrap();
        w.close().unwrap();
        drop(w);
        let seg = last_segment(tmp.path());
        let len = fs::metadata(&seg).unwrap().len();
        let cut = SEGMENT_MAGIC.len() as u64 + ((len - SEGMENT_MAGIC.len() as u64) as f64 * cut_frac) as u64;
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();
        let mut whole = 0u64;
        let mut end = SEGMENT_MAGIC.len() as u64;
        for p in &payloads {
            end += record::encoded_len(p);
            if end <= cut { whole += 1; }
        }
        let w = LogWriter::open(tmp.path(), Durability::None, 1 << 20).unwrap();
        prop_assert_eq!(w.last_position(), whole);
        prop_assert_eq!(w.append(&[b"tail".as_slice()]).unwrap(), whole + 1);
        drop(w);
        let all = read_all(tmp.path());
        prop_assert_eq!(all.len() as u64, whole + 1);
        for (i, (pos, data)) in all.iter().take(whole as usize).enumerate() {
            prop_assert_eq!(*pos, i as u64 + 1);
            prop_assert_eq!(data, &payloads[i]);
        }
    }
}

#[test]
fn one_writer_per_log() {
    let tmp = tempfile::tempdir().unwrap();
    let w = LogWriter::open(tmp.path(), Durability::None, 1 << 20).unwrap();
    let err = LogWriter::open(tmp.path(), Durability::None, 1 << 20)
        .err()
        .unwrap();
    assert!(err.to_string().contains("another writer"), "{err}");
    w.close().unwrap();
    LogWriter::open(tmp.path(), Durability::None, 1 << 20).unwrap();
}

#[test]
fn a_segment_of_another_format_is_refused_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let path = segment::path(tmp.path(), 1);
    fs::write(&path, b"UELOG\0\0\x09 some future format").unwrap();
    let err = LogWriter::open(tmp.path(), Durability::None, 1 << 20)
        .err()
        .unwrap();
    assert!(err.to_string().contains("format version"), "{err}");
    assert_eq!(
        fs::read(&path).unwrap(),
        b"UELOG\0\0\x09 some future format"
    );
}

#[test]
fn fsync_mode_queued_writes_lay_out_segments_as_direct_writes() {
    // Under `Fsync` the committer writes what `append` queued; the rolls must fall where direct
    // writes (`None`) put them, batch boundaries included.
    let (queued, direct) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, durability) in [(&queued, Durability::Fsync), (&direct, Durability::None)] {
        let w = LogWriter::open(dir.path(), durability, 250).unwrap();
        let mut i = 0;
        for batch in [1, 7, 3, 12, 1, 5] {
            let payloads: Vec<Vec<u8>> = (0..batch)
                .map(|_| {
                    i += 1;
                    payload(i)
                })
                .collect();
            let last = w.append(&payloads).unwrap();
            assert_eq!(last, i);
        }
        assert_eq!(w.wait_durable(i, WAIT).unwrap(), i);
        w.close().unwrap();
    }
    let files = |dir: &Path| -> Vec<(u64, Vec<u8>)> {
        segment::list(dir)
            .unwrap()
            .into_iter()
            .map(|f| (f, fs::read(segment::path(dir, f)).unwrap()))
            .collect()
    };
    assert!(files(queued.path()).len() > 3);
    assert_eq!(files(queued.path()), files(direct.path()));
}
