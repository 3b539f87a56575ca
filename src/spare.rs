//! Sidecar descriptors kept open between holds of a path, so that taking its lock again costs a
//! flock and an fstat instead of an open, a flock, a stat and an fstat.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::lock::{self, Mode, OsLock, Relock, TRUST_NAME_FOR};
use crate::sys;

/// How long a released descriptor stays open unused: long enough to carry a path's back-to-back
/// holds, short enough that an idle process soon keeps nothing open.
const LINGER: Duration = Duration::from_secs(1);
/// Most descriptors kept at once; past it the longest-unused one is closed.
const MAX_KEPT: usize = 64;
/// Kept descriptors may take at most this share (1/n) of the process's open-files limit: they
/// only save a syscall or two, and must never be what makes the program's own opens fail. At the
/// usual limits (1024 and up) this is `MAX_KEPT`.
const LIMIT_SHARE: u64 = 16;

struct Kept {
  file: File,
  named_at: Instant,
  released_at: Instant,
}

#[derive(Default)]
struct Cache {
  kept: HashMap<PathBuf, Kept>,
  /// A thread closing descriptors unused for `LINGER` is running.
  reaper: bool,
  /// How many may be kept (see `LIMIT_SHARE`), and when the limit was last read: a process may
  /// lower its limit while it runs (setrlimit, prlimit from outside), and a getrlimit per release
  /// would cost the hot path a syscall, so it is read again once `LINGER` has passed.
  bound: usize,
  bound_read_at: Option<Instant>,
}

impl Cache {
  fn bound(&mut self) -> usize {
    if self.bound_read_at.is_none_or(|t| t.elapsed() >= LINGER) {
      self.bound = bound_for(sys::open_files_limit());
      self.bound_read_at = Some(Instant::now());
    }
    self.bound
  }
}

/// `MAX_KEPT`, or less under a low open-files soft limit (`None`: no limit known).
fn bound_for(limit: Option<u64>) -> usize {
  limit.map_or(MAX_KEPT, |l| {
    usize::try_from(l / LIMIT_SHARE).map_or(MAX_KEPT, |share| share.min(MAX_KEPT))
  })
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

fn cache() -> MutexGuard<'static, Cache> {
  // Holds nothing a panic could leave inconsistent beyond a descriptor kept open.
  CACHE.lock().unwrap_or_else(|p| p.into_inner())
}

/// `lock::try_lock`, on the descriptor the sidecar's last hold kept when there is a fresh one.
pub fn try_lock(sidecar: &Path, mode: Mode) -> Result<Option<OsLock>> {
  let kept = cache().kept.remove(sidecar);
  // Past `TRUST_NAME_FOR` the path is looked at again, by a fresh open. Within it, the link
  // count (the fstat of each hold) shows a sidecar deleted or replaced by a rename over it.
  if let Some(k) = kept.filter(|k| k.named_at.elapsed() < TRUST_NAME_FOR) {
    match lock::relock(k.file, k.named_at, sidecar, mode)? {
      Relock::Held(held) => return Ok(Some(held)),
      Relock::Busy(file) => {
        put(sidecar, file, k.named_at);
        return Ok(None);
      }
      Relock::Gone => {}
    }
  }
  lock::try_lock(sidecar, mode)
}

/// Releases `held`, keeping its descriptor for the sidecar's next hold where the platform allows
/// (`sys::KEEP_SIDECARS`); otherwise closing it.
pub fn release(sidecar: &Path, held: OsLock) {
  if !sys::KEEP_SIDECARS {
    return;
  }
  if let Some((file, named_at)) = held.unlock() {
    put(sidecar, file, named_at);
  }
}

fn put(sidecar: &Path, file: File, named_at: Instant) {
  let mut c = cache();
  let bound = c.bound();
  if bound == 0 {
    return;
  }
  // A loop, not one eviction: the bound may have shrunk since the last release.
  while c.kept.len() >= bound && !c.kept.contains_key(sidecar) {
    let oldest = c
      .kept
      .iter()
      .min_by_key(|(_, k)| k.released_at)
      .map(|(p, _)| p.clone());
    match oldest {
      Some(p) => c.kept.remove(&p),
      None => break,
    };
  }
  c.kept.insert(
    sidecar.to_path_buf(),
    Kept {
      file,
      named_at,
      released_at: Instant::now(),
    },
  );
  if !c.reaper {
    c.reaper = std::thread::Builder::new()
      .name("index-lock-linger".into())
      .spawn(reap)
      .is_ok();
  }
}

/// Closes descriptors unused for `LINGER` (within a quarter of it), until none is left.
fn reap() {
  loop {
    std::thread::sleep(LINGER / 4);
    let mut c = cache();
    c.kept.retain(|_, k| k.released_at.elapsed() < LINGER);
    if c.kept.is_empty() {
      c.reaper = false;
      return;
    }
  }
}

/// Runs `open` (an open of a file a lock needs) and, where it fails for want of descriptors
/// (EMFILE, ENFILE) while some are kept, closes them all and runs it once more: a process near
/// its limit that holds no lock must not be refused one because released locks linger.
pub fn freeing_kept<T>(mut open: impl FnMut() -> Result<T>) -> Result<T> {
  match open() {
    Err(Error::Io { ref source, .. }) if sys::out_of_descriptors(source) && close_all() > 0 => {
      open()
    }
    other => other,
  }
}

/// Closes every kept descriptor and reads the limit again before the next is kept; returns how
/// many were closed.
fn close_all() -> usize {
  let mut c = cache();
  c.bound_read_at = None;
  let n = c.kept.len();
  c.kept.clear();
  n
}

/// Descriptors kept now (for tests).
pub fn kept() -> usize {
  cache().kept.len()
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_bound_is_a_small_share_of_the_open_files_limit_and_at_most_max_kept() {
    assert_eq!(bound_for(None), MAX_KEPT);
    assert_eq!(bound_for(Some(u64::MAX)), MAX_KEPT);
    assert_eq!(bound_for(Some(1024)), MAX_KEPT);
    assert_eq!(bound_for(Some(64)), 4);
    assert_eq!(bound_for(Some(10)), 0);
  }
}
