//! Sidecar descriptors kept open between holds of a path, so that taking its lock again costs a
//! flock and an fstat instead of an open, a flock, a stat and an fstat.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::lock::{self, Mode, OsLock, Relock, TRUST_NAME_FOR};
use crate::sys;

/// How long a released descriptor stays open unused: long enough to carry a path's back-to-back
/// holds, short enough that an idle process soon keeps nothing open.
const LINGER: Duration = Duration::from_secs(1);
/// Most descriptors kept at once; past it the longest-unused one is closed.
const MAX_KEPT: usize = 64;

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
  if c.kept.len() >= MAX_KEPT && !c.kept.contains_key(sidecar) {
    let oldest = c
      .kept
      .iter()
      .min_by_key(|(_, k)| k.released_at)
      .map(|(p, _)| p.clone());
    if let Some(p) = oldest {
      c.kept.remove(&p);
    }
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

/// Descriptors kept now (for tests).
pub fn kept() -> usize {
  cache().kept.len()
}
