//! Linux: flock(2) with a blocking wait that a real-time signal interrupts, /proc/locks for who
//! holds and who waits, /proc/self/mountinfo for what a filesystem is.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use fs4::FileExt;

use super::{Holder, Probe};
use crate::error::Result;
use crate::lock::Mode;

pub use super::unix::*;

/// What `backend()` reports to JS.
pub const BACKEND: &str = "linux";

/// After giving the OS lock up for fairness, how long to stay out of the race for it, so that a
/// waiter the kernel just woke gets it before we ask again.
pub const YIELD_DELAY: Duration = Duration::from_millis(1);

/// Blocks in flock(2) until the lock is ours (`Ok(true)`), or until `abandoned` is set and a
/// wake-up signal interrupts the wait (`Ok(false)`). The kernel hands the lock over the moment
/// its holder lets go.
pub fn wait_lock(file: &File, mode: Mode, abandoned: &AtomicBool) -> io::Result<bool> {
  loop {
    if abandoned.load(Ordering::Acquire) {
      return Ok(false);
    }
    #[cfg(test)]
    race_window();
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

/// Microseconds a wait pauses between its `abandoned` check and flock(2), so that tests can land
/// a wake-up signal there at will.
#[cfg(test)]
static RACE_WINDOW_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(test)]
fn race_window() {
  let us = RACE_WINDOW_US.load(Ordering::Relaxed);
  if us > 0 {
    std::thread::sleep(Duration::from_micros(us));
  }
}

/// Widens the window between a wait's `abandoned` check and its flock(2) (tests only).
#[cfg(test)]
pub fn widen_wake_race(us: u64) {
  RACE_WINDOW_US.store(us, Ordering::Relaxed);
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

/// The thread running a `wait_lock`, for `interrupt`.
#[derive(Debug)]
pub struct Waker(libc::pthread_t);

// SAFETY: a pthread_t is an identifier (musl makes it a pointer, which is what stops the auto
// impl); it is only passed to pthread_kill, under the registry lock that keeps the thread alive.
unsafe impl Send for Waker {}

/// Prepares the wake-up signal; call before starting a thread that `interrupt` may target.
pub fn init_wake() {
  LazyLock::force(&WAKE_SIGNAL);
}

pub fn waker_of<T>(handle: &std::thread::JoinHandle<T>) -> Waker {
  use std::os::unix::thread::JoinHandleExt;
  // std's raw pthread type is an integer on every libc; libc's own is a pointer on musl.
  #[allow(clippy::unnecessary_cast)]
  Waker(handle.as_pthread_t() as libc::pthread_t)
}

/// A wake-up can be lost: a signal that lands between the wait's look at `abandoned` and its
/// flock(2) call runs the handler before the call, which then blocks. No atomic "unblock the
/// signal and lock" call exists for flock (as `pselect` is for select), so the waker sends it
/// again until the wait is over (see `registry::keep_waking`).
pub const WAKE_MAY_BE_LOST: bool = true;

/// Interrupts the blocking flock of the thread `waker` names (it must be running `wait_lock`,
/// and its `abandoned` flag set first).
pub fn interrupt(waker: &Waker) {
  if let Some(sig) = *WAKE_SIGNAL {
    // SAFETY: the caller guarantees the thread is alive (it deregisters itself under the same
    // lock the caller holds before it exits).
    unsafe {
      libc::pthread_kill(waker.0, sig);
    }
  }
}

/// What `others_waiting` needs to remember between calls: nothing, /proc/locks tells.
#[derive(Debug, Default)]
pub struct Mark;

impl Mark {
  pub fn new(_file: &File) -> Self {
    Mark
  }
}

/// Whether another process is blocked waiting for the lock `file` holds (/proc/locks).
pub fn others_waiting(file: &File, _mark: &mut Mark) -> bool {
  let (Ok(meta), Some(table)) = (file.metadata(), read_proc_locks()) else {
    return false;
  };
  waiters_in(&table, meta.dev(), meta.ino())
    .iter()
    .any(|pid| *pid != std::process::id())
}

/// The processes holding a flock on `sidecar` (not those waiting for one), read from /proc/locks
/// by device and inode.
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

/// The kernel's id of the calling thread (unique on the host while it runs).
pub fn thread_id() -> u64 {
  // SAFETY: gettid takes no arguments and cannot fail.
  unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

/// The statfs magic, and the mount's type name and options from /proc/self/mountinfo (it tells
/// FUSE backends apart, e.g. `fuse.sshfs`), else the type the magic names.
pub fn probe_fs(dir: &Path) -> Result<Probe> {
  #[allow(clippy::unnecessary_cast)]
  let magic = statfs(dir)?.f_type as u64;
  let mount = fs::read_to_string("/proc/self/mountinfo")
    .ok()
    .and_then(|t| crate::fstype::mount_of(&t, dir));
  let (mount_point, fstype, options) = match mount {
    Some((mp, t, o)) => (Some(mp), t, o),
    None => (None, crate::fstype::magic_type(magic), String::new()),
  };
  Ok(Probe {
    magic,
    fstype,
    options,
    mount_point,
    verdict: None,
  })
}

/// Linux filesystems are case-sensitive (ext4's per-directory casefolding aside): every spelling
/// is its own file.
pub fn fold_key(_key: &Path) -> Option<PathBuf> {
  None
}

#[cfg(test)]
mod tests {
  use super::*;

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
