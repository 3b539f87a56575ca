//! The lock wait where no signal can interrupt a blocking lock call (macOS has no real-time
//! signals; Windows' LockFileEx ignores them): non-blocking tries with a short sleep between them.
//! An abandoned wait is woken from its sleep (`interrupt` unparks it) and never takes the lock for
//! nobody, since it only tries while still wanted; the price is up to `POLL_MAX` of hand-over
//! latency between processes.
//!
//! A polling waiter is invisible to the holder (no /proc/locks), so it leaves a mark the holder
//! can see: it sets the sidecar's modification time on each failed try. A holder that finds the
//! time moved since it took the lock, and recent (a waiter marks at least every `POLL_MAX`),
//! knows another process waits and yields for longer than one poll, so that waiter's next try
//! finds the lock free.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crate::lock::Mode;

/// First and longest sleep between two tries of a waiting lock (the sleep doubles up to it).
pub const POLL_MIN: Duration = Duration::from_millis(1);
pub const POLL_MAX: Duration = Duration::from_millis(10);

/// After giving the OS lock up for fairness, how long to stay out of the race for it: longer than
/// a waiter's longest sleep, so it tries at least once while the lock is free.
pub const YIELD_DELAY: Duration = Duration::from_millis(12);

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
    // The mark for the holder; a read-only sidecar cannot carry it, and then the holder simply
    // does not yield early.
    let _ = file.set_modified(SystemTime::now());
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

/// The sidecar's modification time when the holder took the lock.
#[derive(Debug, Default)]
pub struct Mark(Option<SystemTime>);

impl Mark {
  pub fn new(file: &File) -> Self {
    Mark(file.metadata().and_then(|m| m.modified()).ok())
  }
}

/// Whether a waiter marked the sidecar since the lock was taken, recently enough to be still
/// waiting. Looking changes nothing, so a holder may look as often as it likes (one that
/// remembered each look would see "nobody" on every look that came sooner than the next poll).
pub fn others_waiting(file: &File, mark: &mut Mark) -> bool {
  let Ok(marked) = file.metadata().and_then(|m| m.modified()) else {
    return false;
  };
  if Some(marked) == mark.0 {
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
