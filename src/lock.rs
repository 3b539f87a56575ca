//! The cross-process half: flock(2) on the `<path>.lock` sidecar, re-checked against its inode.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;

use fs4::FileExt;
use fs4::TryLockError;

use crate::error::{Error, Result};

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
}

impl OsLock {
  /// Whether another process is blocked waiting for this lock (Linux: /proc/locks).
  pub fn others_waiting(&self) -> bool {
    let (Ok(meta), Some(table)) = (self.file.metadata(), read_proc_locks()) else {
      return false;
    };
    waiters_in(&table, meta.dev(), meta.ino())
      .iter()
      .any(|pid| *pid != std::process::id())
  }
}

/// Opens the sidecar without following a planted symlink, creating it when missing. Where the
/// file exists but may not be written (read-only file or mount), a read-only descriptor still
/// takes both shared and exclusive flocks.
fn open(sidecar: &Path) -> Result<File> {
  crate::atomic::retry_stale(|| open_once(sidecar))
}

fn open_once(sidecar: &Path) -> Result<File> {
  let rw = OpenOptions::new()
    .read(true)
    .write(true)
    .create(true)
    .mode(0o666)
    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
    .open(sidecar);
  match rw {
    Ok(f) => Ok(f),
    Err(e)
      if matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EROFS | libc::EPERM)
      ) =>
    {
      OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(sidecar)
        .map_err(|_| Error::io(e, "open", sidecar))
    }
    Err(e) => Err(Error::io(e, "open", sidecar)),
  }
}

/// True while `sidecar` still names the inode `file` has open. A lock taken on an inode that
/// was unlinked or renamed away guards nothing: another process may lock the new file.
fn still_named(file: &File, sidecar: &Path) -> Result<bool> {
  let held = file
    .metadata()
    .map_err(|e| Error::io(e, "fstat", sidecar))?;
  match fs::symlink_metadata(sidecar) {
    Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
    Err(e) => Err(Error::io(e, "lstat", sidecar)),
  }
}

fn try_flock(file: &File, mode: Mode) -> std::result::Result<(), TryLockError> {
  match mode {
    Mode::Shared => FileExt::try_lock_shared(file),
    Mode::Exclusive => FileExt::try_lock(file),
  }
}

/// Blocks in flock(2) until the lock is ours (`Ok(true)`), or until `abandoned` is set and a
/// wake-up signal interrupts the wait (`Ok(false)`).
fn flock(file: &File, mode: Mode, abandoned: &AtomicBool) -> io::Result<bool> {
  loop {
    if abandoned.load(Ordering::Acquire) {
      return Ok(false);
    }
    let r = match mode {
      Mode::Shared => FileExt::lock_shared(file),
      Mode::Exclusive => FileExt::lock(file),
    };
    match r {
      Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
      other => return other.map(|()| true),
    }
  }
}

/// The signal that interrupts an abandoned blocking wait: a real-time signal with a handler that
/// does nothing and no SA_RESTART, so flock(2) returns EINTR. `None` (waits then simply run to
/// completion and hand the lock straight back) if something else in the process already
/// handles that signal.
static WAKE_SIGNAL: LazyLock<Option<libc::c_int>> = LazyLock::new(|| {
  extern "C" fn ignore(_: libc::c_int) {}
  let sig = libc::SIGRTMIN() + 7;
  // SAFETY: sigaction with valid, zero-initialised structs; only installs over the default.
  unsafe {
    let mut old: libc::sigaction = std::mem::zeroed();
    if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 || old.sa_sigaction != libc::SIG_DFL {
      return None;
    }
    let mut act: libc::sigaction = std::mem::zeroed();
    act.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
    libc::sigemptyset(&mut act.sa_mask);
    (libc::sigaction(sig, &act, std::ptr::null_mut()) == 0).then_some(sig)
  }
});

/// Prepares the wake-up signal; call before starting a thread that `interrupt` may target.
pub fn init_wake_signal() {
  LazyLock::force(&WAKE_SIGNAL);
}

/// Interrupts `thread`'s blocking flock (it must be running `lock_blocking`, and its
/// `abandoned` flag set first).
pub fn interrupt(thread: libc::pthread_t) {
  if let Some(sig) = *WAKE_SIGNAL {
    // SAFETY: the caller guarantees the thread is alive (it deregisters itself under the same
    // lock the caller holds before it exits).
    unsafe {
      libc::pthread_kill(thread, sig);
    }
  }
}

/// Takes the lock if it is free now; `Ok(None)` when another open file description holds it.
pub fn try_lock(sidecar: &Path, mode: Mode) -> Result<Option<OsLock>> {
  for _ in 0..MAX_REOPENS {
    let file = open(sidecar)?;
    match try_flock(&file, mode) {
      Ok(()) => {}
      Err(TryLockError::WouldBlock) => return Ok(None),
      Err(TryLockError::Error(e)) => return Err(Error::io(e, "flock", sidecar)),
    }
    if still_named(&file, sidecar)? {
      return Ok(Some(OsLock { file }));
    }
  }
  Err(Error::errno(libc::ESTALE, "flock", sidecar))
}

/// Waits in flock(2) until the lock is ours; `Ok(None)` once `abandoned` is set (see
/// `interrupt`). Blocks the calling thread: run it on a thread of its own, never on the JS
/// thread or libuv's pool.
pub fn lock_blocking(sidecar: &Path, mode: Mode, abandoned: &AtomicBool) -> Result<Option<OsLock>> {
  for _ in 0..MAX_REOPENS {
    let file = open(sidecar)?;
    if !flock(&file, mode, abandoned).map_err(|e| Error::io(e, "flock", sidecar))? {
      return Ok(None);
    }
    if still_named(&file, sidecar)? {
      return Ok(Some(OsLock { file }));
    }
  }
  Err(Error::errno(libc::ESTALE, "flock", sidecar))
}

/// A process holding a flock, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
  pub pid: u32,
  pub mode: Mode,
}

/// The processes holding a flock on `sidecar` (not those waiting for one), read from /proc/locks
/// by device and inode. Empty where the OS cannot tell.
pub fn holders(sidecar: &Path) -> Vec<Holder> {
  let Ok(meta) = fs::metadata(sidecar) else {
    return Vec::new();
  };
  // A lock released elsewhere on the host while the table is read can hide a line from one
  // pass; a few more passes cost little next to the timeout that led here.
  for _ in 0..5 {
    let Some(table) = read_proc_locks() else {
      return Vec::new();
    };
    let pids = holders_in(&table, meta.dev(), meta.ino());
    if !pids.is_empty() {
      return pids;
    }
  }
  Vec::new()
}

/// /proc/locks, read to the end in large reads. The kernel renders it by position on every
/// read call and returns at most a buffer page's worth per call, so a lock released anywhere on
/// the host between two calls can shift a line out of view: callers that find nothing read again.
fn read_proc_locks() -> Option<String> {
  use std::io::Read;
  let mut file = File::open("/proc/locks").ok()?;
  let mut table = Vec::with_capacity(64 * 1024);
  let mut chunk = vec![0u8; 64 * 1024];
  loop {
    match file.read(&mut chunk) {
      Ok(0) => break,
      Ok(n) => table.extend_from_slice(&chunk[..n]),
      Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
      Err(_) => return None,
    }
  }
  String::from_utf8(table).ok()
}

fn holders_in(table: &str, dev: u64, ino: u64) -> Vec<Holder> {
  flock_entries(table, dev, ino, false)
}

fn waiters_in(table: &str, dev: u64, ino: u64) -> Vec<u32> {
  let mut pids: Vec<u32> = flock_entries(table, dev, ino, true)
    .iter()
    .map(|h| h.pid)
    .collect();
  pids.dedup();
  pids
}

/// The flock holders (or, with `waiting`, the blocked waiters) of one inode in a /proc/locks
/// table, by pid.
fn flock_entries(table: &str, dev: u64, ino: u64, waiting: bool) -> Vec<Holder> {
  let exact = format!("{:02x}:{:02x}:{}", libc::major(dev), libc::minor(dev), ino);
  let suffix = format!(":{ino}");
  let mut exact_pids = Vec::new();
  let mut inode_pids = Vec::new();
  for line in table.lines() {
    // "1: FLOCK  ADVISORY  WRITE 1234 fe:01:5678 0 EOF"; waiters carry "->" after the index.
    let mut f: Vec<&str> = line.split_whitespace().collect();
    let is_waiter = f.get(1) == Some(&"->");
    if is_waiter {
      f.remove(1);
    }
    if is_waiter != waiting || f.len() < 6 || f[1] != "FLOCK" {
      continue;
    }
    let Ok(pid) = f[4].parse::<u32>() else {
      continue;
    };
    let mode = if f[3] == "WRITE" {
      Mode::Exclusive
    } else {
      Mode::Shared
    };
    let entry = Holder { pid, mode };
    if f[5] == exact {
      exact_pids.push(entry);
    } else if f[5].ends_with(&suffix) {
      // Overlay and similar stacked filesystems report the lower device in /proc/locks.
      inode_pids.push(entry);
    }
  }
  let mut entries = if exact_pids.is_empty() {
    inode_pids
  } else {
    exact_pids
  };
  entries.sort_unstable_by_key(|h| h.pid);
  entries.dedup();
  entries
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::path::PathBuf;

  fn sidecar(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("index-lock-lock-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d.join("index.json.lock")
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
    assert_eq!(
      holders(&p),
      vec![Holder {
        pid: std::process::id(),
        mode: Mode::Exclusive
      }]
    );
    drop(c);
    assert!(holders(&p).is_empty());
    fs::remove_dir_all(p.parent().unwrap()).unwrap();
  }

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

  #[test]
  fn proc_locks_parsing_skips_waiters_and_other_inodes() {
    let table = "1: FLOCK  ADVISORY  WRITE 10 fe:01:77 0 EOF\n\
                 1: -> FLOCK  ADVISORY  WRITE 11 fe:01:77 0 EOF\n\
                 2: FLOCK  ADVISORY  READ 12 fe:01:78 0 EOF\n\
                 3: POSIX  ADVISORY  WRITE 13 fe:01:77 0 EOF\n\
                 4: FLOCK  ADVISORY  READ 14 fe:01:77 0 EOF\n";
    let dev = libc::makedev(0xfe, 1);
    let pids: Vec<(u32, Mode)> = holders_in(table, dev, 77)
      .iter()
      .map(|h| (h.pid, h.mode))
      .collect();
    assert_eq!(pids, vec![(10, Mode::Exclusive), (14, Mode::Shared)]);
    assert_eq!(waiters_in(table, dev, 77), vec![11]);
  }
}
