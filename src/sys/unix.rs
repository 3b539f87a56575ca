//! What every Unix backend shares: flock(2) through fs4, O_NOFOLLOW opens, inode identity, mode
//! bits and owners, rename plus directory fsync, errno names.

use std::ffi::{CString, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use fs4::{FileExt, TryLockError};

use crate::error::{Error, Result};
use crate::lock::Mode;

/// Error numbers for conditions the crate detects itself (a directory where a file should be, a
/// symlink loop, a lock file replaced too often); each backend gives them the value its
/// `translate` names the same way on every OS.
pub mod errno {
  pub use libc::{EEXIST, EISDIR, ELOOP, ESTALE};
}

/// Opens the sidecar without following a planted symlink, creating it when missing. Where the
/// file exists but may not be written (read-only file or mount), a read-only descriptor still
/// takes both shared and exclusive flocks.
pub fn open_sidecar(sidecar: &Path) -> Result<File> {
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
pub fn still_named(file: &File, sidecar: &Path) -> Result<bool> {
  let held = file
    .metadata()
    .map_err(|e| Error::io(e, "fstat", sidecar))?;
  match fs::symlink_metadata(sidecar) {
    Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
    Err(e) => Err(Error::io(e, "lstat", sidecar)),
  }
}

/// flock(2) without blocking: `Ok(false)` when another open file description holds it.
pub fn try_lock(file: &File, mode: Mode) -> io::Result<bool> {
  let r = match mode {
    Mode::Shared => FileExt::try_lock_shared(file),
    Mode::Exclusive => FileExt::try_lock(file),
  };
  match r {
    Ok(()) => Ok(true),
    Err(TryLockError::WouldBlock) => Ok(false),
    Err(TryLockError::Error(e)) => Err(e),
  }
}

/// Creates a new temp file with permission bits `mode` (less the umask), never opening an
/// existing file or following a planted symlink (O_EXCL | O_NOFOLLOW).
pub fn create_temp(tmp: &Path, mode: u32) -> io::Result<File> {
  OpenOptions::new()
    .write(true)
    .create_new(true)
    .mode(mode)
    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
    .open(tmp)
}

/// The exclusive lock a writer holds on its temp file until the rename (flock(2), without
/// waiting): `Ok(false)` when someone else (a sweep's probe) holds it.
pub fn lock_temp(file: &File) -> io::Result<bool> {
  try_lock(file, Mode::Exclusive)
}

/// Opens a temp file for a sweep's probe: read-only, never following a symlink, never blocking
/// on a FIFO.
pub fn open_temp_probe(path: &Path) -> io::Result<File> {
  OpenOptions::new()
    .read(true)
    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
    .open(path)
}

/// The probe's shared lock on a temp file: `Ok(false)` while its writer holds it.
pub fn probe_temp(file: &File) -> io::Result<bool> {
  try_lock(file, Mode::Shared)
}

/// Opens a data file to read it; O_NONBLOCK in case a FIFO appears there (opening one for
/// reading would wait for a writer).
pub fn open_read(path: &Path) -> io::Result<File> {
  OpenOptions::new()
    .read(true)
    .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    .open(path)
}

/// True while `path` names the file `file` has open (same device and inode).
pub fn same_file(file: &File, path: &Path) -> bool {
  match (file.metadata(), fs::symlink_metadata(path)) {
    (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
    _ => false,
  }
}

/// What kind of non-regular file a file type is, for `Error::NotRegular`; `None` for a regular
/// file or a directory (directories have their own error, EISDIR).
pub fn special_kind(t: fs::FileType) -> Option<&'static str> {
  if t.is_fifo() {
    Some("a FIFO")
  } else if t.is_socket() {
    Some("a socket")
  } else if t.is_char_device() {
    Some("a character device")
  } else if t.is_block_device() {
    Some("a block device")
  } else if t.is_file() || t.is_dir() {
    None
  } else {
    Some("not a file")
  }
}

/// The permission bits a save gives the file: `mode`, else the replaced file's.
pub fn final_mode(mode: Option<u32>, previous: Option<&fs::Metadata>) -> Option<u32> {
  mode.or(previous.map(|m| m.mode() & 0o7777))
}

/// Gives the temp file the replaced file's owner where we may, then its final permission bits.
pub fn stage_temp(
  file: &File,
  previous: Option<&fs::Metadata>,
  perm: Option<u32>,
  given: &Path,
) -> Result<()> {
  if let Some(prev) = previous {
    // Keep the owner of the replaced file where we may (root rewriting a user's index);
    // anyone else cannot change owners, and the file then becomes theirs, as with any rewrite.
    if prev.uid() != unsafe { libc::geteuid() } || prev.gid() != unsafe { libc::getegid() } {
      let _ = std::os::unix::fs::fchown(file, Some(prev.uid()), Some(prev.gid()));
    }
  }
  if let Some(perm) = perm {
    file
      .set_permissions(fs::Permissions::from_mode(perm))
      .map_err(|e| Error::io(e, "fchmod", given))?;
  }
  Ok(())
}

/// Removes a temp file (a failed save's own, or a sweep's orphan): unlink(2), which the file's
/// own mode does not restrict.
pub fn remove_temp(path: &Path) -> io::Result<()> {
  fs::remove_file(path)
}

/// rename(2): atomic replacement, whoever has the old file open.
pub fn replace(tmp: &Path, target: &Path, given: &Path) -> Result<()> {
  fs::rename(tmp, target).map_err(|e| Error::io(e, "rename", given))
}

/// fsync of the directory: the rename lives in it, and without this a crash can bring the old
/// file back.
pub fn sync_dir(dir: &Path) -> Result<()> {
  File::open(dir)
    .and_then(|d| d.sync_all())
    .map_err(|e| Error::io(e, "fsync", dir))
}

/// "Stale file handle": a distributed filesystem's client still held the handle of a file that
/// another host replaced.
pub fn is_stale(e: &io::Error) -> bool {
  e.raw_os_error() == Some(libc::ESTALE)
}

/// Node's `errno` (negative), code and text for an OS error number.
pub fn translate(raw: i32) -> Option<(i32, &'static str, &'static str)> {
  crate::error::ERRNOS
    .iter()
    .find(|(n, _, _)| *n == raw)
    .map(|&(n, name, text)| (-n, name, text))
}

/// A file name from bytes (Unix names are any bytes but `/` and NUL).
pub fn os_string(bytes: Vec<u8>) -> OsString {
  OsString::from_vec(bytes)
}

/// Unix paths need no rewriting: `fs::canonicalize` returns them plain.
pub fn simplify(path: std::path::PathBuf) -> std::path::PathBuf {
  path
}

/// statfs(2) of a directory.
pub fn statfs(dir: &Path) -> Result<libc::statfs> {
  let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| Error::InvalidArgValue {
    name: "path",
    reason: "must be a string without null bytes".into(),
  })?;
  // SAFETY: a zeroed statfs is a valid out-parameter; `c` is a valid C string.
  let mut st: libc::statfs = unsafe { std::mem::zeroed() };
  if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
    return Err(Error::io(io::Error::last_os_error(), "statfs", dir));
  }
  Ok(st)
}
