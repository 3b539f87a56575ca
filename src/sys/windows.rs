//! Windows: LockFileEx over the whole sidecar (std's `File::lock`), a polling wait, a rename that
//! waits out other processes' open handles for a bounded time, and libuv's names for Windows
//! error codes.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf, Prefix};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation as W;
use windows_sys::Win32::Storage::FileSystem as FS;

use super::{Cached, Holder, Locality, Mode, OsError, OsResult, Probe};

pub use super::polling::*;

pub const BACKEND: &str = "windows";

/// Error numbers for conditions the crate detects itself. Where Windows has a code that libuv
/// (and so Node) names the same, it is used; the others are application codes (bit 29 set, which
/// Windows reserves for them, so they never collide with a system code).
pub mod errno {
  use windows_sys::Win32::Foundation as W;

  const APP: i32 = 1 << 29;
  pub const EISDIR: i32 = APP | 21;
  pub const ESTALE: i32 = APP | 116;
  /// The rename kept failing because another process holds the target open (see `replace`).
  pub const EBUSY_IN_USE: i32 = APP | 16;
  pub const ELOOP: i32 = W::ERROR_CANT_RESOLVE_FILENAME as i32;
  pub const ENOENT: i32 = W::ERROR_FILE_NOT_FOUND as i32;
  pub const EEXIST: i32 = W::ERROR_FILE_EXISTS as i32;
}

/// The sharing every index-lock handle of a sidecar allows: read and write, never delete. While
/// any process has the sidecar open, nobody can delete or rename it (that needs DELETE access,
/// which this share mode refuses), so the file a lock is taken on is always the one the path
/// names.
const SIDECAR_SHARE: u32 = FS::FILE_SHARE_READ | FS::FILE_SHARE_WRITE;

fn open_sidecar_with(sidecar: &Path, write: bool) -> io::Result<File> {
  let mut o = OpenOptions::new();
  o.read(true);
  if write {
    o.write(true).create(true);
  }
  // FILE_FLAG_OPEN_REPARSE_POINT opens a planted symlink or junction as itself, so it can be
  // refused below instead of followed (O_NOFOLLOW's job on Unix).
  o.share_mode(SIDECAR_SHARE)
    .custom_flags(FS::FILE_FLAG_OPEN_REPARSE_POINT)
    .open(sidecar)
}

/// Opens (creating when missing) the sidecar; where it may not be written (read-only file or
/// volume), a read-only handle still takes both shared and exclusive locks.
pub fn open_sidecar(sidecar: &Path) -> OsResult<File> {
  let file = match open_sidecar_with(sidecar, true) {
    Ok(f) => f,
    Err(e)
      if matches!(
        e.raw_os_error().map(|c| c as u32),
        Some(W::ERROR_ACCESS_DENIED | W::ERROR_WRITE_PROTECT)
      ) =>
    {
      open_sidecar_with(sidecar, false).map_err(|_| refused(e, sidecar))?
    }
    Err(e) => return Err(OsError::on("open")(e)),
  };
  let meta = file.metadata().map_err(OsError::on("fstat"))?;
  if meta.file_attributes() & FS::FILE_ATTRIBUTE_REPARSE_POINT != 0 {
    return Err(open_failed(errno::ELOOP));
  }
  if meta.is_dir() {
    return Err(open_failed(errno::EISDIR));
  }
  Ok(file)
}

/// An open that fails with `errno` (see `errno`), for what is found in the sidecar's place.
fn open_failed(errno: i32) -> OsError {
  OsError::on("open")(io::Error::from_raw_os_error(errno))
}

/// The error for a sidecar that may not be opened at all. CreateFile refuses a directory (without
/// FILE_FLAG_BACKUP_SEMANTICS) or a link to one with "access denied" before anything can look at
/// it: those get the names Unix gives them (EISDIR for a leftover proper-lockfile lock directory,
/// ELOOP for a planted link), so the error says what is in the way on every OS.
fn refused(e: io::Error, sidecar: &Path) -> OsError {
  match fs::symlink_metadata(sidecar) {
    Ok(m) if m.file_attributes() & FS::FILE_ATTRIBUTE_REPARSE_POINT != 0 => {
      open_failed(errno::ELOOP)
    }
    Ok(m) if m.is_dir() => open_failed(errno::EISDIR),
    _ => OsError::on("open")(e),
  }
}

/// Always true: the share mode (see `SIDECAR_SHARE`) keeps anyone from deleting or renaming the
/// sidecar while we have it open, so it cannot stop naming the file we locked.
pub fn still_named(_file: &File, _sidecar: &Path) -> OsResult<bool> {
  Ok(true)
}

/// Never: the sidecar is opened for writing where it may be.
pub fn needs_writable(_e: &io::Error) -> bool {
  false
}

pub fn open_sidecar_writable(sidecar: &Path) -> OsResult<File> {
  open_sidecar(sidecar)
}

/// A kept handle would keep anyone (this process included) from deleting the sidecar or its
/// directory (see `SIDECAR_SHARE`), so each release closes it.
pub const KEEP_SIDECARS: bool = false;

pub fn unlock(file: &File) -> io::Result<()> {
  file.unlock()
}

/// Windows sets no open-files limit on handles that descriptors kept here could reach (nor are any
/// kept: `KEEP_SIDECARS`).
pub fn open_files_limit() -> Option<u64> {
  None
}

/// Whether an open failed for want of handles.
pub fn out_of_descriptors(e: &io::Error) -> bool {
  e.raw_os_error().map(|c| c as u32) == Some(W::ERROR_TOO_MANY_OPEN_FILES)
}

/// Never: nobody can delete or rename the sidecar while we have it open.
pub fn unlinked(_file: &File) -> io::Result<bool> {
  Ok(false)
}

/// LockFileEx over the whole file without waiting (std's `File::try_lock`); `Ok(false)` when
/// another handle holds a conflicting lock on any byte of it.
pub fn try_lock(file: &File, mode: Mode) -> io::Result<bool> {
  let r = match mode {
    Mode::Shared => file.try_lock_shared(),
    Mode::Exclusive => file.try_lock(),
  };
  match r {
    Ok(()) => Ok(true),
    Err(fs::TryLockError::WouldBlock) => Ok(false),
    Err(fs::TryLockError::Error(e)) => Err(e),
  }
}

/// Creates a new temp file; CREATE_NEW fails on any existing name, a symlink included, so a
/// planted file is never opened. Of `mode` only "read-only" maps, and that is set later.
pub fn create_temp(tmp: &Path, _mode: u32) -> io::Result<File> {
  OpenOptions::new().write(true).create_new(true).open(tmp)
}

/// The one byte a temp file's lock covers: far past any end of file. Windows byte-range locks
/// are mandatory for reads and writes through other handles, so a lock over the data would make
/// readers of the renamed file fail until the writer closes it; this byte is never read.
const TEMP_LOCK_OFFSET: u64 = u64::MAX - 1;

fn lock_far_byte(file: &File, exclusive: bool) -> io::Result<bool> {
  use std::os::windows::io::AsRawHandle;
  use windows_sys::Win32::System::IO::OVERLAPPED;
  // SAFETY: a zeroed OVERLAPPED is valid; it only carries the offset for a synchronous call.
  let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
  ov.Anonymous.Anonymous.Offset = TEMP_LOCK_OFFSET as u32;
  ov.Anonymous.Anonymous.OffsetHigh = (TEMP_LOCK_OFFSET >> 32) as u32;
  let flags = FS::LOCKFILE_FAIL_IMMEDIATELY
    | if exclusive {
      FS::LOCKFILE_EXCLUSIVE_LOCK
    } else {
      0
    };
  // SAFETY: a valid open handle and OVERLAPPED for the duration of the call.
  let handle = file.as_raw_handle() as W::HANDLE;
  if unsafe { FS::LockFileEx(handle, flags, 0, 1, 0, &mut ov) } != 0 {
    return Ok(true);
  }
  let e = io::Error::last_os_error();
  match e.raw_os_error().map(|c| c as u32) {
    Some(W::ERROR_LOCK_VIOLATION) => Ok(false),
    _ => Err(e),
  }
}

/// The exclusive lock a writer holds on its temp file until the rename (see `TEMP_LOCK_OFFSET`):
/// `Ok(false)` when someone else (a sweep's probe) holds it.
pub fn lock_temp(file: &File) -> io::Result<bool> {
  lock_far_byte(file, true)
}

/// Opens a temp file for a sweep's probe: read-only; a symlink or junction is opened as itself
/// (and then is not a regular file, so it is skipped).
pub fn open_temp_probe(path: &Path) -> io::Result<File> {
  OpenOptions::new()
    .read(true)
    .custom_flags(FS::FILE_FLAG_OPEN_REPARSE_POINT)
    .open(path)
}

/// The probe's shared lock on a temp file: `Ok(false)` while its writer holds it.
pub fn probe_temp(file: &File) -> io::Result<bool> {
  lock_far_byte(file, false)
}

/// Without `follow`, the caller has checked there is no symlink (`atomic::read`): Windows opens
/// have no O_NOFOLLOW short of reparse-point flags, which would open a link as itself.
pub fn open_read(path: &Path, _follow: bool) -> io::Result<File> {
  File::open(path)
}

pub fn is_symlink_refused(_e: &io::Error) -> bool {
  false
}

/// Volume serial number and file index: what identifies a file on Windows.
fn file_id(file: &File) -> Option<(u32, u32, u32)> {
  use std::os::windows::io::AsRawHandle;
  // SAFETY: a zeroed out-struct and a valid open handle.
  let mut info: FS::BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
  let handle = file.as_raw_handle() as W::HANDLE;
  let ok = unsafe { FS::GetFileInformationByHandle(handle, &mut info) };
  (ok != 0).then_some((
    info.dwVolumeSerialNumber,
    info.nFileIndexHigh,
    info.nFileIndexLow,
  ))
}

/// Whether someone deleted the file `file` has open (its deletion waits for the last handle).
fn delete_pending(file: &File) -> bool {
  use std::os::windows::io::AsRawHandle;
  let mut info = FS::FILE_STANDARD_INFO::default();
  // SAFETY: a valid open handle and an out-struct of the size passed.
  let ok = unsafe {
    FS::GetFileInformationByHandleEx(
      file.as_raw_handle() as W::HANDLE,
      FS::FileStandardInfo,
      (&mut info as *mut FS::FILE_STANDARD_INFO).cast(),
      std::mem::size_of::<FS::FILE_STANDARD_INFO>() as u32,
    )
  };
  ok != 0 && info.DeletePending
}

/// True while `path` names the file `file` has open and nobody deleted it. (Windows 10 removes a
/// deleted name at once; older Windows and wine keep it until the last handle closes, and wine
/// even opens it again meanwhile: hence the pending-deletion check.)
pub fn same_file(file: &File, path: &Path) -> bool {
  if delete_pending(file) {
    return false;
  }
  let Ok(other) = OpenOptions::new()
    .access_mode(0)
    .share_mode(FS::FILE_SHARE_READ | FS::FILE_SHARE_WRITE | FS::FILE_SHARE_DELETE)
    .custom_flags(FS::FILE_FLAG_OPEN_REPARSE_POINT | FS::FILE_FLAG_BACKUP_SEMANTICS)
    .open(path)
  else {
    return false;
  };
  matches!((file_id(file), file_id(&other)), (Some(a), Some(b)) if a == b)
}

/// Windows has files, directories and links only; anything else is not a file.
pub fn special_kind(t: fs::FileType) -> Option<&'static str> {
  if t.is_file() || t.is_dir() {
    None
  } else {
    Some("not a file")
  }
}

/// The permission bits a save gives the file, of which Windows keeps only "read-only": `mode`,
/// else read-only if the replaced file was.
pub fn final_mode(mode: Option<u32>, previous: Option<&fs::Metadata>) -> Option<u32> {
  mode.or_else(|| {
    previous
      .filter(|m| m.permissions().readonly())
      .map(|_| 0o444)
  })
}

/// Windows has no permission bits: of the final mode only "nobody may write" maps, to the
/// read-only attribute.
pub fn stage_temp(
  file: &File,
  _target: &Path,
  _previous: Option<&fs::Metadata>,
  perm: Option<u32>,
) -> OsResult<()> {
  if perm.is_some_and(|p| p & 0o222 == 0) {
    let mut attrs = file.metadata().map_err(OsError::on("fstat"))?.permissions();
    attrs.set_readonly(true);
    file.set_permissions(attrs).map_err(OsError::on("fchmod"))?;
  }
  Ok(())
}

/// Removes a temp file (a failed save's own, or a sweep's orphan). A save of a read-only file
/// gives its temp the read-only attribute before the rename, and Windows refuses to delete a
/// read-only file: the attribute is ours, so it is cleared and the removal tried again.
// Clearing "read-only" is all `set_readonly(false)` does on Windows (the lint is about Unix modes).
#[allow(clippy::permissions_set_readonly_false)]
pub fn remove_temp(path: &Path) -> io::Result<()> {
  let e = match fs::remove_file(path) {
    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => e,
    r => return r,
  };
  let Ok(meta) = fs::symlink_metadata(path) else {
    return Err(e);
  };
  if !meta.is_file() || !meta.permissions().readonly() {
    return Err(e);
  }
  let mut perm = meta.permissions();
  perm.set_readonly(false);
  fs::set_permissions(path, perm).map_err(|_| e)?;
  fs::remove_file(path)
}

/// How long a save keeps retrying its rename while another process holds the target open without
/// FILE_SHARE_DELETE (a reader, a backup tool, an antivirus scanner), before it fails with EBUSY.
pub const RENAME_RETRY_FOR: Duration = Duration::from_secs(2);
/// Pauses between those attempts grow from 1 ms to this: a reader that reopens the file in a
/// tight loop leaves gaps of a few milliseconds at most, so the attempts must stay frequent (a
/// 10 ms cap missed every 5 ms gap of a reader for 2 s under load). At most ~1000 attempts.
const RENAME_PAUSE_MAX: Duration = Duration::from_millis(2);

fn in_use(e: &io::Error) -> bool {
  matches!(
    e.raw_os_error().map(|c| c as u32),
    Some(W::ERROR_ACCESS_DENIED | W::ERROR_SHARING_VIOLATION | W::ERROR_LOCK_VIOLATION)
  )
}

/// Renames the temp file over the target. std's rename asks for POSIX semantics (Windows 10
/// 1607+ on NTFS: the target may be open by others with FILE_SHARE_DELETE, as Node's own opens
/// are) and falls back to MoveFileEx. Both fail with access denied or a sharing violation while
/// another process holds the target open without FILE_SHARE_DELETE, and wine (which lacks the
/// POSIX semantics) fails whenever it is open at all. That is write-file-atomic's issue #28:
/// here the rename is retried for `RENAME_RETRY_FOR` (2 s), then fails with `EBUSY`
/// (`errno::EBUSY_IN_USE`). A read-only target cannot be replaced at all, so its attribute is cleared first (the
/// temp file carries it over).
// Clearing "read-only" is all `set_readonly(false)` does on Windows (the lint is about Unix modes).
#[allow(clippy::permissions_set_readonly_false)]
pub fn replace(tmp: &Path, target: &Path) -> io::Result<()> {
  let was_read_only = fs::symlink_metadata(target).is_ok_and(|m| m.permissions().readonly());
  if was_read_only {
    if let Ok(m) = fs::metadata(target) {
      let mut perm = m.permissions();
      perm.set_readonly(false);
      let _ = fs::set_permissions(target, perm);
    }
  }
  let deadline = Instant::now() + RENAME_RETRY_FOR;
  let mut pause = Duration::from_millis(1);
  let mut result = fs::rename(tmp, target);
  while matches!(&result, Err(e) if in_use(e)) && Instant::now() < deadline {
    std::thread::sleep(pause);
    pause = (pause * 2).min(RENAME_PAUSE_MAX);
    result = fs::rename(tmp, target);
  }
  match result {
    Ok(()) => Ok(()),
    Err(e) => {
      if was_read_only {
        if let Ok(m) = fs::metadata(target) {
          let mut perm = m.permissions();
          perm.set_readonly(true);
          let _ = fs::set_permissions(target, perm);
        }
      }
      if in_use(&e) {
        Err(io::Error::from_raw_os_error(errno::EBUSY_IN_USE))
      } else {
        Err(e)
      }
    }
  }
}

/// No directory flush on Windows: a directory cannot be opened as a std `File` to flush, and
/// NTFS records the rename in its metadata journal, which it commits on its own within seconds.
/// Until then a power cut can bring back the old file whole, never a mix of the two (the new
/// content was flushed with FlushFileBuffers before the rename).
pub fn sync_dir(_dir: &Path) -> io::Result<()> {
  Ok(())
}

/// Windows has no stale-handle condition to retry.
pub fn is_stale(_e: &io::Error) -> bool {
  false
}

/// Windows error codes as libuv (Node 20) names them: (code, Node errno, name, text).
const CODES: &[(u32, i32, &str, &str)] = &[
  (
    W::ERROR_FILE_NOT_FOUND,
    -4058,
    "ENOENT",
    "no such file or directory",
  ),
  (
    W::ERROR_PATH_NOT_FOUND,
    -4058,
    "ENOENT",
    "no such file or directory",
  ),
  (
    W::ERROR_INVALID_NAME,
    -4058,
    "ENOENT",
    "no such file or directory",
  ),
  (
    W::ERROR_INVALID_DRIVE,
    -4058,
    "ENOENT",
    "no such file or directory",
  ),
  (
    W::ERROR_BAD_PATHNAME,
    -4058,
    "ENOENT",
    "no such file or directory",
  ),
  (
    W::ERROR_DIRECTORY,
    -4058,
    "ENOENT",
    "no such file or directory",
  ),
  (
    W::ERROR_BAD_NETPATH,
    -4058,
    "ENOENT",
    "no such file or directory",
  ),
  (
    W::ERROR_INVALID_REPARSE_DATA,
    -4058,
    "ENOENT",
    "no such file or directory",
  ),
  (
    W::ERROR_ACCESS_DENIED,
    -4048,
    "EPERM",
    "operation not permitted",
  ),
  (
    W::ERROR_PRIVILEGE_NOT_HELD,
    -4048,
    "EPERM",
    "operation not permitted",
  ),
  (W::ERROR_NOACCESS, -4092, "EACCES", "permission denied"),
  (
    W::ERROR_CANT_ACCESS_FILE,
    -4092,
    "EACCES",
    "permission denied",
  ),
  (
    W::ERROR_ELEVATION_REQUIRED,
    -4092,
    "EACCES",
    "permission denied",
  ),
  (
    W::ERROR_SHARING_VIOLATION,
    -4082,
    "EBUSY",
    "resource busy or locked",
  ),
  (
    W::ERROR_LOCK_VIOLATION,
    -4082,
    "EBUSY",
    "resource busy or locked",
  ),
  (
    W::ERROR_PIPE_BUSY,
    -4082,
    "EBUSY",
    "resource busy or locked",
  ),
  (W::ERROR_FILE_EXISTS, -4075, "EEXIST", "file already exists"),
  (
    W::ERROR_ALREADY_EXISTS,
    -4075,
    "EEXIST",
    "file already exists",
  ),
  (
    W::ERROR_DISK_FULL,
    -4055,
    "ENOSPC",
    "no space left on device",
  ),
  (
    W::ERROR_HANDLE_DISK_FULL,
    -4055,
    "ENOSPC",
    "no space left on device",
  ),
  (
    W::ERROR_CANNOT_MAKE,
    -4055,
    "ENOSPC",
    "no space left on device",
  ),
  (
    W::ERROR_END_OF_MEDIA,
    -4055,
    "ENOSPC",
    "no space left on device",
  ),
  (
    W::ERROR_FILENAME_EXCED_RANGE,
    -4064,
    "ENAMETOOLONG",
    "name too long",
  ),
  (
    W::ERROR_CANT_RESOLVE_FILENAME,
    -4067,
    "ELOOP",
    "too many symbolic links encountered",
  ),
  (
    W::ERROR_TOO_MANY_OPEN_FILES,
    -4066,
    "EMFILE",
    "too many open files",
  ),
  (
    W::ERROR_NOT_ENOUGH_MEMORY,
    -4057,
    "ENOMEM",
    "not enough memory",
  ),
  (W::ERROR_OUTOFMEMORY, -4057, "ENOMEM", "not enough memory"),
  (
    W::ERROR_INVALID_HANDLE,
    -4083,
    "EBADF",
    "bad file descriptor",
  ),
  (
    W::ERROR_INVALID_FLAGS,
    -4083,
    "EBADF",
    "bad file descriptor",
  ),
  (
    W::ERROR_INVALID_PARAMETER,
    -4071,
    "EINVAL",
    "invalid argument",
  ),
  (W::ERROR_INVALID_DATA, -4071, "EINVAL", "invalid argument"),
  (
    W::ERROR_INSUFFICIENT_BUFFER,
    -4071,
    "EINVAL",
    "invalid argument",
  ),
  (
    W::ERROR_SYMLINK_NOT_SUPPORTED,
    -4071,
    "EINVAL",
    "invalid argument",
  ),
  (
    W::ERROR_DIR_NOT_EMPTY,
    -4051,
    "ENOTEMPTY",
    "directory not empty",
  ),
  (
    W::ERROR_NOT_SAME_DEVICE,
    -4037,
    "EXDEV",
    "cross-device link not permitted",
  ),
  (
    W::ERROR_WRITE_PROTECT,
    -4043,
    "EROFS",
    "read-only file system",
  ),
  (
    W::ERROR_NOT_SUPPORTED,
    -4049,
    "ENOTSUP",
    "operation not supported on socket",
  ),
  (
    W::ERROR_INVALID_FUNCTION,
    -4068,
    "EISDIR",
    "illegal operation on a directory",
  ),
  (
    W::ERROR_SEM_TIMEOUT,
    -4039,
    "ETIMEDOUT",
    "connection timed out",
  ),
  (
    W::ERROR_OPERATION_ABORTED,
    -4081,
    "ECANCELED",
    "operation canceled",
  ),
  // A path longer than the buffer a call was given (wine's canonicalize of a path past
  // MAX_PATH, for one). libuv has no name for it (Node says UNKNOWN); in a path API it means
  // the name is too long.
  (W::ERROR_MORE_DATA, -4064, "ENAMETOOLONG", "name too long"),
  (W::ERROR_GEN_FAILURE, -4070, "EIO", "i/o error"),
  (W::ERROR_CRC, -4070, "EIO", "i/o error"),
  (W::ERROR_IO_DEVICE, -4070, "EIO", "i/o error"),
  (W::ERROR_OPEN_FAILED, -4070, "EIO", "i/o error"),
  (W::ERROR_DISK_CORRUPT, -4070, "EIO", "i/o error"),
  (
    W::ERROR_NETNAME_DELETED,
    -4077,
    "ECONNRESET",
    "connection reset by peer",
  ),
  (
    W::ERROR_NETWORK_UNREACHABLE,
    -4062,
    "ENETUNREACH",
    "network is unreachable",
  ),
  (
    W::ERROR_NOT_CONNECTED,
    -4053,
    "ENOTCONN",
    "socket is not connected",
  ),
  (W::ERROR_BROKEN_PIPE, -4095, "EOF", "end of file"),
  (
    W::ERROR_NO_UNICODE_TRANSLATION,
    -4080,
    "ECHARSET",
    "invalid Unicode character",
  ),
  (
    errno::EISDIR as u32,
    -4068,
    "EISDIR",
    "illegal operation on a directory",
  ),
  // libuv has no ESTALE on Windows (nor does Windows have the condition); its UNKNOWN number.
  (errno::ESTALE as u32, -4094, "ESTALE", "stale file handle"),
  (
    errno::EBUSY_IN_USE as u32,
    -4082,
    "EBUSY",
    "resource busy or locked: another process kept the file open for over 2 s",
  ),
];

/// Node's `errno` (negative), code and text for a Windows error code.
pub fn translate(raw: i32) -> Option<(i32, &'static str, &'static str)> {
  CODES
    .iter()
    .find(|(c, ..)| *c == raw as u32)
    .map(|&(_, n, name, text)| (n, name, text))
}

/// A file name from the bytes `OsStr::as_encoded_bytes` gave (cut only at character boundaries,
/// see `name_prefix`).
pub fn os_string(bytes: Vec<u8>) -> OsString {
  match String::from_utf8(bytes) {
    Ok(s) => s.into(),
    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned().into(),
  }
}

/// Whether a component may be spelled without the `\\?\` prefix: Win32 path parsing strips
/// trailing dots and spaces and maps device names (`CON`, `NUL`, `COM1`, ...) to devices.
fn plain_ok(name: &std::ffi::OsStr) -> bool {
  let Some(s) = name.to_str() else {
    return false;
  };
  if s.ends_with('.') || s.ends_with(' ') {
    return false;
  }
  let stem = s
    .split('.')
    .next()
    .unwrap_or("")
    .trim_end()
    .to_ascii_uppercase();
  let device = matches!(
    stem.as_str(),
    "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
  ) || ((stem.starts_with("COM") || stem.starts_with("LPT"))
    && stem.len() == 4
    && stem.as_bytes()[3].is_ascii_digit());
  !device
}

/// `fs::canonicalize` returns `\\?\C:\dir` and `\\?\UNC\server\share\dir`: keys are spelled
/// `C:\dir` and `\\server\share\dir` instead (what users and Node print), unless a component
/// needs the verbatim form to mean the same file. Long paths need no prefix here: std and Node
/// add it when they call Windows.
pub fn simplify(path: PathBuf) -> PathBuf {
  let mut comps = path.components();
  let Some(Component::Prefix(prefix)) = comps.next() else {
    return path;
  };
  let rest: Vec<Component> = comps.collect();
  let plain = rest.iter().all(|c| match c {
    Component::Normal(n) => plain_ok(n),
    Component::RootDir => true,
    _ => false,
  });
  if !plain {
    return path;
  }
  let mut out = match prefix.kind() {
    Prefix::VerbatimDisk(d) => PathBuf::from(format!("{}:\\", d as char)),
    Prefix::VerbatimUNC(server, share) => {
      let mut s = OsString::from(r"\\");
      s.push(server);
      s.push(r"\");
      s.push(share);
      s.push(r"\");
      PathBuf::from(s)
    }
    _ => return path,
  };
  for c in rest {
    if let Component::Normal(n) = c {
      out.push(n);
    }
  }
  out
}

pub fn thread_id() -> u64 {
  // SAFETY: no arguments, cannot fail.
  u64::from(unsafe { windows_sys::Win32::System::Threading::GetCurrentThreadId() })
}

/// No Windows interface lists who holds a byte-range lock, so timeouts and `status` report none.
pub fn holders(_sidecar: &Path) -> Vec<Holder> {
  Vec::new()
}

/// No holder list, so not every holder is in it.
pub fn lists_every_holder() -> bool {
  false
}

/// Nor its waiters: `None`, unknown.
pub fn waiters(_sidecar: &Path) -> Option<Vec<Holder>> {
  None
}

/// Whether `sidecar` is locked exclusively (for `inspect`): Windows has no way to ask about a
/// byte-range lock without taking one, so a shared LockFileEx is tried on a read-only handle of
/// its own and dropped at once. `Some(Exclusive)` when refused, else `None` (shared holders do
/// not show). A shared request is never refused for it; an exclusive try that lands in its few
/// microseconds is.
pub fn probe(sidecar: &Path) -> OsResult<Option<Mode>> {
  let file = match open_sidecar_with(sidecar, false) {
    Ok(f) => f,
    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
    Err(e) => return Err(OsError::on("open")(e)),
  };
  let free = try_lock(&file, Mode::Shared).map_err(OsError::on("LockFileEx"))?;
  Ok((!free).then_some(Mode::Exclusive))
}

fn wide(p: &Path) -> Vec<u16> {
  p.as_os_str()
    .encode_wide()
    .chain(std::iter::once(0))
    .collect()
}

fn from_wide(buf: &[u16]) -> String {
  let end = buf.iter().position(|c| *c == 0).unwrap_or(buf.len());
  String::from_utf16_lossy(&buf[..end])
}

fn is_unc(dir: &Path) -> bool {
  matches!(
    dir.components().next(),
    Some(Component::Prefix(p)) if matches!(p.kind(), Prefix::UNC(..) | Prefix::VerbatimUNC(..))
  )
}

/// The volume holding `dir`: its root, file system name (`NTFS`, `ReFS`, `FAT32`), and whether it
/// is a network drive (a UNC path, or a mapped drive: `DRIVE_REMOTE`). Fails only where the volume root cannot be found (reported as `statfs`'s failure).
pub fn probe_fs(dir: &Path) -> io::Result<Probe> {
  let path = wide(dir);
  let mut root = vec![0u16; 1024];
  // SAFETY: valid NUL-terminated input and a buffer of the length passed.
  if unsafe { FS::GetVolumePathNameW(path.as_ptr(), root.as_mut_ptr(), root.len() as u32) } == 0 {
    return Err(io::Error::last_os_error());
  }
  let root_str = from_wide(&root);
  let root_w: Vec<u16> = root_str.encode_utf16().chain(std::iter::once(0)).collect();
  let mut name = vec![0u16; 64];
  // SAFETY: as above; the optional outputs are null.
  let named = unsafe {
    FS::GetVolumeInformationW(
      root_w.as_ptr(),
      std::ptr::null_mut(),
      0,
      std::ptr::null_mut(),
      std::ptr::null_mut(),
      std::ptr::null_mut(),
      name.as_mut_ptr(),
      name.len() as u32,
    )
  } != 0;
  let fstype = if named {
    from_wide(&name)
  } else {
    "unknown".into()
  };
  // SAFETY: valid NUL-terminated input.
  let drive = unsafe { FS::GetDriveTypeW(root_w.as_ptr()) };
  let remote = drive == windows_sys::Win32::System::WindowsProgramming::DRIVE_REMOTE;
  Ok(Probe {
    magic: 0,
    fstype: Some(fstype),
    options: String::new(),
    mount_point: Some(PathBuf::from(root_str)),
    locality: Locality::NetworkDrive(is_unc(dir) || remote),
  })
}

/// Windows volumes are treated as case-insensitive (NTFS's default, and what Windows programs
/// expect): the key is folded so two spellings of one file share one queue.
pub fn fold_key(key: &Path) -> Option<PathBuf> {
  Some(super::fold_case(key))
}

/// No read here can be told not to wait for the disk (Linux's RWF_NOWAIT): every read goes to the
/// threadpool.
pub fn read_cached(_path: &Path, _max: usize, _follow: bool, _serves: fn(&str) -> bool) -> Cached {
  Cached::WouldBlock
}
