//! The cross-process half: an OS lock on the `<path>.lock` sidecar (flock(2) on Unix, LockFileEx
//! on Windows; see `sys`), re-checked against the file the path names.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::sys;

pub use crate::sys::Holder;

/// How a lock is held: many shared holders at once, or one exclusive holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
  Shared,
  Exclusive,
}

impl Mode {
  pub fn index(self) -> usize {
    self as usize
  }
}

/// Times we reopen a sidecar that was deleted or replaced while we waited for it, before
/// reporting the churn as an error instead of spinning.
const MAX_REOPENS: usize = 1000;

/// A held flock. Dropping it closes the descriptor, which is what releases the lock; the lock
/// file itself is never truncated or deleted.
#[derive(Debug)]
pub struct OsLock {
  file: File,
  mark: sys::Mark,
  /// When the descriptor was last seen to be the file the sidecar path names.
  named_at: Instant,
}

impl OsLock {
  fn new(file: File, named_at: Instant) -> Self {
    let mark = sys::Mark::new(&file);
    OsLock {
      file,
      mark,
      named_at,
    }
  }

  /// Lets go of the lock but keeps the descriptor, for `relock`; `None` (closed, which releases
  /// it too) if the OS refuses.
  pub fn unlock(self) -> Option<(File, Instant)> {
    sys::unlock(&self.file).ok()?;
    Some((self.file, self.named_at))
  }

  /// Whether another process waits for this lock (Linux: /proc/locks; elsewhere: the mark a
  /// polling waiter leaves on the sidecar).
  pub fn others_waiting(&mut self) -> bool {
    sys::others_waiting(&self.file, &mut self.mark)
  }
}

/// Opens the sidecar (see `sys::open_sidecar`), retrying a stale handle.
fn open(sidecar: &Path) -> Result<File> {
  crate::atomic::retry_stale(|| sys::open_sidecar(sidecar))
}

/// Prepares what interrupts an abandoned wait; call before starting a thread that `interrupt`
/// may target.
pub fn init_wake_signal() {
  sys::init_wake();
}

/// Ends the wait of the thread `waker` names (it must be running `lock_blocking`, and its
/// `abandoned` flag set first): Linux interrupts its blocking flock with a signal; a polling wait
/// sees the flag within one sleep.
pub fn interrupt(waker: &sys::Waker) {
  sys::interrupt(waker);
}

/// Takes the lock if it is free now; `Ok(None)` when another open file description holds it.
pub fn try_lock(sidecar: &Path, mode: Mode) -> Result<Option<OsLock>> {
  for _ in 0..MAX_REOPENS {
    let file = open(sidecar)?;
    if !sys::try_lock(&file, mode).map_err(|e| Error::io(e, "flock", sidecar))? {
      return Ok(None);
    }
    if sys::still_named(&file, sidecar)? {
      return Ok(Some(OsLock::new(file, Instant::now())));
    }
  }
  Err(Error::errno(sys::errno::ESTALE, "flock", sidecar))
}

/// What `relock` made of a kept descriptor.
pub enum Relock {
  Held(OsLock),
  /// Another open file description holds the lock: the descriptor, still unlocked, back.
  Busy(File),
  /// The sidecar was deleted or replaced since: the descriptor is closed.
  Gone,
}

/// Takes the lock without waiting on a descriptor an earlier hold kept (`OsLock::unlock`), last
/// seen naming the sidecar at `named_at`. Checks only that the file still has a name (one fstat):
/// a deleted sidecar, or one replaced by a rename over it, has none. The caller decides how long
/// to trust that it is still *this* name.
pub fn relock(file: File, named_at: Instant, sidecar: &Path, mode: Mode) -> Result<Relock> {
  if !sys::try_lock(&file, mode).map_err(|e| Error::io(e, "flock", sidecar))? {
    return Ok(Relock::Busy(file));
  }
  if sys::unlinked(&file).map_err(|e| Error::io(e, "fstat", sidecar))? {
    return Ok(Relock::Gone);
  }
  Ok(Relock::Held(OsLock::new(file, named_at)))
}

/// Waits until the lock is ours (`sys::wait_lock`); `Ok(None)` once `abandoned` is set (see
/// `interrupt`). Blocks the calling thread: run it on a thread of its own, never on the JS
/// thread or libuv's pool.
pub fn lock_blocking(sidecar: &Path, mode: Mode, abandoned: &AtomicBool) -> Result<Option<OsLock>> {
  for _ in 0..MAX_REOPENS {
    let file = open(sidecar)?;
    if !sys::wait_lock(&file, mode, abandoned).map_err(|e| Error::io(e, "flock", sidecar))? {
      return Ok(None);
    }
    if sys::still_named(&file, sidecar)? {
      return Ok(Some(OsLock::new(file, Instant::now())));
    }
  }
  Err(Error::errno(sys::errno::ESTALE, "flock", sidecar))
}

/// The processes holding the lock on `sidecar` (not those waiting for it): from /proc/locks on
/// Linux, empty where the OS cannot tell.
pub fn holders(sidecar: &Path) -> Vec<Holder> {
  sys::holders(sidecar)
}

/// The processes waiting for the lock on `sidecar`; `None` where the OS cannot tell (only Linux
/// can: /proc/locks).
pub fn waiters(sidecar: &Path) -> Option<Vec<Holder>> {
  sys::waiters(sidecar)
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::fs;
  use std::path::PathBuf;

  fn sidecar(tag: &str) -> PathBuf {
    crate::testdir::fresh(&format!("lock-{tag}")).join("index.json.lock")
  }

  #[test]
  fn exclusive_excludes_and_shared_shares() {
    let p = sidecar("modes");
    let a = try_lock(&p, Mode::Shared).unwrap().expect("free");
    let b = try_lock(&p, Mode::Shared)
      .unwrap()
      .expect("shared with shared");
    assert!(try_lock(&p, Mode::Exclusive).unwrap().is_none());
    drop((a, b));
    let c = try_lock(&p, Mode::Exclusive).unwrap().expect("free again");
    assert!(try_lock(&p, Mode::Shared).unwrap().is_none());
    assert!(try_lock(&p, Mode::Exclusive).unwrap().is_none());
    // Only Linux can tell who holds a lock; elsewhere the list is empty by design.
    let expected = if sys::BACKEND == "linux" {
      vec![Holder {
        pid: std::process::id(),
        mode: Mode::Exclusive,
      }]
    } else {
      Vec::new()
    };
    assert_eq!(holders(&p), expected);
    drop(c);
    assert!(holders(&p).is_empty());
    fs::remove_dir_all(p.parent().unwrap()).unwrap();
  }

  #[cfg(unix)]
  #[test]
  fn a_replaced_sidecar_is_locked_afresh() {
    let p = sidecar("replaced");
    let old = try_lock(&p, Mode::Exclusive).unwrap().unwrap();
    // Someone deletes the lock file while we hold it: a new one must be lockable, and ours
    // must not count as holding the new one.
    fs::remove_file(&p).unwrap();
    let new = try_lock(&p, Mode::Exclusive)
      .unwrap()
      .expect("new inode is free");
    drop((old, new));
    fs::remove_dir_all(p.parent().unwrap()).unwrap();
  }

  #[cfg(windows)]
  #[test]
  fn a_locked_sidecar_cannot_be_deleted_or_renamed() {
    let p = sidecar("pinned");
    let held = try_lock(&p, Mode::Exclusive).unwrap().unwrap();
    assert!(fs::remove_file(&p).is_err());
    assert!(fs::rename(&p, p.with_extension("moved")).is_err());
    drop(held);
    fs::remove_file(&p).unwrap();
    fs::remove_dir_all(p.parent().unwrap()).unwrap();
  }

  #[cfg(unix)]
  #[test]
  fn a_planted_symlink_is_refused() {
    let p = sidecar("symlink");
    let elsewhere = p.with_file_name("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, &p).unwrap();
    let err = try_lock(&p, Mode::Exclusive).unwrap_err();
    assert_eq!(err.code(), "ELOOP");
    assert!(!elsewhere.exists());
    fs::remove_dir_all(p.parent().unwrap()).unwrap();
  }
}
