//! The lock wait where no signal can interrupt a blocking lock call (macOS has no real-time
//! signals; Windows' LockFileEx ignores them): non-blocking tries with a short sleep between them.
//! An abandoned wait is woken from its sleep (`interrupt` unparks it) and never takes the lock for
//! nobody, since it only tries while still wanted; the price is up to `POLL_MAX` of hand-over
//! latency between processes.
//!
//! A polling waiter is invisible to the holder (no /proc/locks), so it leaves a mark the holder
//! can see: it sets the sidecar's modification time to "now" on each failed try. A holder that
//! finds the time moved since it took the lock, and recent (a waiter marks at least every
//! `POLL_MAX`), knows another process waits and yields for longer than one poll, so that waiter's
//! next try finds the lock free.
//!
//! Only a process that may write the sidecar (or owns it) can leave that mark. Where the sidecar
//! lets someone open it who may not write it (another user's 0644 sidecar, a read-only
//! attribute), such a waiter would be invisible: there the holder also yields blindly once it has
//! held the lock for `BLIND_YIELD_EVERY`, so no waiter waits out a busy process.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::Mode;

/// First and longest sleep between two tries of a waiting lock (the sleep doubles up to it).
pub const POLL_MIN: Duration = Duration::from_millis(1);
pub const POLL_MAX: Duration = Duration::from_millis(10);

/// After giving the OS lock up for fairness, how long to stay out of the race for it: longer than
/// a waiter's longest sleep, so it tries at least once while the lock is free.
pub const YIELD_DELAY: Duration = Duration::from_millis(12);

/// How long a holder keeps the lock before it yields without seeing a mark, where a waiter may be
/// unable to leave one: `YIELD_DELAY` in this costs a busy process about 5% of its lock time, and
/// bounds how long an unmarked waiter waits to about this.
pub const BLIND_YIELD_EVERY: Duration = Duration::from_millis(250);

/// Tries the lock until it is ours (`Ok(true)`) or `abandoned` is set (`Ok(false)`), sleeping
/// between tries with a backoff from `POLL_MIN` to `POLL_MAX` (cut short by `interrupt`).
pub fn wait_lock(file: &File, mode: Mode, abandoned: &AtomicBool) -> io::Result<bool> {
  let mut pause = POLL_MIN;
  loop {
    if abandoned.load(Ordering::Acquire) {
      return Ok(false);
    }
    if super::try_lock(file, mode)? {
      return Ok(true);
    }
    // The mark for the holder. Where it cannot be made (a sidecar we may only read), the holder
    // yields blindly instead (see `Mark`).
    mark(file);
    // A spurious or early wake-up only means one more look at the flag and the lock.
    std::thread::park_timeout(pause);
    pause = (pause * 2).min(POLL_MAX);
  }
}

/// An unpark that comes before the park is kept, and the flag is read before every try: no
/// wake-up is lost.
pub const WAKE_MAY_BE_LOST: bool = false;

/// Nothing to widen: an unpark that comes before the park is kept, so no wake-up can be lost.
#[cfg(test)]
pub fn widen_wake_race(_us: u64) {}

/// The thread running a polling wait, to wake from its sleep once it is abandoned.
#[derive(Debug)]
pub struct Waker(std::thread::Thread);

pub fn init_wake() {}

pub fn waker_of<T>(handle: &std::thread::JoinHandle<T>) -> Waker {
  Waker(handle.thread().clone())
}

/// Wakes the waiting thread (its `abandoned` flag set first), which then returns at once.
pub fn interrupt(waker: &Waker) {
  waker.0.unpark();
}

/// A mark younger than this is from a waiter still polling; an older one from a waiter that has
/// given up (or got the lock). A few polls, for scheduling delays.
const MARK_FRESH: Duration = Duration::from_millis(30);
/// The same where the filesystem keeps whole seconds only (its marks have no nanoseconds).
const MARK_FRESH_COARSE: Duration = Duration::from_secs(2);

/// Waiters mark the sidecar (see `mark`), so it is opened for writing where it may be.
pub const SIDECAR_MARKED: bool = true;

/// Sets the sidecar's times to "now": futimens with a null time, which (unlike setting a given
/// time, which only the owner may) anyone who may write the file may do.
#[cfg(unix)]
fn mark(file: &File) {
  use std::os::fd::AsRawFd;
  // SAFETY: a valid open descriptor; a null `times` means both times are now.
  unsafe { libc::futimens(file.as_raw_fd(), std::ptr::null()) };
}

/// Sets the sidecar's modification time: a handle opened for writing may (FILE_WRITE_ATTRIBUTES),
/// a read-only one may not.
#[cfg(windows)]
fn mark(file: &File) {
  let _ = file.set_modified(SystemTime::now());
}

/// Whether someone who may open the sidecar may be unable to mark it: it is readable by its
/// group or by others who may not write it (a waiter of another user then opens it read-only).
/// ACLs are not consulted.
#[cfg(unix)]
fn unmarkable_by_some(meta: &std::fs::Metadata) -> bool {
  use std::os::unix::fs::MetadataExt;
  let mode = meta.mode();
  (mode & 0o040 != 0 && mode & 0o020 == 0) || (mode & 0o004 != 0 && mode & 0o002 == 0)
}

/// A read-only sidecar is opened read-only by everyone, and then nobody can mark it.
#[cfg(windows)]
fn unmarkable_by_some(meta: &std::fs::Metadata) -> bool {
  meta.permissions().readonly()
}

/// What the holder knows from when it took the lock: the sidecar's modification time then, and,
/// where a waiter may be unable to mark it, the moment itself.
#[derive(Debug, Default)]
pub struct Mark {
  taken: Option<SystemTime>,
  blind_since: Option<Instant>,
}

impl Mark {
  pub fn new(file: &File) -> Self {
    let meta = file.metadata().ok();
    Mark {
      taken: meta.as_ref().and_then(|m| m.modified().ok()),
      blind_since: meta
        .as_ref()
        .is_some_and(unmarkable_by_some)
        .then(Instant::now),
    }
  }
}

/// Whether a waiter marked the sidecar since the lock was taken, recently enough to be still
/// waiting, or (where a waiter may be unable to mark it) the lock has been held for
/// `BLIND_YIELD_EVERY`. Looking changes nothing, so a holder may look as often as it likes (one
/// that remembered each look would see "nobody" on every look that came sooner than the next
/// poll); a yield drops the lock, and taking it again starts a new `Mark`.
pub fn others_waiting(file: &File, mark: &mut Mark) -> bool {
  if mark
    .blind_since
    .is_some_and(|t| t.elapsed() >= BLIND_YIELD_EVERY)
  {
    return true;
  }
  let Ok(marked) = file.metadata().and_then(|m| m.modified()) else {
    return false;
  };
  if Some(marked) == mark.taken {
    return false;
  }
  let coarse = marked
    .duration_since(SystemTime::UNIX_EPOCH)
    .is_ok_and(|t| t.subsec_nanos() == 0);
  let fresh = if coarse {
    MARK_FRESH_COARSE
  } else {
    MARK_FRESH
  };
  // A mark from the future (clocks of two hosts) counts as fresh.
  SystemTime::now()
    .duration_since(marked)
    .map_or(true, |age| age < fresh)
}
