//! The single writer: appends, segment rolls, torn-tail recovery and group commit.
//!
//! `append` writes records to the active segment (no fsync) and returns the last position.
//! Durability is a separate step so the caller can wait without holding anything:
//! - `Fsync`: `append` only encodes the records and queues them; the committer thread writes
//!   whatever was queued since its last round, fsyncs it and then advances the durable
//!   position. (The appending thread is an event loop: a `write` into the page an fsync is
//!   writing back waits for that I/O, and nothing is acknowledged before the fsync anyway.) Publishers that arrive while an fsync runs are covered by
//!   the next one: concurrent publishers share fsyncs (group commit). `wait_durable` blocks until
//!   a position is covered.
//! - `Interval(d)`: the committer fsyncs every `d`; positions count as durable (acknowledged)
//!   when written. A crash of the machine (not of the process: the page cache survives that)
//!   can lose the last `d` of acknowledged records. Readers (`durable.pos`) see only fsynced
//!   records, so they never take one that can still be lost.
//! - `None`: never fsync (except on close); durable and visible to readers when written. The OS
//!   decides what survives a machine crash; after one, positions a reader already took can be
//!   reused by new records.
//!
//! An I/O error poisons the writer: every waiter and every later append fails, because bytes
//! after a failed write or fsync cannot be trusted. Reopening (restart) recovers the log.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::marker::{self, Marker};
use super::record::{self, Scanner, SEGMENT_MAGIC};
use super::segment;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Fsync,
    Interval(Duration),
    None,
}

#[derive(Debug, Clone, Default)]
pub struct LogStats {
    pub last_position: u64,
    pub durable_position: u64,
    pub first_position: u64,
    pub segments: u64,
    pub bytes_on_disk: u64,
    pub fsyncs: u64,
    pub fsync_total_us: u64,
    pub fsync_last_us: u64,
    pub fsync_max_us: u64,
    /// Bytes cut off the tail when the log was opened.
    pub torn_bytes_cut: u64,
}

struct State {
    active: Arc<File>,
    active_first: u64,
    active_len: u64,
    /// Position of the last record written (0 = none yet).
    written: u64,
    /// Position of the last durable record.
    durable: u64,
    /// Position of the last fsynced record (== durable under `Fsync`).
    synced: u64,
    /// Rolled segments not fsynced yet, and whether the directory needs an fsync.
    unsynced: Vec<Arc<File>>,
    dir_dirty: bool,
    error: Option<String>,
    closing: bool,
    segments: Vec<u64>,
    stats: LogStats,
    buf: Vec<u8>,
    /// `Fsync` only: records appended and not written yet, in order (see `queue_locked`).
    pending: Vec<Pending>,
    /// `Fsync` only: what `active_len` will be once `pending` is written (roll decisions).
    planned_len: u64,
    /// Written buffers of `pending` chunks, kept for reuse (no allocation per append).
    spare: Vec<Vec<u8>>,
}

/// Encoded records waiting for the committer; `roll_to`: first start a new segment whose first
/// record is this position.
struct Pending {
    roll_to: Option<u64>,
    bytes: Vec<u8>,
}

struct Shared {
    dir: PathBuf,
    durability: Durability,
    segment_bytes: u64,
    state: Mutex<State>,
    /// Signalled on append and close (the committer waits on it).
    written_cv: Condvar,
    /// Signalled when `durable` advances or the writer fails (waiters wait on it).
    durable_cv: Condvar,
    marker: Marker,
    /// An eventfd (or non-blocking pipe) the committer writes to after each advance of the
    /// durable position or a failure, so an event loop can wait with epoll and no thread of its
    /// own; -1 when unset. Owned by whoever set it; it must stay open until `close` returns.
    notify_fd: AtomicI32,
    /// `writer.lock`, locked while this writer is open: one writer per log, across processes.
    lock: Mutex<Option<File>>,
}

pub struct LogWriter {
    shared: Arc<Shared>,
    committer: Mutex<Option<JoinHandle<()>>>,
}

fn poisoned(msg: &str) -> io::Error {
    io::Error::other(format!(
        "the log writer failed earlier and accepts nothing more: {msg}"
    ))
}

impl LogWriter {
    /// Open (or create) the log in `dir`, cutting a torn tail, and start the committer.
    pub fn open(dir: &Path, durability: Durability, segment_bytes: u64) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        let (segments, written, torn) = recover(dir)?;
        let active_first = *segments.last().unwrap();
        let active_path = segment::path(dir, active_first);
        let active = OpenOptions::new().append(true).open(&active_path)?;
        let active_len = active.metadata()?.len();
        // What a crashed process left in the page cache may not be on disk yet: make it so
        // before readers may see it (only the last two segments can hold unsynced bytes).
        for first in segments.iter().rev().take(2) {
            File::open(segment::path(dir, *first))?.sync_all()?;
        }
        segment::sync_dir(dir)?;
        let marker = Marker::open(dir)?;
        marker.store(written)?;
        let mut bytes_on_disk = 0;
        for first in &segments {
            bytes_on_disk += fs::metadata(segment::path(dir, *first))?.len();
        }
        let stats = LogStats {
            torn_bytes_cut: torn,
            bytes_on_disk,
            ..LogStats::default()
        };
        let state = State {
            active: Arc::new(active),
            active_first,
            active_len,
            written,
            durable: written,
            synced: written,
            unsynced: Vec::new(),
            dir_dirty: false,
            error: None,
            closing: false,
            segments,
            stats,
            buf: Vec::new(),
            pending: Vec::new(),
            planned_len: active_len,
            spare: Vec::new(),
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            durability,
            segment_bytes: segment_bytes.max(1),
            state: Mutex::new(state),
            written_cv: Condvar::new(),
            durable_cv: Condvar::new(),
            marker,
            notify_fd: AtomicI32::new(-1),
            lock: Mutex::new(Some(lock)),
        });
        let committer = match durability {
            Durability::None => None,
            _ => {
                let s = Arc::clone(&shared);
                Some(
                    std::thread::Builder::new()
                        .name("ue-log-commit".into())
                        .spawn(move || committer(&s))?,
                )
            }
        };
        Ok(Self {
            shared,
            committer: Mutex::new(committer),
        })
    }

    pub fn durability(&self) -> Durability {
        self.shared.durability
    }

    /// Write `payloads` as consecutive records; returns the position of the last one.
    /// Not durable yet under `Fsync`: see `wait_durable`.
    pub fn append<P: AsRef<[u8]>>(&self, payloads: &[P]) -> io::Result<u64> {
        let sh = &*self.shared;
        let mut st = sh.lock();
        if let Some(msg) = &st.error {
            return Err(poisoned(msg));
        }
        if st.closing {
            return Err(io::Error::other("the log is closed"));
        }
        if payloads.is_empty() {
            return Ok(st.written);
        }
        for p in payloads {
            if p.as_ref().len() > record::MAX_PAYLOAD {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "record larger than 256 MiB",
                ));
            }
        }
        if sh.durability == Durability::Fsync {
            queue_locked(sh, &mut st, payloads);
            sh.written_cv.notify_one();
            return Ok(st.written);
        }
        if let Err(e) = append_locked(sh, &mut st, payloads) {
            st.error = Some(e.to_string());
            // Fail every waiter now (earlier appends included), and let the committer exit.
            sh.durable_cv.notify_all();
            sh.written_cv.notify_all();
            drop(st);
            sh.notify();
            return Err(e);
        }
        if sh.durability != Durability::Fsync {
            st.durable = st.written;
            sh.durable_cv.notify_all();
        }
        if sh.durability == Durability::None {
            // Never fsynced: readers see records once written. (Under `Interval` they see only
            // fsynced ones, so an archiver never takes a record a machine crash can still take
            // back, which would let the next records reuse its position.)
            sh.marker.store(st.written).ok();
        }
        sh.written_cv.notify_one();
        Ok(st.written)
    }

    /// Block until `position` is durable, the writer fails, or `timeout` passes.
    /// Returns the durable position (>= `position` unless timed out).
    pub fn wait_durable(&self, position: u64, timeout: Duration) -> io::Result<u64> {
        let sh = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut st = sh.lock();
        loop {
            if let Some(msg) = &st.error {
                return Err(poisoned(msg));
            }
            if st.durable >= position || st.closing && st.durable >= st.written {
                return Ok(st.durable);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(st.durable);
            }
            st = sh
                .durable_cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Have the committer signal `fd` (8-byte writes of 1: an eventfd counter) whenever the
    /// durable position advances or the writer fails. -1 turns it off.
    pub fn set_notify_fd(&self, fd: i32) {
        self.shared.notify_fd.store(fd, Ordering::SeqCst);
    }

    /// The error that poisoned the writer, if any.
    pub fn error(&self) -> Option<String> {
        self.shared.lock().error.clone()
    }

    pub fn last_position(&self) -> u64 {
        self.shared.lock().written
    }

    pub fn durable_position(&self) -> u64 {
        self.shared.lock().durable
    }

    pub fn stats(&self) -> LogStats {
        let st = self.shared.lock();
        let mut s = st.stats.clone();
        s.last_position = st.written;
        s.durable_position = st.durable;
        s.first_position = st.segments[0];
        s.segments = st.segments.len() as u64;
        s
    }

    /// Delete whole segments whose records are all <= `up_to_position` and that were last written
    /// more than `min_age` ago. Only a prefix of the log goes (it stays contiguous), and never the
    /// active segment. Returns how many segments were deleted.
    pub fn delete_segments(&self, up_to_position: u64, min_age: Duration) -> io::Result<usize> {
        let sh = &*self.shared;
        let candidates: Vec<u64> = sh.lock().segments.clone();
        let cutoff = SystemTime::now()
            .checked_sub(min_age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut deleted = Vec::new();
        for pair in candidates.windows(2) {
            let (first, next_first) = (pair[0], pair[1]);
            let path = segment::path(&sh.dir, first);
            let meta = fs::metadata(&path)?;
            if next_first - 1 > up_to_position || meta.modified()? > cutoff {
                break;
            }
            fs::remove_file(&path)?;
            deleted.push((first, meta.len()));
        }
        if !deleted.is_empty() {
            segment::sync_dir(&sh.dir)?;
            let mut st = sh.lock();
            for (first, len) in &deleted {
                st.segments.retain(|f| f != first);
                st.stats.bytes_on_disk -= len;
            }
        }
        Ok(deleted.len())
    }

    /// Make everything written durable (all policies), stop the committer. Idempotent.
    pub fn close(&self) -> io::Result<()> {
        let handle = {
            let mut st = self.shared.lock();
            st.closing = true;
            self.shared.written_cv.notify_all();
            self.committer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
        };
        if let Some(h) = handle {
            h.join()
                .map_err(|_| io::Error::other("log committer panicked"))?;
        }
        // The committer drained before exiting; this covers `None` and a late append race.
        let sh = &*self.shared;
        let (files, written, dir_dirty) = snapshot(&mut sh.lock());
        if let Err(e) = sync_files(&sh.dir, &files, dir_dirty) {
            sh.lock().error = Some(e.to_string());
            return Err(e);
        }
        let mut st = sh.lock();
        if st.error.is_none() {
            st.durable = st.durable.max(written);
            sh.marker.store(st.durable)?;
        }
        sh.durable_cv.notify_all();
        drop(st);
        sh.lock.lock().unwrap_or_else(|e| e.into_inner()).take(); // closing the file unlocks
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        let fd = self.notify_fd.load(Ordering::SeqCst);
        if fd >= 0 {
            // Borrow the fd without taking ownership. A full eventfd/pipe (EAGAIN) already
            // holds a pending wakeup, so a failed write loses nothing.
            let file = std::mem::ManuallyDrop::new(unsafe {
                <File as std::os::fd::FromRawFd>::from_raw_fd(fd)
            });
            let _ = (&*file).write(&1u64.to_ne_bytes());
        }
    }
}

fn append_locked<P: AsRef<[u8]>>(sh: &Shared, st: &mut State, payloads: &[P]) -> io::Result<()> {
    let mut buf = std::mem::take(&mut st.buf);
    buf.clear();
    let mut position = st.written;
    for p in payloads {
        let p = p.as_ref();
        let len = record::encoded_len(p);
        let pending = buf.len() as u64;
        // Roll when this record would overflow a segment that already holds records.
        if st.active_len + pending + len > sh.segment_bytes
            && st.active_len + pending > SEGMENT_MAGIC.len() as u64
        {
            write_active(st, &buf)?;
            buf.clear();
            roll(sh, st, position + 1)?;
        }
        position += 1;
        record::encode_into(&mut buf, position, p);
    }
    write_active(st, &buf)?;
    st.written = position;
    st.buf = buf;
    Ok(())
}

/// `append_locked` for `Fsync`: encode the records into `pending` for the committer, deciding the
/// segment rolls as `append_locked` would.
fn queue_locked<P: AsRef<[u8]>>(sh: &Shared, st: &mut State, payloads: &[P]) {
    let magic = SEGMENT_MAGIC.len() as u64;
    let mut chunk = st.pending.pop().unwrap_or_else(|| Pending {
        roll_to: None,
        bytes: st.spare.pop().unwrap_or_default(),
    });
    let mut position = st.written;
    for p in payloads {
        let p = p.as_ref();
        let len = record::encoded_len(p);
        if st.planned_len + len > sh.segment_bytes && st.planned_len > magic {
            st.pending.push(chunk);
            chunk = Pending {
                roll_to: Some(position + 1),
                bytes: st.spare.pop().unwrap_or_default(),
            };
            st.planned_len = magic;
        }
        position += 1;
        record::encode_into(&mut chunk.bytes, position, p);
        st.planned_len += len;
    }
    st.pending.push(chunk);
    st.written = position;
}

/// In the committer (`Fsync`): write the queued chunks, rolling where they say, without holding
/// the lock during a write.
fn write_pending(sh: &Shared, pending: Vec<Pending>) -> io::Result<()> {
    for mut chunk in pending {
        let (active, first) = {
            let mut st = sh.lock();
            if let Some(first) = chunk.roll_to {
                roll(sh, &mut st, first)?;
            }
            (Arc::clone(&st.active), st.active_first)
        };
        (&*active)
            .write_all(&chunk.bytes)
            .map_err(|e| failed(e, "writing", first))?;
        let mut st = sh.lock();
        st.active_len += chunk.bytes.len() as u64;
        st.stats.bytes_on_disk += chunk.bytes.len() as u64;
        chunk.bytes.clear();
        st.spare.push(chunk.bytes);
    }
    Ok(())
}

fn write_active(st: &mut State, buf: &[u8]) -> io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    (&*st.active)
        .write_all(buf)
        .map_err(|e| failed(e, "writing", st.active_first))?;
    st.active_len += buf.len() as u64;
    st.stats.bytes_on_disk += buf.len() as u64;
    Ok(())
}

/// Start a new segment whose first record is `first`. The old one is fsynced by the next
/// commit round before any position in the new one counts as durable.
fn roll(sh: &Shared, st: &mut State, first: u64) -> io::Result<()> {
    let path = segment::path(&sh.dir, first);
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| failed(e, "creating", first))?;
    file.write_all(SEGMENT_MAGIC)
        .map_err(|e| failed(e, "writing", first))?;
    let old = std::mem::replace(&mut st.active, Arc::new(file));
    st.unsynced.push(old);
    st.active_first = first;
    st.active_len = SEGMENT_MAGIC.len() as u64;
    st.stats.bytes_on_disk += SEGMENT_MAGIC.len() as u64;
    st.segments.push(first);
    st.dir_dirty = true;
    Ok(())
}

/// `e` naming the segment and what was done to it (the kind is kept). This text becomes the
/// writer's error, which the server sends to publishers: the file name, not the data dir's path.
fn failed(e: io::Error, doing: &str, first: u64) -> io::Error {
    let path = segment::path(Path::new(""), first);
    io::Error::new(
        e.kind(),
        format!("{doing} log segment {}: {e}", path.display()),
    )
}

/// What one commit round must fsync, and the position it makes durable.
fn snapshot(st: &mut State) -> (Vec<Arc<File>>, u64, bool) {
    let mut files = std::mem::take(&mut st.unsynced);
    files.push(Arc::clone(&st.active));
    (files, st.written, std::mem::take(&mut st.dir_dirty))
}

/// fsync the files (the active segment last, see `snapshot`) and, when it changed, the directory.
fn sync_files(dir: &Path, files: &[Arc<File>], dir_dirty: bool) -> io::Result<()> {
    let fsync_failed = |e: io::Error| io::Error::new(e.kind(), format!("fsync failed: {e}"));
    for f in files {
        f.sync_data().map_err(fsync_failed)?;
    }
    if dir_dirty {
        segment::sync_dir(dir).map_err(fsync_failed)?;
    }
    // The active segment must still be in the log directory. If it was removed under us (say an
    // `rm -rf` of the data dir while the server runs), every write and fsync still succeeds, into
    // a file no restart will find: acknowledging would lose the events. One fstat per round.
    // Only the active one: the log deletes rolled segments itself (`delete_segments`).
    if let Some(active) = files.last() {
        if active.metadata()?.nlink() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the active log segment was deleted while in use (was the log directory removed?)",
            ));
        }
    }
    Ok(())
}

fn committer(sh: &Shared) {
    loop {
        let (files, target, dir_dirty) = {
            let mut st = sh.lock();
            match sh.durability {
                Durability::Interval(every) => {
                    let deadline = Instant::now() + every;
                    while !st.closing {
                        let now = Instant::now();
                        if now >= deadline {
                            break;
                        }
                        st = sh
                            .written_cv
                            .wait_timeout(st, deadline - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
                _ => {
                    while !st.closing && st.written == st.synced && st.error.is_none() {
                        st = sh.written_cv.wait(st).unwrap_or_else(|e| e.into_inner());
                    }
                }
            }
            if st.error.is_some() || (st.closing && st.written == st.synced) {
                return;
            }
            if st.written == st.synced {
                continue; // an interval with nothing new
            }
            if sh.durability == Durability::Fsync {
                let (pending, target) = (std::mem::take(&mut st.pending), st.written);
                drop(st);
                if let Err(e) = write_pending(sh, pending) {
                    let mut st = sh.lock();
                    st.error = Some(e.to_string());
                    sh.durable_cv.notify_all();
                    drop(st);
                    sh.notify();
                    return;
                }
                let (files, _, dir_dirty) = snapshot(&mut sh.lock());
                (files, target, dir_dirty)
            } else {
                snapshot(&mut st)
            }
        };
        let started = Instant::now();
        let result = sync_files(&sh.dir, &files, dir_dirty);
        let us = started.elapsed().as_micros() as u64;
        let mut st = sh.lock();
        if let Err(e) = result {
            st.error = Some(e.to_string());
            sh.durable_cv.notify_all();
            drop(st);
            sh.notify();
            return;
        }
        st.synced = st.synced.max(target);
        st.stats.fsyncs += 1;
        st.stats.fsync_total_us += us;
        st.stats.fsync_last_us = us;
        st.stats.fsync_max_us = st.stats.fsync_max_us.max(us);
        sh.marker.store(st.synced).ok();
        if sh.durability == Durability::Fsync {
            st.durable = st.durable.max(target);
            sh.durable_cv.notify_all();
            drop(st);
            sh.notify();
        }
    }
}

/// Cut the torn tail and find the last position. Returns the segments (never empty: an empty
/// log gets its first segment), the last good position and how many bytes were cut.
fn recover(dir: &Path) -> io::Result<(Vec<u64>, u64, u64)> {
    let mut segments = segment::list(dir)?;
    if segments.is_empty() {
        create_segment(dir, 1)?;
        return Ok((vec![1], 0, 0));
    }
    let mut cut = 0;
    // Only the last two segments can hold unsynced bytes: a segment is fsynced before any
    // record of the next one counts as durable.
    let mut ends: Vec<(u64, u64)> = Vec::new(); // (segment first, next position after it)
    let tail_from = segments.len().saturating_sub(2);
    for &first in &segments[tail_from..] {
        let path = segment::path(dir, first);
        let mut scan = Scanner::open(&path, first)?;
        if scan.offset == 0 {
            let head = fs::read(&path)?;
            if head.len() >= SEGMENT_MAGIC.len() || !SEGMENT_MAGIC.starts_with(&head) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is not a log segment of this format version",
                        path.display()
                    ),
                ));
            }
            // Created but its magic never made it to disk whole: an empty segment.
            fs::write(&path, SEGMENT_MAGIC)?;
            File::open(&path)?.sync_all()?;
            ends.push((first, first));
            continue;
        }
        while scan.next_record()?.is_some() {}
        let len = fs::metadata(&path)?.len();
        if len > scan.offset {
            cut += len - scan.offset;
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_len(scan.offset)?;
            f.sync_all()?;
        }
        ends.push((first, scan.next_position));
    }
    // After a machine crash the older of the two may have lost its tail while the newer kept
    // records: those never became durable (acknowledged), and the gap makes them unreachable.
    if let [(_, prev_next), (last_first, _)] = ends[..] {
        if prev_next != last_first {
            let path = segment::path(dir, last_first);
            cut += fs::metadata(&path)?.len();
            fs::remove_file(&path)?;
            segments.pop();
            ends.pop();
            segment::sync_dir(dir)?;
        }
    }
    let next = ends.last().unwrap().1;
    Ok((segments, next - 1, cut))
}

/// Take `dir/writer.lock` (an advisory lock the OS releases when the process dies, SIGKILL too).
fn lock_dir(dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("writer.lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "{} is in use by another writer (another server on the same data_dir?)",
                dir.display()
            ),
        )),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

fn create_segment(dir: &Path, first: u64) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(segment::path(dir, first))?;
    f.write_all(SEGMENT_MAGIC)?;
    f.sync_all()?;
    segment::sync_dir(dir)
}

// The durable position file is `marker::FILE`; keep the name reachable for docs and tests.
pub const DURABLE_FILE: &str = marker::FILE;
