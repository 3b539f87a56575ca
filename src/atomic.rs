//! Crash-safe replacement of a file: unique temp file, fsync, rename over the target, fsync dir.

use std::ffi::OsString;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::path;
use crate::sys;

/// Longest slice of the target's name kept in a temp name, so that the decorations never push
/// a legal target name past NAME_MAX (255 bytes).
pub const MAX_NAME_IN_TEMP: usize = 160;
/// Fresh names tried when a temp name is taken (another process, a planted file or symlink).
const MAX_TEMP_ATTEMPTS: usize = 16;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Crash tests stop a save at a named step
/// (`INDEX_LOCK_PAUSE=after-create|before-rename|before-dir-fsync`, or an automatic sweep's scan:
/// `sweep-scan`) to SIGKILL the writer exactly
/// there, or to look at its temp file and let it go on once the file `INDEX_LOCK_RESUME` names
/// exists. Only the `fault-injection` build has this.
#[cfg(feature = "fault-injection")]
pub(crate) fn pause_point(step: &str, tmp: &Path) {
  if std::env::var("INDEX_LOCK_PAUSE").as_deref() == Ok(step) {
    eprintln!("INDEX_LOCK_PAUSED {step} {}", tmp.display());
    let resume = std::env::var_os("INDEX_LOCK_RESUME").map(PathBuf::from);
    loop {
      match &resume {
        Some(r) if r.exists() => return,
        Some(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
        None => std::thread::sleep(std::time::Duration::from_secs(3600)),
      }
    }
  }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn pause_point(_step: &str, _tmp: &Path) {}

/// 32 random bits from the hasher keys std seeds from the OS, so two containers whose writers
/// share a pid (each is pid 1 in its own namespace) still pick different names.
fn random32() -> u32 {
  let mut h = std::collections::hash_map::RandomState::new().build_hasher();
  h.write_u64(COUNTER.load(Ordering::Relaxed));
  h.finish() as u32
}

/// `.index.json.<pid>.<tid>.<n>.<random>.tmp`: hidden, unique per process and thread, and never
/// ending in the data file's extension (directory scans for `*.json` must not pick it up).
pub fn temp_name(target_name: &[u8]) -> OsString {
  let kept = sys::name_prefix(target_name, MAX_NAME_IN_TEMP);
  let mut name = b".".to_vec();
  name.extend_from_slice(kept);
  name.extend_from_slice(
    format!(
      ".{}.{}.{}.{:08x}.tmp",
      std::process::id(),
      sys::thread_id(),
      COUNTER.fetch_add(1, Ordering::Relaxed),
      random32()
    )
    .as_bytes(),
  );
  sys::os_string(name)
}

/// Creates a new temp file beside the target under the first free name `next_name` gives, never
/// opening an existing file or following a planted symlink (`sys::create_temp`), with
/// permission bits `mode` (less the umask) from the first moment, and holding an exclusive flock
/// on it: that lock is what tells a sweep the file is being written (see `sweep`), wherever the
/// writer runs.
fn create_temp(
  dir: &Path,
  next_name: &mut dyn FnMut() -> OsString,
  given: &Path,
  mode: u32,
) -> Result<(PathBuf, File)> {
  create_temp_with(dir, next_name, given, mode, &mut |_| {})
}

/// `create_temp`, running `created` between creating a file and locking it (tests race a sweep
/// there).
fn create_temp_with(
  dir: &Path,
  next_name: &mut dyn FnMut() -> OsString,
  given: &Path,
  mode: u32,
  created: &mut dyn FnMut(&Path),
) -> Result<(PathBuf, File)> {
  for _ in 0..MAX_TEMP_ATTEMPTS {
    let tmp = dir.join(next_name());
    let file = match sys::create_temp(&tmp, mode) {
      Ok(f) => f,
      Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
      Err(e) => return Err(Error::io(e, "open", given)),
    };
    created(&tmp);
    if claim(&file, &tmp) {
      return Ok((tmp, file));
    }
  }
  Err(Error::errno(sys::errno::EEXIST, "open", given))
}

/// Locks a temp file just created. A sweep may have opened it in the instant between creation
/// and this lock, seen it unlocked and locked it first: then the file is (or is about to be)
/// unlinked, and the caller must start over under a fresh name. False in that case.
fn claim(file: &File, tmp: &Path) -> bool {
  match sys::lock_temp(file) {
    Ok(true) => {}
    Ok(false) => {
      // A sweep (or a status probe, which unlinks nothing) holds it. The name is ours alone, so
      // removing it can only remove this file; a sweep that gets there first is fine too.
      let _ = fs::remove_file(tmp);
      return false;
    }
    // Where the filesystem has no flock the save goes on unlocked; sweeps there cannot lock
    // the file either, and keep it.
    Err(_) => return true,
  }
  // Locked, but a sweep may have unlinked the name just before: the lock must be on the file
  // the name still names.
  sys::same_file(file, tmp)
}

/// Replaces the file `given` names with `data` so that readers see the old or the new content,
/// never a mix, and (with `durable`) so the new content survives a power cut once this returns.
/// Permission bits come from `mode`, else from the file being replaced, else 0o666 & ~umask
/// (Windows keeps only "read-only" of them); the temp file is never more open than that at any
/// moment. A symlink at `given` stays a
/// symlink: its target is replaced. A FIFO, socket or device there is refused, never replaced.
///
/// If the final directory fsync fails, the rename has happened: the file holds `data`, but a
/// power cut may still bring back the old content. The error says so by its syscall (`fsync`)
/// and path (the directory), and is `Error::Renamed` (`renamed: true` in JS).
///
/// `pinned`: `given` is a file an update resolved (and locked) at its call; it is written as it
/// is, and a symlink found there is refused (`Error::Repointed`) instead of followed. One
/// planted after this check is replaced by the rename, never followed.
pub fn write(
  given: &str,
  data: &[u8],
  durable: bool,
  mode: Option<u32>,
  pinned: bool,
) -> Result<()> {
  write_with(
    given,
    &mut |file| file.write_all(data),
    durable,
    mode,
    pinned,
  )
}

/// `write` of the content `fill` writes into the temp file: a big document streams from its
/// formatter instead of being held whole a second time. An error of `fill` is the write's.
pub fn write_with(
  given: &str,
  fill: &mut dyn FnMut(&mut fs::File) -> io::Result<()>,
  durable: bool,
  mode: Option<u32>,
  pinned: bool,
) -> Result<()> {
  let target = if pinned {
    refuse_repointed(Path::new(given), "open")?;
    PathBuf::from(given)
  } else {
    path::resolve(given)?
  };
  let given = Path::new(given);
  let dir = target.parent().expect("resolved paths are absolute files");
  let name = target.file_name().expect("resolved paths name a file");
  let previous = retry_stale(|| match fs::symlink_metadata(&target) {
    Ok(m) if m.is_dir() => Err(Error::errno(sys::errno::EISDIR, "open", given)),
    Ok(m) => match sys::special_kind(m.file_type()) {
      Some(kind) => Err(Error::NotRegular {
        kind,
        syscall: "open",
        path: given.to_path_buf(),
      }),
      None => Ok(Some(m)),
    },
    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
    Err(e) => Err(Error::io(e, "stat", given)),
  })?;
  let perm = sys::final_mode(mode, previous.as_ref());
  // With known final bits, start owner-only and loosen once the owner is right: a private
  // file's new content is never readable by others, not even before the fchmod. Without them
  // the file gets 0o666 & ~umask, its final bits, at creation.
  let create_mode = perm.map_or(0o666, |p| p & 0o700);
  let (tmp, mut file) = create_temp(
    dir,
    &mut || temp_name(name.as_encoded_bytes()),
    given,
    create_mode,
  )?;
  pause_point("after-create", &tmp);
  let staged = (|| -> Result<()> {
    sys::stage_temp(&file, &target, previous.as_ref(), perm).map_err(|e| Error::os(e, given))?;
    fill(&mut file).map_err(|e| Error::io(e, "write", given))?;
    if durable {
      // F_FULLFSYNC on macOS (a plain fsync there leaves the data in the drive's cache),
      // FlushFileBuffers on Windows.
      file.sync_all().map_err(|e| Error::io(e, "fsync", given))?;
    }
    pause_point("before-rename", &tmp);
    sys::replace(&tmp, &target).map_err(|e| Error::io(e, "rename", given))
  })();
  if let Err(e) = staged {
    // Unlinked while still locked, so no sweep can count it as an orphan in between.
    let _ = sys::remove_temp(&tmp);
    return Err(e);
  }
  // The temp name is gone with the rename; only now may its lock go.
  drop(file);
  pause_point("before-dir-fsync", &tmp);
  if durable {
    sys::sync_dir(dir).map_err(|e| Error::io(e, "fsync", dir).renamed())?;
  }
  Ok(())
}

/// The whole content of `given`, or `None` when there is no such file. A FIFO, socket or device
/// is refused (`EFTYPE`) without blocking on it.
pub fn read(given: &str, pinned: bool) -> Result<Option<Vec<u8>>> {
  if given.as_bytes().contains(&0) || given.is_empty() {
    // Same argument checks and messages as every other path argument.
    path::resolve(given)?;
  }
  let p = Path::new(given);
  let not_regular = |kind| Error::NotRegular {
    kind,
    syscall: "open",
    path: p.to_path_buf(),
  };
  retry_stale(|| {
    // Looked at before opening, so that opening has no side effect on a device; O_NONBLOCK in
    // case a FIFO appears in between (opening one for reading would wait for a writer). A pinned
    // read's look at the path itself (it is no symlink) serves for both.
    let seen = if pinned {
      refuse_repointed(p, "open")?
    } else {
      fs::metadata(p).ok()
    };
    if let Some(kind) = seen.and_then(|m| sys::special_kind(m.file_type())) {
      return Err(not_regular(kind));
    }
    let mut file = match sys::open_read(p, !pinned) {
      Ok(f) => f,
      Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
      Err(e) if pinned && sys::is_symlink_refused(&e) => {
        return Err(Error::Repointed {
          syscall: "open",
          path: p.to_path_buf(),
        })
      }
      // Windows refuses to open a directory as a file (access denied); Unix opens it and the
      // read says EISDIR. Report both the Unix way, as Node does.
      Err(_) if p.is_dir() => return Err(Error::errno(sys::errno::EISDIR, "read", p)),
      Err(e) => return Err(Error::io(e, "open", p)),
    };
    let meta = file.metadata().map_err(|e| Error::io(e, "fstat", p))?;
    if let Some(kind) = sys::special_kind(meta.file_type()) {
      return Err(not_regular(kind));
    }
    // Sized from the fstat above, and read through `Take`: `File::read_to_end` would fstat and
    // lseek again to size its buffer.
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).saturating_add(1));
    (&mut file)
      .take(u64::MAX)
      .read_to_end(&mut buf)
      .map_err(|e| Error::io(e, "read", p))?;
    Ok(Some(buf))
  })
}

/// Largest file `read_cached` reads on the calling thread: beyond it the copy itself would hold
/// the JS thread up longer than the threadpool round trip it saves.
pub const CACHED_READ_MAX: usize = 1 << 20;

/// `read`, on the calling thread and only if that cannot wait for a disk or a network: a small
/// regular file on a local filesystem, wholly in the page cache (Linux; see
/// `sys::read_cached`). Anything else, errors included, is `WouldBlock`, for `read` on the
/// threadpool to do and report exactly as before.
pub fn read_cached(given: &str, pinned: bool) -> sys::Cached {
  sys::read_cached(
    Path::new(given),
    CACHED_READ_MAX,
    !pinned,
    crate::fstype::serves_cached_reads,
  )
}

/// Refuses `path`, a file an update resolved (and locked) at its call (`pinned`), if it resolves
/// elsewhere now: a symlink put in its place, or in place of a directory on its way, while the
/// update waited leads to a file whose lock is not held. (The open that follows refuses a final
/// symlink planted after this look; the rename of a write replaces one instead of following it.)
/// Returns what it saw of the path (no symlink), if anything is there.
fn refuse_repointed(path: &Path, syscall: &'static str) -> Result<Option<fs::Metadata>> {
  let seen = fs::symlink_metadata(path).ok();
  let repointed = match &seen {
    Some(m) if m.file_type().is_symlink() => true,
    _ => path::resolve(&path.to_string_lossy()).is_ok_and(|now| now != path),
  };
  if repointed {
    return Err(Error::Repointed {
      syscall,
      path: path.to_path_buf(),
    });
  }
  Ok(seen)
}

/// Backoffs between attempts of an operation that failed with ESTALE.
const STALE_BACKOFF_MS: [u64; 6] = [1, 2, 5, 10, 20, 50];

/// Runs `op` again while it fails with ESTALE ("stale file handle"): on distributed filesystems
/// a client can still hold the handle of a file that another host's rename just replaced, and
/// opening the path again finds the new one. A persistent ESTALE is returned as is.
pub fn retry_stale<T>(mut op: impl FnMut() -> Result<T>) -> Result<T> {
  for pause in STALE_BACKOFF_MS {
    match op() {
      Err(Error::Io { ref source, .. }) if sys::is_stale(source) => {
        std::thread::sleep(std::time::Duration::from_millis(pause));
      }
      other => return other,
    }
  }
  op()
}

#[cfg(test)]
mod tests {
  use super::*;

  fn dir(tag: &str) -> PathBuf {
    crate::testdir::fresh(&format!("atomic-{tag}"))
  }

  fn entries(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(d)
      .unwrap()
      .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
      .collect();
    v.sort();
    v
  }

  #[cfg(unix)]
  #[test]
  fn replaces_content_keeps_mode_and_leaves_no_temp() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = dir("mode");
    let p = d.join("index.json");
    fs::write(&p, "old").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    write(p.to_str().unwrap(), b"new", true, None, false).unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"new");
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
    assert_eq!(entries(&d), vec!["index.json"]);
    write(p.to_str().unwrap(), b"x", false, Some(0o600), false).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
    fs::remove_dir_all(d).unwrap();
  }

  #[cfg(unix)]
  #[test]
  fn writing_through_a_symlink_replaces_its_target() {
    use std::os::unix::fs::symlink;
    let d = dir("link");
    fs::write(d.join("real.json"), "old").unwrap();
    symlink("real.json", d.join("link.json")).unwrap();
    write(
      d.join("link.json").to_str().unwrap(),
      b"new",
      true,
      None,
      false,
    )
    .unwrap();
    assert!(fs::symlink_metadata(d.join("link.json"))
      .unwrap()
      .file_type()
      .is_symlink());
    assert_eq!(fs::read(d.join("real.json")).unwrap(), b"new");
    fs::remove_dir_all(d).unwrap();
  }

  #[cfg(unix)]
  #[test]
  fn pinned_io_refuses_a_symlink_and_touches_neither_file() {
    use std::os::unix::fs::symlink;
    let d = dir("pinned");
    fs::write(d.join("theirs.json"), "theirs").unwrap();
    symlink("theirs.json", d.join("mine.json")).unwrap();
    let mine = d.join("mine.json");
    let err = write(mine.to_str().unwrap(), b"new", true, None, true).unwrap_err();
    assert_eq!(err.code(), "ELOOP");
    assert_eq!(
      read(mine.to_str().unwrap(), true).unwrap_err().code(),
      "ELOOP"
    );
    assert_eq!(fs::read(d.join("theirs.json")).unwrap(), b"theirs");
    assert!(fs::symlink_metadata(&mine)
      .unwrap()
      .file_type()
      .is_symlink());
    assert_eq!(entries(&d), vec!["mine.json", "theirs.json"]);
    fs::remove_dir_all(d).unwrap();
  }

  #[test]
  fn failures_keep_the_old_content_and_no_temp() {
    let d = dir("fail");
    fs::create_dir(d.join("sub.json")).unwrap();
    let err = write(
      d.join("sub.json").to_str().unwrap(),
      b"x",
      true,
      None,
      false,
    )
    .unwrap_err();
    assert_eq!(err.code(), "EISDIR");
    let err = write(
      d.join("nope/x.json").to_str().unwrap(),
      b"x",
      true,
      None,
      false,
    )
    .unwrap_err();
    assert_eq!(err.code(), "ENOENT");
    assert_eq!(entries(&d), vec!["sub.json"]);
    fs::remove_dir_all(d).unwrap();
  }

  #[test]
  fn temp_names_are_hidden_unique_and_bounded() {
    let a = temp_name(b"index.json");
    let b = temp_name(b"index.json");
    assert_ne!(a, b);
    let s = a.to_string_lossy();
    assert!(s.starts_with(".index.json."), "{s}");
    assert!(s.ends_with(".tmp"));
    assert!(temp_name(&[b'a'; 255]).len() < 255);
  }

  #[cfg(unix)]
  #[test]
  fn planted_files_and_symlinks_at_temp_names_are_never_opened() {
    let d = dir("planted");
    let victim = d.join("victim");
    std::os::unix::fs::symlink(&victim, d.join(".t.1.tmp")).unwrap();
    fs::write(d.join(".t.2.tmp"), "someone else's").unwrap();
    let mut names = [".t.1.tmp", ".t.2.tmp", ".t.3.tmp"]
      .into_iter()
      .map(OsString::from);
    let (tmp, _) = create_temp(&d, &mut || names.next().unwrap(), Path::new("t"), 0o600).unwrap();
    assert_eq!(tmp, d.join(".t.3.tmp"));
    assert!(!victim.exists());
    assert_eq!(fs::read(d.join(".t.2.tmp")).unwrap(), b"someone else's");
    fs::remove_dir_all(d).unwrap();
  }

  #[test]
  fn a_sweep_between_creating_and_locking_a_temp_costs_a_fresh_name_not_the_save() {
    let d = dir("race");
    let target = d.join("index.json");
    // The sweep sees the new file unlocked, locks it and unlinks it before the writer's lock.
    let mut sweeps = 0;
    let (tmp, file) = create_temp_with(
      &d,
      &mut || temp_name(b"index.json"),
      &target,
      0o600,
      &mut |_| {
        if sweeps == 0 {
          assert_eq!(crate::sweep::sweep(&target).unwrap().removed.len(), 1);
        }
        sweeps += 1;
      },
    )
    .unwrap();
    // Wine neither hides a name deleted while open nor reports it pending, so there the writer
    // keeps its first name (and wine then loses the deletion: the save survives either way).
    assert!(sweeps == 2 || cfg!(windows), "{sweeps}");
    assert_eq!(
      entries(&d),
      vec![tmp.file_name().unwrap().to_string_lossy()]
    );
    // Now locked: the next sweep keeps it.
    assert!(crate::sweep::sweep(&target).unwrap().removed.is_empty());
    drop(file);
    fs::remove_dir_all(d).unwrap();
  }

  #[test]
  fn a_probe_holding_a_new_temps_lock_makes_the_writer_move_on_and_leaves_nothing() {
    let d = dir("probe");
    let target = d.join("index.json");
    let mut held = Vec::new();
    let (tmp, _file) = create_temp_with(
      &d,
      &mut || temp_name(b"index.json"),
      &target,
      0o600,
      &mut |t| {
        if held.is_empty() {
          // A status probe that has the file locked (shared) when the writer tries.
          let f = File::open(t).unwrap();
          assert!(sys::probe_temp(&f).unwrap());
          held.push(f);
        }
      },
    )
    .unwrap();
    // Windows (before POSIX deletes) and wine keep a deleted name until its last handle closes.
    drop(held);
    assert_eq!(
      entries(&d),
      vec![tmp.file_name().unwrap().to_string_lossy()]
    );
    drop(_file);
    fs::remove_dir_all(d).unwrap();
  }

  #[cfg(unix)]
  #[test]
  fn fifos_are_neither_replaced_nor_read() {
    use std::os::unix::fs::FileTypeExt;
    let d = dir("fifo");
    let p = d.join("index.json");
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let err = write(p.to_str().unwrap(), b"x", true, None, false).unwrap_err();
    assert_eq!(err.code(), "EFTYPE");
    assert!(fs::symlink_metadata(&p).unwrap().file_type().is_fifo());
    assert_eq!(
      read(p.to_str().unwrap(), false).unwrap_err().code(),
      "EFTYPE"
    );
    assert_eq!(entries(&d), vec!["index.json"]);
    fs::remove_dir_all(d).unwrap();
  }

  #[cfg(unix)]
  #[test]
  fn stale_handles_are_retried_a_bounded_number_of_times() {
    let mut calls = 0;
    let got = retry_stale(|| {
      calls += 1;
      if calls < 3 {
        Err(Error::errno(libc::ESTALE, "open", Path::new("/x")))
      } else {
        Ok(calls)
      }
    });
    assert_eq!(got.unwrap(), 3);
    let mut calls = 0;
    let err = retry_stale(|| -> Result<()> {
      calls += 1;
      Err(Error::errno(
        libc::ESTALE,
        "open",
        Path::new("/x/index.json"),
      ))
    })
    .unwrap_err();
    assert_eq!(calls, STALE_BACKOFF_MS.len() + 1);
    assert_eq!(err.code(), "ESTALE");
    assert!(err.message().contains("/x/index.json"));
    let mut calls = 0;
    let _ = retry_stale(|| -> Result<()> {
      calls += 1;
      Err(Error::errno(libc::ENOENT, "open", Path::new("/x")))
    });
    assert_eq!(calls, 1, "other errors are not retried");
  }

  #[test]
  fn read_reports_missing_as_none() {
    let d = dir("read");
    assert_eq!(
      read(d.join("none.json").to_str().unwrap(), false).unwrap(),
      None
    );
    assert_eq!(
      read(d.to_str().unwrap(), false).unwrap_err().code(),
      "EISDIR"
    );
    fs::remove_dir_all(d).unwrap();
  }

  #[cfg(windows)]
  fn open_without_share_delete(p: &Path) -> File {
    use std::os::windows::fs::OpenOptionsExt;
    // What wine's Node, a backup tool or a scanner do: read, and refuse deletion meanwhile.
    fs::OpenOptions::new()
      .read(true)
      .share_mode(windows_sys::Win32::Storage::FileSystem::FILE_SHARE_READ)
      .open(p)
      .unwrap()
  }

  #[cfg(windows)]
  #[test]
  fn a_reader_that_lets_go_within_the_bound_does_not_fail_the_write() {
    let d = dir("inuse");
    let p = d.join("index.json");
    fs::write(&p, "old").unwrap();
    let reader = open_without_share_delete(&p);
    let t = std::thread::spawn(move || {
      std::thread::sleep(std::time::Duration::from_millis(300));
      drop(reader);
    });
    write(p.to_str().unwrap(), b"new", true, None, false).unwrap();
    t.join().unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"new");
    assert_eq!(entries(&d), vec!["index.json"]);
    fs::remove_dir_all(d).unwrap();
  }

  #[cfg(windows)]
  #[test]
  fn a_reader_that_keeps_the_file_open_gets_ebusy_and_no_temp_is_left() {
    let d = dir("busy");
    let p = d.join("index.json");
    fs::write(&p, "old").unwrap();
    let reader = open_without_share_delete(&p);
    let err = write(p.to_str().unwrap(), b"new", true, None, false).unwrap_err();
    assert_eq!(err.code(), "EBUSY");
    assert!(
      err.message().contains("another process"),
      "{}",
      err.message()
    );
    assert!(err.message().contains("index.json"), "{}", err.message());
    let v: serde_json::Value = serde_json::from_str(&err.to_json()).unwrap();
    assert_eq!(
      (v["errno"].as_i64(), v["syscall"].as_str()),
      (Some(-4082), Some("rename"))
    );
    drop(reader);
    assert_eq!(fs::read(&p).unwrap(), b"old");
    assert_eq!(entries(&d), vec!["index.json"]);
    fs::remove_dir_all(d).unwrap();
  }

  #[cfg(windows)]
  #[test]
  fn read_only_maps_to_the_attribute_and_is_kept() {
    let d = dir("readonly");
    let p = d.join("index.json");
    write(p.to_str().unwrap(), b"one", false, Some(0o444), false).unwrap();
    assert!(fs::metadata(&p).unwrap().permissions().readonly());
    write(p.to_str().unwrap(), b"two", false, None, false).unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"two");
    assert!(fs::metadata(&p).unwrap().permissions().readonly());
    write(p.to_str().unwrap(), b"three", false, Some(0o644), false).unwrap();
    assert!(!fs::metadata(&p).unwrap().permissions().readonly());
    assert_eq!(entries(&d), vec!["index.json"]);
    fs::remove_dir_all(d).unwrap();
  }
}
