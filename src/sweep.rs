//! Removal of temp files orphaned by writers that died between creating and renaming them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::atomic::MAX_NAME_IN_TEMP;
use crate::error::{Error, Result};
use crate::sys;

/// A temp file this old is an orphan even if a process with its pid runs (pid reuse, or a writer
/// in another pid namespace that shares the directory).
pub const MAX_TEMP_AGE: Duration = Duration::from_secs(15 * 60);

/// Directory mtimes younger than this are not trusted to prove "nothing changed": timestamps
/// tick coarsely, so a temp file created in the same tick as our last scan would be missed.
const MTIME_TRUST: Duration = Duration::from_secs(1);

/// What the last scan of a directory saw and cost.
struct Scan {
  mtime: SystemTime,
  at: Instant,
  cost: Duration,
}

/// Directories scanned, so that an unchanged directory is not read again on every exclusive
/// acquisition, and a busy one (each new file changes its mtime) is read at most every
/// `MIN_SCAN_GAP`, or 20 times its scan cost, whichever is longer: a directory of thousands of
/// files must not be read once per lock. Bounded: cleared when it grows past `CACHE_MAX`.
static SCANNED: LazyLock<Mutex<HashMap<PathBuf, Scan>>> =
  LazyLock::new(|| Mutex::new(HashMap::new()));
const CACHE_MAX: usize = 4096;
const MIN_SCAN_GAP: Duration = Duration::from_millis(100);

/// The pid in a temp name of `target_name` (`.<name>.<pid>.<tid>.<n>.<random>.tmp`), or `None`
/// when `entry` is not one of its temp files.
fn temp_owner(entry: &[u8], target_name: &[u8]) -> Option<u32> {
  let kept = sys::name_prefix(target_name, MAX_NAME_IN_TEMP);
  let rest = entry
    .strip_prefix(b".")?
    .strip_prefix(kept)?
    .strip_prefix(b".")?;
  let rest = std::str::from_utf8(rest.strip_suffix(b".tmp")?).ok()?;
  let parts: Vec<&str> = rest.split('.').collect();
  let [pid, tid, n, random] = parts[..] else {
    return None;
  };
  let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
  let hex = random.len() == 8 && random.bytes().all(|b| b.is_ascii_hexdigit());
  if !(numeric(pid) && numeric(tid) && numeric(n) && hex) {
    return None;
  }
  pid.parse().ok()
}

fn alive(pid: u32) -> bool {
  sys::pid_alive(pid)
}

/// A temp file of some writer of a data file.
#[derive(Debug, Clone)]
pub struct TempFile {
  pub name: String,
  pub pid: u32,
  /// Its writer still runs on this host.
  pub alive: bool,
  pub age: Duration,
}

impl TempFile {
  /// Left behind: its writer is gone, or it is older than any save takes.
  pub fn orphaned(&self) -> bool {
    !self.alive || self.age > MAX_TEMP_AGE
  }
}

/// The temp files beside the data file `target` (resolved) that index-lock's writers made.
pub fn temp_files(target: &Path) -> Result<Vec<TempFile>> {
  let dir = target.parent().expect("resolved paths have a directory");
  let name = target
    .file_name()
    .expect("resolved paths name a file")
    .as_encoded_bytes();
  let now = SystemTime::now();
  let mut found = Vec::new();
  let entries = fs::read_dir(dir).map_err(|e| Error::io(e, "scandir", dir))?;
  for entry in entries.flatten() {
    let file_name = entry.file_name();
    let Some(pid) = temp_owner(file_name.as_encoded_bytes(), name) else {
      continue;
    };
    let age = entry
      .metadata()
      .ok()
      .and_then(|m| m.modified().ok())
      .and_then(|t| now.duration_since(t).ok())
      .unwrap_or_default();
    found.push(TempFile {
      name: file_name.to_string_lossy().into_owned(),
      pid,
      alive: alive(pid),
      age,
    });
  }
  found.sort_by(|a, b| a.name.cmp(&b.name));
  Ok(found)
}

/// Removes the orphaned temp files of the data file `target` (resolved): those whose writer is
/// gone from this host, or that are older than `MAX_TEMP_AGE`. A live writer's file is kept.
/// Returns the names removed.
pub fn sweep(target: &Path) -> Result<Vec<String>> {
  let dir = target.parent().expect("resolved paths have a directory");
  let mut removed = Vec::new();
  for temp in temp_files(target)? {
    if temp.orphaned() && fs::remove_file(dir.join(&temp.name)).is_ok() {
      removed.push(temp.name);
    }
  }
  Ok(removed)
}

/// `sweep`, skipped when the directory has not changed since the last scan (the usual case, so
/// that an exclusive acquisition costs one `stat` here, not a directory read) or was scanned
/// very recently. Errors are ignored: cleaning up is a courtesy to the next reader of the
/// directory, never a reason to fail.
pub fn sweep_if_changed(target: &Path) {
  let Some(dir) = target.parent() else {
    return;
  };
  let Ok(mtime) = fs::metadata(dir).and_then(|m| m.modified()) else {
    return;
  };
  let settled = SystemTime::now()
    .duration_since(mtime)
    .is_ok_and(|age| age > MTIME_TRUST);
  {
    let cache = SCANNED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(last) = cache.get(dir) {
      let unchanged = settled && last.mtime == mtime;
      let recent = last.at.elapsed() < MIN_SCAN_GAP.max(last.cost * 20);
      if unchanged || recent {
        return;
      }
    }
  }
  let started = Instant::now();
  if sweep(target).is_ok() {
    let cost = started.elapsed();
    let mut cache = SCANNED.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= CACHE_MAX {
      cache.clear();
    }
    // Our own removals changed the directory; remember its state after them.
    if let Ok(after) = fs::metadata(dir).and_then(|m| m.modified()) {
      cache.insert(
        dir.to_path_buf(),
        Scan {
          mtime: after,
          at: Instant::now(),
          cost,
        },
      );
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::atomic::temp_name;

  #[test]
  fn recognises_only_temp_names_of_its_target() {
    let ours = temp_name(b"index.json");
    assert_eq!(
      temp_owner(ours.as_encoded_bytes(), b"index.json"),
      Some(std::process::id())
    );
    assert_eq!(temp_owner(ours.as_encoded_bytes(), b"other.json"), None);
    assert_eq!(temp_owner(b"index.json", b"index.json"), None);
    assert_eq!(temp_owner(b"index.json.lock", b"index.json"), None);
    assert_eq!(
      temp_owner(b".index.json.12.34.5.0badbeef.tmp", b"index.json"),
      Some(12)
    );
    assert_eq!(
      temp_owner(b".index.json.12.34.5.nothex!!.tmp", b"index.json"),
      None
    );
    assert_eq!(temp_owner(b".index.json.tmp", b"index.json"), None);
    let long = [b'a'; 250];
    assert!(temp_owner(temp_name(&long).as_encoded_bytes(), &long).is_some());
  }

  #[test]
  fn removes_dead_writers_files_and_keeps_live_ones() {
    let d = std::env::temp_dir().join(format!("index-lock-sweep-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    let target = d.join("index.json");
    // A pid that cannot be running: above the kernel's pid_max.
    let dead = d.join(".index.json.4194305.1.1.00000000.tmp");
    let live = d.join(temp_name(b"index.json"));
    let other = d.join(".notes.json.4194305.1.1.00000000.tmp");
    for f in [&dead, &live, &other, &target] {
      fs::write(f, "x").unwrap();
    }
    let removed = sweep(&target).unwrap();
    assert_eq!(removed, vec![".index.json.4194305.1.1.00000000.tmp"]);
    assert!(live.exists() && other.exists() && target.exists());
    fs::remove_dir_all(d).unwrap();
  }
}
