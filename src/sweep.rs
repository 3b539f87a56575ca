//! Removal of temp files orphaned by writers that died between creating and renaming them.
//!
//! A writer holds an exclusive flock on its temp file from the moment it exists until the rename
//! (see `atomic::create_temp`; on Windows a LockFileEx on one byte far past its end, see
//! `sys::lock_temp`), and the kernel drops that lock when the writer dies. So a temp
//! file is orphaned exactly when its lock is free: no pid is consulted, which holds across pid
//! namespaces (containers sharing a volume) and, where flock is coherent, across hosts.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::atomic::MAX_NAME_IN_TEMP;
use crate::error::{Error, Result};
use crate::sys;

/// Directory mtimes younger than this are not trusted to prove "nothing changed": timestamps
/// tick coarsely, so a temp file created in the same tick as our last scan would be missed.
const MTIME_TRUST: Duration = Duration::from_secs(1);

/// What the last scan of a directory saw and cost.
struct Scan {
  mtime: SystemTime,
  at: Instant,
  cost: Duration,
  /// When the directory's mtime was last compared with `mtime`.
  looked: Instant,
}

/// Directories scanned, so that an unchanged directory is not read again on every exclusive
/// acquisition, and a busy one (each new file changes its mtime) is read at most every
/// `MIN_SCAN_GAP`, or 20 times its scan cost, whichever is longer: a directory of thousands of
/// files must not be read once per lock. Bounded: cleared when it grows past `CACHE_MAX`.
static SCANNED: LazyLock<Mutex<HashMap<PathBuf, Scan>>> =
  LazyLock::new(|| Mutex::new(HashMap::new()));
const CACHE_MAX: usize = 4096;
/// Directories an automatic sweep is scanning now (bounded by the threads doing it).
static SWEEPING: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(|| Mutex::new(HashSet::new()));
const MIN_SCAN_GAP: Duration = Duration::from_millis(100);
/// How long after a look found the directory unchanged the next exclusive acquisition skips
/// looking: it keeps a stat off the hot path of back-to-back locks, and delays finding an
/// orphan by no more than this.
const LOOK_GAP: Duration = Duration::from_millis(10);

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

/// What a temp file's lock says about its writer.
enum Probe {
  /// Its writer holds it: a save is under way.
  Held,
  /// Nobody holds it; the returned descriptor now holds it shared, so no writer can take it
  /// until it is dropped.
  Free(File),
  /// Cannot be told (the file is not readable by us, or the filesystem has no flock). Kept.
  Unknown,
  /// Gone, or not a regular file (not one of ours).
  Skip,
}

fn probe(path: &Path) -> Probe {
  // Read-only and shared: needs only read permission, and a shared lock still conflicts with
  // the writer's exclusive one (and, on NFS, a shared lock is all a read-only descriptor gets).
  let file = match sys::open_temp_probe(path) {
    Ok(f) => f,
    Err(e) if e.kind() == io::ErrorKind::NotFound => return Probe::Skip,
    Err(e) if e.raw_os_error() == Some(sys::errno::ELOOP) => return Probe::Skip,
    Err(_) => return Probe::Unknown,
  };
  if !file.metadata().is_ok_and(|m| m.is_file()) {
    return Probe::Skip;
  }
  match sys::probe_temp(&file) {
    Ok(true) => Probe::Free(file),
    Ok(false) => Probe::Held,
    Err(_) => Probe::Unknown,
  }
}

/// True while `path` still names the file `file` has open.
fn still_named(file: &File, path: &Path) -> bool {
  sys::same_file(file, path)
}

/// A temp file of some writer of a data file.
#[derive(Debug, Clone)]
pub struct TempFile {
  /// Its name, for display: a name that is not valid UTF-8 (a cut that halved a character of the
  /// data file's name) shows U+FFFD where its bytes do not decode.
  pub name: String,
  /// The pid its name carries (in its writer's pid namespace; informative only).
  pub pid: u32,
  /// Its writer holds its lock: a save is under way. Also true where that cannot be told (a
  /// file we may not read, a filesystem without flock): such a file is never removed.
  pub alive: bool,
  pub age: Duration,
}

impl TempFile {
  /// Left behind by a writer that is gone: `sweep` removes it.
  pub fn orphaned(&self) -> bool {
    !self.alive
  }
}

/// index-lock's temp file names beside the data file `target` (resolved), with their pids. The
/// names stay OS strings: a temp name is any bytes (the target's name cut to a byte count may
/// end in half a character), and only the exact bytes name the file.
/// On a case-insensitive volume the names are compared case-folded (`sys::fold_key`), as the lock
/// key is: a writer's temp name carries its caller's spelling of the name, and the key (or a
/// sweep's caller) may spell it otherwise.
fn candidates(target: &Path) -> Result<Vec<(OsString, u32, Option<fs::Metadata>)>> {
  let dir = target.parent().expect("resolved paths have a directory");
  let folded = sys::fold_key(target);
  let name = folded
    .as_deref()
    .unwrap_or(target)
    .file_name()
    .expect("resolved paths name a file")
    .as_encoded_bytes();
  let mut found = Vec::new();
  let entries = fs::read_dir(dir).map_err(|e| Error::io(e, "scandir", dir))?;
  for entry in entries.flatten() {
    let file_name = entry.file_name();
    let owner = match folded {
      Some(_) => temp_owner(&sys::fold_name(file_name.as_encoded_bytes()), name),
      None => temp_owner(file_name.as_encoded_bytes(), name),
    };
    let Some(pid) = owner else {
      continue;
    };
    // Symlinks, FIFOs and the like at temp names are not ours to judge or remove.
    if entry.file_type().is_ok_and(|t| !t.is_file()) {
      continue;
    }
    found.push((file_name, pid, entry.metadata().ok()));
  }
  found.sort_by(|a, b| a.0.cmp(&b.0));
  Ok(found)
}

/// The temp files beside the data file `target` (resolved) that index-lock's writers made, each
/// probed by its lock (and released at once: a probe removes nothing).
pub fn temp_files(target: &Path) -> Result<Vec<TempFile>> {
  let dir = target.parent().expect("resolved paths have a directory");
  let now = SystemTime::now();
  let mut found = Vec::new();
  for (name, pid, meta) in candidates(target)? {
    let alive = match probe(&dir.join(&name)) {
      Probe::Skip => continue,
      Probe::Free(_) => false,
      Probe::Held | Probe::Unknown => true,
    };
    let age = meta
      .and_then(|m| m.modified().ok())
      .and_then(|t| now.duration_since(t).ok())
      .unwrap_or_default();
    found.push(TempFile {
      name: name.to_string_lossy().into_owned(),
      pid,
      alive,
      age,
    });
  }
  Ok(found)
}

/// What a sweep did: the names removed (for display, as `TempFile::name`), and each removal that
/// failed (an `unlink` error naming the file).
#[derive(Debug, Default)]
pub struct Swept {
  pub removed: Vec<String>,
  pub errors: Vec<Error>,
}

/// Removes the orphaned temp files of the data file `target` (resolved): those whose lock no
/// writer holds. Each is unlinked while this sweep holds its lock and only if the name still
/// names the inode it locked, so a writer that created the file a moment ago cannot lose it
/// (its own lock attempt fails, and it moves on to a fresh name). A live writer's file is kept.
pub fn sweep(target: &Path) -> Result<Swept> {
  let dir = target.parent().expect("resolved paths have a directory");
  let mut swept = Swept::default();
  for (name, _, _) in candidates(target)? {
    let path = dir.join(&name);
    let Probe::Free(file) = probe(&path) else {
      continue;
    };
    if !still_named(&file, &path) {
      continue;
    }
    match sys::remove_temp(&path) {
      Ok(()) => swept.removed.push(name.to_string_lossy().into_owned()),
      // Another sweep, or the writer giving up on the name, got there first.
      Err(e) if e.kind() == io::ErrorKind::NotFound => {}
      Err(e) => swept.errors.push(Error::io(e, "unlink", &path)),
    }
    drop(file);
  }
  Ok(swept)
}

/// `sweep`, skipped when the directory has not changed since the last scan (the usual case, so
/// that an exclusive acquisition costs one `stat` here, not a directory read) or was scanned
/// very recently; the scan itself runs on a thread of its own, alongside the holder (which is
/// safe: a live writer's temp file is flocked, and only unlocked ones are removed). Errors are
/// ignored: cleaning up is a courtesy to the next reader of the directory, never a reason to fail.
pub fn sweep_if_changed(target: &Path) {
  let Some(dir) = target.parent() else {
    return;
  };
  {
    let cache = SCANNED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(last) = cache.get(dir) {
      let recent = last.at.elapsed() < MIN_SCAN_GAP.max(last.cost * 20);
      if recent || last.looked.elapsed() < LOOK_GAP {
        return;
      }
    }
  }
  let Ok(mtime) = fs::metadata(dir).and_then(|m| m.modified()) else {
    return;
  };
  let settled = SystemTime::now()
    .duration_since(mtime)
    .is_ok_and(|age| age > MTIME_TRUST);
  {
    let mut cache = SCANNED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(last) = cache.get_mut(dir) {
      if settled && last.mtime == mtime {
        last.looked = Instant::now();
        return;
      }
    }
  }
  // The scan reads the whole directory (thousands of entries, perhaps not cached) and probes each
  // temp file: on a thread of its own, since the caller may be the event loop. One at a time per
  // directory; a look that finds one running leaves the directory to it.
  if !SWEEPING
    .lock()
    .unwrap_or_else(|p| p.into_inner())
    .insert(dir.to_path_buf())
  {
    return;
  }
  let target = target.to_path_buf();
  let spawned = std::thread::Builder::new()
    .name("index-lock-sweep".into())
    .spawn(move || {
      scan(&target);
      if let Some(dir) = target.parent() {
        SWEEPING
          .lock()
          .unwrap_or_else(|p| p.into_inner())
          .remove(dir);
      }
    });
  if spawned.is_err() {
    SWEEPING
      .lock()
      .unwrap_or_else(|p| p.into_inner())
      .remove(dir);
  }
}

/// Sweeps the directory of `target` and remembers what it saw (see `sweep_if_changed`).
fn scan(target: &Path) {
  let Some(dir) = target.parent() else {
    return;
  };
  crate::atomic::pause_point("sweep-scan", dir);
  let started = Instant::now();
  // Failures are left for `sweep()` and `index-lock status` to report.
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
          looked: Instant::now(),
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

  #[cfg(unix)]
  #[test]
  fn temps_whose_cut_name_halves_a_character_are_listed_and_swept() {
    let d = crate::testdir::fresh("sweep-cut");
    // 'é' is bytes 159-160: the temp name ends its copy of the name in 0xC3, not valid UTF-8.
    let name = format!("{}é.json", "a".repeat(159));
    let target = d.join(&name);
    let tmp = d.join(temp_name(name.as_bytes()));
    assert!(tmp.file_name().unwrap().to_str().is_none());
    fs::write(&tmp, "partial").unwrap();
    let listed = temp_files(&target).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].orphaned());
    assert_eq!(sweep(&target).unwrap().removed.len(), 1);
    assert!(!tmp.exists());
    fs::remove_dir_all(d).unwrap();
  }

  #[test]
  fn on_a_case_insensitive_volume_temps_of_any_spelling_are_the_targets() {
    let d = crate::testdir::fresh("sweep-case");
    // Written through "Index.json"; the lock key (what the automatic sweep gets) is folded, and a
    // caller may spell it otherwise still.
    let orphan = d.join(temp_name(b"Index.json"));
    fs::write(&orphan, "partial").unwrap();
    sys::force_fold_for_test(true);
    let folded = sys::fold_key(&d.join("Index.json")).unwrap();
    let listed = temp_files(&folded).unwrap();
    let swept = sweep(&d.join("INDEX.JSON"));
    sys::force_fold_for_test(false);
    assert_eq!(listed.len(), 1);
    assert!(listed[0].orphaned());
    assert_eq!(
      swept.unwrap().removed,
      vec![orphan.file_name().unwrap().to_string_lossy().into_owned()]
    );
    assert!(!orphan.exists());
    fs::remove_dir_all(d).unwrap();
  }

  #[test]
  fn removes_unlocked_temps_and_keeps_locked_ones_whatever_their_pid() {
    let d = crate::testdir::fresh("sweep");
    let target = d.join("index.json");
    // A pid that cannot be running, but its file is locked (a writer in another pid namespace).
    let foreign = d.join(".index.json.4194305.1.1.00000000.tmp");
    // Our own pid, but nobody holds the file.
    let dead = d.join(temp_name(b"index.json"));
    let other = d.join(".notes.json.4194305.1.1.00000000.tmp");
    for f in [&foreign, &dead, &other, &target] {
      fs::write(f, "x").unwrap();
    }
    let writer = fs::OpenOptions::new().write(true).open(&foreign).unwrap();
    assert!(sys::lock_temp(&writer).unwrap());
    let listed: Vec<(String, bool)> = temp_files(&target)
      .unwrap()
      .into_iter()
      .map(|t| (t.name.clone(), t.orphaned()))
      .collect();
    let dead_name = dead.file_name().unwrap().to_string_lossy().into_owned();
    let foreign_name = ".index.json.4194305.1.1.00000000.tmp".to_string();
    let mut want = vec![(dead_name.clone(), true), (foreign_name.clone(), false)];
    want.sort();
    assert_eq!(listed, want);
    let swept = sweep(&target).unwrap();
    assert_eq!(swept.removed, vec![dead_name]);
    assert!(swept.errors.is_empty());
    assert!(foreign.exists() && other.exists() && target.exists());
    drop(writer);
    assert_eq!(sweep(&target).unwrap().removed, vec![foreign_name]);
    fs::remove_dir_all(d).unwrap();
  }
}
