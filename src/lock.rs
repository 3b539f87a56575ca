//! The cross-process half: an OS lock on the `<path>.lock` sidecar (flock(2) on Unix, LockFileEx
//! on Windows; see `sys`), re-checked against the file the path names.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys;

pub use crate::sys::{Holder, Mode};

impl Mode {
  pub fn index(self) -> usize {
    self as usize
  }
}

/// How long a held or kept sidecar descriptor is trusted to be the file the sidecar path names
/// without looking at the path again (a fresh open always looks). A sidecar, or its directory,
/// moved or replaced while a process keeps using it is noticed this long after, at most.
pub const TRUST_NAME_FOR: Duration = Duration::from_millis(100);

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

  /// Whether the sidecar path still names the locked file, looked at again once `TRUST_NAME_FOR`
  /// has passed since the last look.
  pub fn still_named(&mut self, sidecar: &Path) -> Result<bool> {
    if self.named_at.elapsed() < TRUST_NAME_FOR {
      return Ok(true);
    }
    let named = still_named(&self.file, sidecar)?;
    if named {
      self.named_at = Instant::now();
    }
    Ok(named)
  }

  /// Whether another process waits for this lock (Linux: /proc/locks; elsewhere: the mark a
  /// polling waiter leaves on the sidecar).
  pub fn others_waiting(&mut self) -> bool {
    sys::others_waiting(&self.file, &mut self.mark)
  }
}

/// Opens the sidecar (see `sys::open_sidecar`), retrying a stale handle, and once more after
/// closing the descriptors kept from earlier holds where the process ran out of descriptors.
fn open(sidecar: &Path) -> Result<File> {
  crate::spare::freeing_kept(|| {
    crate::atomic::retry_stale(|| sys::open_sidecar(sidecar).map_err(|e| Error::os(e, sidecar)))
  })
}

/// Whether `sidecar` still names the inode `file` has open (`sys::still_named`).
fn still_named(file: &File, sidecar: &Path) -> Result<bool> {
  sys::still_named(file, sidecar).map_err(|e| Error::os(e, sidecar))
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

/// `take(file)` (a flock call); where the filesystem refuses it on a read-only descriptor (NFS
/// and others emulate flock with byte-range locks, and an exclusive one needs a writable
/// descriptor: EBADF), reopens the sidecar for writing and calls it again.
fn flock_on(
  file: &mut File,
  sidecar: &Path,
  take: impl Fn(&File) -> std::io::Result<bool>,
) -> Result<bool> {
  match take(file) {
    Err(e) if sys::needs_writable(&e) => {
      *file = crate::spare::freeing_kept(|| {
        sys::open_sidecar_writable(sidecar).map_err(|e| Error::os(e, sidecar))
      })?;
      take(file).map_err(|e| Error::io(e, "flock", sidecar))
    }
    r => r.map_err(|e| Error::io(e, "flock", sidecar)),
  }
}

/// Takes the lock if it is free now; `Ok(None)` when another open file description holds it.
pub fn try_lock(sidecar: &Path, mode: Mode) -> Result<Option<OsLock>> {
  for _ in 0..MAX_REOPENS {
    let mut file = open(sidecar)?;
    if !flock_on(&mut file, sidecar, |f| sys::try_lock(f, mode))? {
      return Ok(None);
    }
    if still_named(&file, sidecar)? {
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
  match sys::try_lock(&file, mode) {
    Ok(true) => {}
    Ok(false) => return Ok(Relock::Busy(file)),
    // A descriptor kept from a shared hold may be read-only where an exclusive lock needs it
    // writable: the caller opens afresh.
    Err(e) if sys::needs_writable(&e) => return Ok(Relock::Gone),
    Err(e) => return Err(Error::io(e, "flock", sidecar)),
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
    let mut file = open(sidecar)?;
    if !flock_on(&mut file, sidecar, |f| sys::wait_lock(f, mode, abandoned))? {
      return Ok(None);
    }
    if still_named(&file, sidecar)? {
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

/// Who holds the lock on `sidecar` where `holders` listed nobody, told without ever taking it
/// exclusively (see each backend's `probe`): `None` when no holder shows. Creates nothing. Where
/// the holder list shows every flock that could be on the sidecar (Linux's /proc/locks, seen
/// from the initial pid namespace, on a filesystem whose flocks all go through this kernel), it
/// is free, and nothing is tried.
pub fn probe(sidecar: &Path) -> Result<Option<Mode>> {
  if sys::lists_every_holder()
    && sidecar
      .parent()
      .is_some_and(crate::fstype::flocks_stay_in_kernel)
  {
    return Ok(None);
  }
  sys::probe(sidecar).map_err(|e| Error::os(e, sidecar))
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

  #[cfg(unix)]
  #[test]
  fn where_an_exclusive_flock_needs_a_writable_descriptor_the_sidecar_is_reopened_for_writing() {
    use std::os::unix::io::AsRawFd;
    let p = sidecar("nfs-rule");
    sys::EXCLUSIVE_NEEDS_WRITE.with(|f| f.set(true));
    let shared = try_lock(&p, Mode::Shared).unwrap().expect("free");
    let (kept, named_at) = shared.unlock().unwrap();
    // A descriptor kept from a shared hold cannot take it exclusively: the caller opens afresh.
    assert!(matches!(
      relock(kept, named_at, &p, Mode::Exclusive).unwrap(),
      Relock::Gone
    ));
    let held = try_lock(&p, Mode::Exclusive)
      .unwrap()
      .expect("reopened for writing");
    // SAFETY: F_GETFL on a descriptor the lock owns.
    let flags = unsafe { libc::fcntl(held.file.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(flags & libc::O_ACCMODE, libc::O_RDWR);
    assert!(try_lock(&p, Mode::Shared).unwrap().is_none());
    sys::EXCLUSIVE_NEEDS_WRITE.with(|f| f.set(false));
    drop(held);
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
