//! What every Unix backend shares: flock(2) through fs4, O_NOFOLLOW opens, inode identity, mode
//! bits and owners, rename plus directory fsync, errno names.

use std::ffi::{CString, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use fs4::{FileExt, TryLockError};

use super::{Mode, OsError, OsResult};

/// Error numbers for conditions the crate detects itself (a directory where a file should be, a
/// symlink loop, a lock file replaced too often); each backend gives them the value its
/// `translate` names the same way on every OS.
pub mod errno {
  pub use libc::{EEXIST, EISDIR, ELOOP, ENOENT, ESTALE};
}

/// Opens the sidecar without following a planted symlink, creating it when missing. Where the
/// file exists but may not be written (read-only file or mount), a read-only descriptor still
/// takes both shared and exclusive flocks.
pub fn open_sidecar(sidecar: &Path) -> OsResult<File> {
  // Read-only where no waiter marks the sidecar (Linux): flock needs no more, and a descriptor
  // kept open between holds (`crate::spare`) then keeps no one from remounting its filesystem
  // read-only.
  match open_creating(sidecar, super::imp::SIDECAR_MARKED) {
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
        .map_err(|_| OsError::on("open")(e))
    }
    Err(e) => Err(OsError::on("open")(e)),
  }
}

/// True while `sidecar` still names the inode `file` has open. A lock taken on an inode that
/// was unlinked or renamed away guards nothing: another process may lock the new file.
pub fn still_named(file: &File, sidecar: &Path) -> OsResult<bool> {
  let held = file.metadata().map_err(OsError::on("fstat"))?;
  match fs::symlink_metadata(sidecar) {
    Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
    Err(e) => Err(OsError::on("lstat")(e)),
  }
}

/// Whether a flock failed only because the descriptor is read-only where the filesystem wants
/// it writable for that lock (NFS, and others that emulate flock with byte-range locks: EBADF).
pub fn needs_writable(e: &io::Error) -> bool {
  e.raw_os_error() == Some(libc::EBADF)
}

/// The sidecar opened for writing (see `needs_writable`).
pub fn open_sidecar_writable(sidecar: &Path) -> OsResult<File> {
  open_creating(sidecar, true).map_err(OsError::on("open"))
}

/// Opens the sidecar, creating it when missing (`0o666 & ~umask`), for writing too if `write`,
/// never through a planted symlink.
fn open_creating(sidecar: &Path, write: bool) -> io::Result<File> {
  // O_CREAT as a raw flag: std refuses `create` without write access.
  OpenOptions::new()
    .read(true)
    .write(write)
    .mode(0o666)
    .custom_flags(libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC)
    .open(sidecar)
}

/// Lets go of the flock and keeps the descriptor.
pub fn unlock(file: &File) -> io::Result<()> {
  FileExt::unlock(file)
}

/// Opens an existing sidecar to look at its lock: read-only, never creating it (a look creates
/// nothing), never through a symlink. `None` when there is none.
fn open_to_look(sidecar: &Path) -> OsResult<Option<File>> {
  match OpenOptions::new()
    .read(true)
    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
    .open(sidecar)
  {
    Ok(f) => Ok(Some(f)),
    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
    Err(e) => Err(OsError::on("open")(e)),
  }
}

/// Who holds a lock on `sidecar`, asked with F_GETLK, which reports a conflicting lock without
/// taking any: `Some(Exclusive)`, `Some(Shared)`, or `None` for nobody. It sees flocks only where
/// the kernel keeps them in one list with fcntl locks (macOS and the BSDs); Linux keeps the two
/// apart, so there it sees fcntl locks only.
pub fn test_lock(sidecar: &Path) -> OsResult<Option<Mode>> {
  use std::os::fd::AsRawFd;
  let Some(file) = open_to_look(sidecar)? else {
    return Ok(None);
  };
  // The constants are c_int on Linux and c_short (l_type's type) on macOS.
  #[allow(clippy::unnecessary_cast)]
  let (write, read) = (
    libc::F_WRLCK as libc::c_short,
    libc::F_RDLCK as libc::c_short,
  );
  // A write lock over the whole file conflicts with any lock on it, so the one reported is a
  // holder of either kind; whole-file flocks of both kinds never coexist.
  // SAFETY: a zeroed flock is valid; its fields are set below.
  let mut fl: libc::flock = unsafe { std::mem::zeroed() };
  fl.l_type = write;
  fl.l_whence = libc::SEEK_SET as libc::c_short;
  fl.l_start = 0;
  fl.l_len = 0;
  // SAFETY: F_GETLK on an open descriptor with a valid flock. Closing `file` afterwards would
  // drop this process's fcntl locks on the file, and index-lock takes none.
  if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) } != 0 {
    return Err(OsError::on("fcntl")(io::Error::last_os_error()));
  }
  Ok(match fl.l_type {
    t if t == write => Some(Mode::Exclusive),
    t if t == read => Some(Mode::Shared),
    _ => None,
  })
}

/// Whether `sidecar` is locked exclusively, told by a shared flock tried without waiting on a
/// descriptor of its own and dropped at once: `Some(Exclusive)` when refused, else `None` (shared
/// holders do not show). For where nothing can be asked without a lock: a shared request is never
/// refused for it, an exclusive try that lands in its few microseconds is.
pub fn probe_shared(sidecar: &Path) -> OsResult<Option<Mode>> {
  let Some(file) = open_to_look(sidecar)? else {
    return Ok(None);
  };
  let free = try_lock(&file, Mode::Shared).map_err(OsError::on("flock"))?;
  Ok((!free).then_some(Mode::Exclusive))
}

/// The open-files soft limit (RLIMIT_NOFILE); `None` when unlimited or unknown.
pub fn open_files_limit() -> Option<u64> {
  // SAFETY: a zeroed rlimit is a valid out-parameter.
  let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
  if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0
    || rl.rlim_cur == libc::RLIM_INFINITY
  {
    return None;
  }
  #[allow(clippy::useless_conversion)]
  u64::try_from(rl.rlim_cur).ok()
}

/// Whether an open failed because the process (EMFILE) or the system (ENFILE) has no descriptor
/// left.
pub fn out_of_descriptors(e: &io::Error) -> bool {
  matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Whether the file behind `file` has lost its last name (deleted, or replaced by a rename over
/// it) since it was opened: one fstat.
pub fn unlinked(file: &File) -> io::Result<bool> {
  Ok(file.metadata()?.nlink() == 0)
}

#[cfg(test)]
mod look_tests {
  use super::*;

  /// Linux keeps flocks apart from fcntl locks, so the F_GETLK reading is tested here against
  /// open-file-description (OFD) fcntl locks, which it reports as it reports flocks on macOS.
  #[cfg(target_os = "linux")]
  #[test]
  fn test_lock_reads_the_mode_of_a_lock_without_taking_one() {
    use std::os::fd::AsRawFd;
    let d = crate::testdir::fresh("test-lock");
    let p = d.join("index.json.lock");
    assert_eq!(test_lock(&p).unwrap(), None);
    assert!(!p.exists(), "a look creates nothing");
    let holder = OpenOptions::new()
      .read(true)
      .write(true)
      .create(true)
      .truncate(false)
      .open(&p)
      .unwrap();
    let set = |kind: libc::c_int| {
      // SAFETY: a zeroed flock is valid; F_OFD_SETLK on an open descriptor.
      let mut fl: libc::flock = unsafe { std::mem::zeroed() };
      fl.l_type = kind as _;
      fl.l_whence = libc::SEEK_SET as _;
      assert_eq!(
        unsafe { libc::fcntl(holder.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) },
        0
      );
    };
    assert_eq!(test_lock(&p).unwrap(), None);
    set(libc::F_RDLCK);
    assert_eq!(test_lock(&p).unwrap(), Some(Mode::Shared));
    set(libc::F_WRLCK);
    assert_eq!(test_lock(&p).unwrap(), Some(Mode::Exclusive));
    // The look took nothing: the holder can still change its lock, and drop it.
    set(libc::F_UNLCK);
    assert_eq!(test_lock(&p).unwrap(), None);
    drop(holder);
    fs::remove_dir_all(d).unwrap();
  }

  #[test]
  fn a_shared_probe_sees_an_exclusive_holder_and_refuses_no_shared_one() {
    let d = crate::testdir::fresh("probe-shared");
    let p = d.join("index.json.lock");
    assert_eq!(probe_shared(&p).unwrap(), None);
    assert!(!p.exists(), "a probe creates nothing");
    let a = open_sidecar(&p).unwrap();
    assert!(try_lock(&a, Mode::Exclusive).unwrap());
    assert_eq!(probe_shared(&p).unwrap(), Some(Mode::Exclusive));
    unlock(&a).unwrap();
    assert!(try_lock(&a, Mode::Shared).unwrap());
    assert_eq!(probe_shared(&p).unwrap(), None);
    // Dropped at once: an exclusive request is free to go once the holder lets go.
    unlock(&a).unwrap();
    let b = open_sidecar(&p).unwrap();
    assert!(try_lock(&b, Mode::Exclusive).unwrap());
    drop((a, b));
    fs::remove_dir_all(d).unwrap();
  }
}

#[cfg(test)]
thread_local! {
  /// Makes `try_lock` on this thread follow NFS's rule: an exclusive flock needs a writable
  /// descriptor (EBADF otherwise). No filesystem here has that rule; Rust tests use this.
  pub static EXCLUSIVE_NEEDS_WRITE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn emulated_refusal(file: &File, mode: Mode) -> io::Result<()> {
  use std::os::unix::io::AsRawFd;
  if mode == Mode::Exclusive && EXCLUSIVE_NEEDS_WRITE.with(|f| f.get()) {
    // SAFETY: F_GETFL on a descriptor we own.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    if flags & libc::O_ACCMODE == libc::O_RDONLY {
      return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
  }
  Ok(())
}

/// flock(2) without blocking: `Ok(false)` when another open file description holds it.
pub fn try_lock(file: &File, mode: Mode) -> io::Result<bool> {
  #[cfg(test)]
  emulated_refusal(file, mode)?;
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
/// reading would wait for a writer). Without `follow`, a symlink there is refused (`ELOOP`).
pub fn open_read(path: &Path, follow: bool) -> io::Result<File> {
  let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
  OpenOptions::new()
    .read(true)
    .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | nofollow)
    .open(path)
}

/// True for the error an open without `follow` gives on a symlink.
pub fn is_symlink_refused(e: &io::Error) -> bool {
  e.raw_os_error() == Some(libc::ELOOP)
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

/// Gives the temp file the replaced file's owner where we may, its POSIX access ACL (Linux),
/// then its final permission bits. Runs before any data is written; until then the temp file is
/// owner-only (see `atomic::write`).
pub fn stage_temp(
  file: &File,
  target: &Path,
  previous: Option<&fs::Metadata>,
  perm: Option<u32>,
) -> OsResult<()> {
  if let Some(prev) = previous {
    // Keep the owner of the replaced file where we may (root rewriting a user's index);
    // anyone else cannot change owners, and the file then becomes theirs, as with any rewrite.
    if prev.uid() != unsafe { libc::geteuid() } || prev.gid() != unsafe { libc::getegid() } {
      let _ = std::os::unix::fs::fchown(file, Some(prev.uid()), Some(prev.gid()));
    }
    #[cfg(target_os = "linux")]
    copy_acl(file, target)?;
  }
  #[cfg(not(target_os = "linux"))]
  let _ = target;
  // After the ACL: chmod sets the ACL's mask to the group bits, so the final bits are `perm`
  // exactly, also when the caller's `mode` differs from the replaced file's.
  if let Some(perm) = perm {
    file
      .set_permissions(fs::Permissions::from_mode(perm))
      .map_err(OsError::on("fchmod"))?;
  }
  Ok(())
}

/// The extended attribute holding a file's POSIX access ACL on Linux.
#[cfg(target_os = "linux")]
const ACL_ACCESS: &std::ffi::CStr = c"system.posix_acl_access";

/// Gives the temp file the access ACL of the file it replaces, or none when that has none (the
/// temp may have inherited one from the directory's default ACL). Permission bits alone would
/// widen access: with `group::---` and `mask::r--` the bits show the mask (0640), and the owning
/// group would read the rewritten file. A filesystem without ACLs has nothing to copy.
#[cfg(target_os = "linux")]
fn copy_acl(file: &File, target: &Path) -> OsResult<()> {
  use std::os::fd::AsRawFd;
  let unsupported = |e: &io::Error| {
    matches!(
      e.raw_os_error(),
      Some(libc::ENOTSUP | libc::ENODATA | libc::ENOSYS)
    )
  };
  let fd = file.as_raw_fd();
  match read_acl(target) {
    Ok(Some(acl)) => {
      // SAFETY: `fd` is open; name and value are valid for the given lengths.
      let r =
        unsafe { libc::fsetxattr(fd, ACL_ACCESS.as_ptr(), acl.as_ptr().cast(), acl.len(), 0) };
      if r != 0 {
        return Err(OsError::on("fsetxattr")(io::Error::last_os_error()));
      }
    }
    Ok(None) => {
      // SAFETY: `fd` is open; the name is a valid C string.
      if unsafe { libc::fremovexattr(fd, ACL_ACCESS.as_ptr()) } != 0 {
        let e = io::Error::last_os_error();
        if !unsupported(&e) {
          return Err(OsError::on("fremovexattr")(e));
        }
      }
    }
    Err(e) if unsupported(&e) || e.kind() == io::ErrorKind::NotFound => {}
    Err(e) => return Err(OsError::on("getxattr")(e)),
  }
  Ok(())
}

/// The access ACL of `path` as its raw xattr value; `None` when it has none.
#[cfg(target_os = "linux")]
fn read_acl(path: &Path) -> io::Result<Option<Vec<u8>>> {
  let c = CString::new(path.as_os_str().as_bytes())
    .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
  loop {
    // SAFETY: a null buffer of length 0 asks for the value's size.
    let size = unsafe { libc::getxattr(c.as_ptr(), ACL_ACCESS.as_ptr(), std::ptr::null_mut(), 0) };
    if size < 0 {
      let e = io::Error::last_os_error();
      return match e.raw_os_error() {
        Some(libc::ENODATA) => Ok(None),
        _ => Err(e),
      };
    }
    let mut buf = vec![0u8; size as usize];
    // SAFETY: `buf` is valid for `buf.len()` bytes.
    let got = unsafe {
      libc::getxattr(
        c.as_ptr(),
        ACL_ACCESS.as_ptr(),
        buf.as_mut_ptr().cast(),
        buf.len(),
      )
    };
    if got >= 0 {
      buf.truncate(got as usize);
      return Ok(Some(buf));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
      // Changed size in between: ask again.
      Some(libc::ERANGE) => continue,
      Some(libc::ENODATA) => return Ok(None),
      _ => return Err(e),
    }
  }
}

/// Removes a temp file (a failed save's own, or a sweep's orphan): unlink(2), which the file's
/// own mode does not restrict.
pub fn remove_temp(path: &Path) -> io::Result<()> {
  fs::remove_file(path)
}

/// rename(2): atomic replacement, whoever has the old file open.
pub fn replace(tmp: &Path, target: &Path) -> io::Result<()> {
  fs::rename(tmp, target)
}

/// fsync of the directory: the rename lives in it, and without this a crash can bring the old
/// file back. An error of the open counts as the fsync's.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
  File::open(dir).and_then(|d| d.sync_all())
}

/// "Stale file handle": a distributed filesystem's client still held the handle of a file that
/// another host replaced.
pub fn is_stale(e: &io::Error) -> bool {
  e.raw_os_error() == Some(libc::ESTALE)
}

/// Node's `errno` (negative), code and text for an OS error number.
pub fn translate(raw: i32) -> Option<(i32, &'static str, &'static str)> {
  ERRNOS
    .iter()
    .find(|(n, _, _)| *n == raw)
    .map(|&(n, name, text)| (-n, name, text))
}

/// errno values and the names and short texts libuv (and so Node) uses for them: every errno
/// Node names (`os.constants.errno`, `util.getSystemErrorMap()`), so no OS error reaches JS as a
/// bare number. Texts of errnos libuv has no text for follow strerror. Windows codes are named in
/// `windows.rs`.
const ERRNOS: &[(i32, &str, &str)] = &[
  (libc::E2BIG, "E2BIG", "argument list too long"),
  (libc::EACCES, "EACCES", "permission denied"),
  (libc::EADDRINUSE, "EADDRINUSE", "address already in use"),
  (
    libc::EADDRNOTAVAIL,
    "EADDRNOTAVAIL",
    "address not available",
  ),
  (
    libc::EAFNOSUPPORT,
    "EAFNOSUPPORT",
    "address family not supported",
  ),
  (libc::EAGAIN, "EAGAIN", "resource temporarily unavailable"),
  (libc::EALREADY, "EALREADY", "connection already in progress"),
  (libc::EBADF, "EBADF", "bad file descriptor"),
  (libc::EBADMSG, "EBADMSG", "bad message"),
  (libc::EBUSY, "EBUSY", "resource busy or locked"),
  (libc::ECANCELED, "ECANCELED", "operation canceled"),
  (libc::ECHILD, "ECHILD", "no child processes"),
  (
    libc::ECONNABORTED,
    "ECONNABORTED",
    "software caused connection abort",
  ),
  (libc::ECONNREFUSED, "ECONNREFUSED", "connection refused"),
  (libc::ECONNRESET, "ECONNRESET", "connection reset by peer"),
  (libc::EDEADLK, "EDEADLK", "resource deadlock avoided"),
  (
    libc::EDESTADDRREQ,
    "EDESTADDRREQ",
    "destination address required",
  ),
  (libc::EDOM, "EDOM", "numerical argument out of domain"),
  (libc::EDQUOT, "EDQUOT", "disk quota exceeded"),
  (libc::EEXIST, "EEXIST", "file already exists"),
  (
    libc::EFAULT,
    "EFAULT",
    "bad address in system call argument",
  ),
  (libc::EFBIG, "EFBIG", "file too large"),
  (libc::EHOSTDOWN, "EHOSTDOWN", "host is down"),
  (libc::EHOSTUNREACH, "EHOSTUNREACH", "host is unreachable"),
  (libc::EIDRM, "EIDRM", "identifier removed"),
  (libc::EILSEQ, "EILSEQ", "illegal byte sequence"),
  (
    libc::EINPROGRESS,
    "EINPROGRESS",
    "operation now in progress",
  ),
  (libc::EINTR, "EINTR", "interrupted system call"),
  (libc::EINVAL, "EINVAL", "invalid argument"),
  (libc::EIO, "EIO", "i/o error"),
  (libc::EISCONN, "EISCONN", "socket is already connected"),
  (libc::EISDIR, "EISDIR", "illegal operation on a directory"),
  (libc::ELOOP, "ELOOP", "too many symbolic links encountered"),
  (libc::EMFILE, "EMFILE", "too many open files"),
  (libc::EMLINK, "EMLINK", "too many links"),
  (libc::EMSGSIZE, "EMSGSIZE", "message too long"),
  (libc::EMULTIHOP, "EMULTIHOP", "multihop attempted"),
  (libc::ENAMETOOLONG, "ENAMETOOLONG", "name too long"),
  (libc::ENETDOWN, "ENETDOWN", "network is down"),
  (libc::ENETRESET, "ENETRESET", "connection reset by network"),
  (libc::ENETUNREACH, "ENETUNREACH", "network is unreachable"),
  (libc::ENFILE, "ENFILE", "file table overflow"),
  (libc::ENOBUFS, "ENOBUFS", "no buffer space available"),
  (libc::ENODATA, "ENODATA", "no data available"),
  (libc::ENODEV, "ENODEV", "no such device"),
  (libc::ENOENT, "ENOENT", "no such file or directory"),
  (libc::ENOEXEC, "ENOEXEC", "exec format error"),
  (libc::ENOLCK, "ENOLCK", "no locks available"),
  (libc::ENOLINK, "ENOLINK", "link has been severed"),
  (libc::ENOMEM, "ENOMEM", "not enough memory"),
  (libc::ENOMSG, "ENOMSG", "no message of desired type"),
  (libc::ENOPROTOOPT, "ENOPROTOOPT", "protocol not available"),
  (libc::ENOSPC, "ENOSPC", "no space left on device"),
  (libc::ENOSR, "ENOSR", "out of streams resources"),
  (libc::ENOSTR, "ENOSTR", "device not a stream"),
  (libc::ENOSYS, "ENOSYS", "function not implemented"),
  (libc::ENOTCONN, "ENOTCONN", "socket is not connected"),
  (libc::ENOTDIR, "ENOTDIR", "not a directory"),
  (libc::ENOTEMPTY, "ENOTEMPTY", "directory not empty"),
  (libc::ENOTSOCK, "ENOTSOCK", "socket operation on non-socket"),
  (
    libc::ENOTSUP,
    "ENOTSUP",
    "operation not supported on socket",
  ),
  (libc::ENOTTY, "ENOTTY", "inappropriate ioctl for device"),
  (libc::ENXIO, "ENXIO", "no such device or address"),
  (
    libc::EOVERFLOW,
    "EOVERFLOW",
    "value too large for defined data type",
  ),
  (libc::EPERM, "EPERM", "operation not permitted"),
  (libc::EPIPE, "EPIPE", "broken pipe"),
  (libc::EPROTO, "EPROTO", "protocol error"),
  (
    libc::EPROTONOSUPPORT,
    "EPROTONOSUPPORT",
    "protocol not supported",
  ),
  (
    libc::EPROTOTYPE,
    "EPROTOTYPE",
    "protocol wrong type for socket",
  ),
  (libc::ERANGE, "ERANGE", "result too large"),
  (libc::EROFS, "EROFS", "read-only file system"),
  (
    libc::ESHUTDOWN,
    "ESHUTDOWN",
    "cannot send after transport endpoint shutdown",
  ),
  (
    libc::ESOCKTNOSUPPORT,
    "ESOCKTNOSUPPORT",
    "socket type not supported",
  ),
  (libc::ESPIPE, "ESPIPE", "invalid seek"),
  (libc::ESRCH, "ESRCH", "no such process"),
  (libc::ESTALE, "ESTALE", "stale file handle"),
  (libc::ETIME, "ETIME", "timer expired"),
  (libc::ETIMEDOUT, "ETIMEDOUT", "connection timed out"),
  (libc::ETXTBSY, "ETXTBSY", "text file is busy"),
  (libc::EXDEV, "EXDEV", "cross-device link not permitted"),
  // Not named by Node, but met on Linux filesystems (a dead FUSE or network mount, removable
  // media, keyrings of encrypted directories, a corrupted filesystem).
  #[cfg(target_os = "linux")]
  (libc::ENONET, "ENONET", "machine is not on the network"),
  #[cfg(target_os = "linux")]
  (libc::EREMOTEIO, "EREMOTEIO", "remote I/O error"),
  #[cfg(target_os = "linux")]
  (libc::EUNATCH, "EUNATCH", "protocol driver not attached"),
  #[cfg(target_os = "linux")]
  (libc::ECOMM, "ECOMM", "communication error on send"),
  #[cfg(target_os = "linux")]
  (libc::EBADFD, "EBADFD", "file descriptor in bad state"),
  #[cfg(target_os = "linux")]
  (libc::ENOMEDIUM, "ENOMEDIUM", "no medium found"),
  #[cfg(target_os = "linux")]
  (libc::EMEDIUMTYPE, "EMEDIUMTYPE", "wrong medium type"),
  #[cfg(target_os = "linux")]
  (libc::ENOKEY, "ENOKEY", "required key not available"),
  #[cfg(target_os = "linux")]
  (libc::EKEYEXPIRED, "EKEYEXPIRED", "key has expired"),
  #[cfg(target_os = "linux")]
  (libc::EKEYREVOKED, "EKEYREVOKED", "key has been revoked"),
  #[cfg(target_os = "linux")]
  (
    libc::EKEYREJECTED,
    "EKEYREJECTED",
    "key was rejected by service",
  ),
  #[cfg(target_os = "linux")]
  (libc::EUCLEAN, "EUCLEAN", "structure needs cleaning"),
  #[cfg(target_os = "linux")]
  (libc::EREMOTE, "EREMOTE", "object is remote"),
  #[cfg(target_os = "linux")]
  (libc::ENOTUNIQ, "ENOTUNIQ", "name not unique on network"),
  #[cfg(target_os = "linux")]
  (
    libc::EHWPOISON,
    "EHWPOISON",
    "memory page has hardware error",
  ),
  #[cfg(target_os = "linux")]
  (
    libc::ERFKILL,
    "ERFKILL",
    "operation not possible due to rf-kill",
  ),
  #[cfg(target_os = "linux")]
  (libc::EOWNERDEAD, "EOWNERDEAD", "owner died"),
  #[cfg(target_os = "linux")]
  (
    libc::ENOTRECOVERABLE,
    "ENOTRECOVERABLE",
    "state not recoverable",
  ),
  #[cfg(target_os = "linux")]
  (libc::ENOPKG, "ENOPKG", "package not installed"),
  #[cfg(target_os = "linux")]
  (libc::ENOTNAM, "ENOTNAM", "not a XENIX named type file"),
  #[cfg(target_os = "linux")]
  (libc::EISNAM, "EISNAM", "is a named type file"),
  #[cfg(target_os = "linux")]
  (libc::EXFULL, "EXFULL", "exchange full"),
  #[cfg(target_os = "linux")]
  (libc::ECHRNG, "ECHRNG", "channel number out of range"),
  #[cfg(target_os = "linux")]
  (libc::EL2NSYNC, "EL2NSYNC", "level 2 not synchronized"),
  #[cfg(target_os = "linux")]
  (libc::EL3HLT, "EL3HLT", "level 3 halted"),
  #[cfg(target_os = "linux")]
  (libc::EL3RST, "EL3RST", "level 3 reset"),
  #[cfg(target_os = "linux")]
  (libc::ELNRNG, "ELNRNG", "link number out of range"),
  #[cfg(target_os = "linux")]
  (libc::ENOCSI, "ENOCSI", "no CSI structure available"),
  #[cfg(target_os = "linux")]
  (libc::EL2HLT, "EL2HLT", "level 2 halted"),
  #[cfg(target_os = "linux")]
  (libc::EBADE, "EBADE", "invalid exchange"),
  #[cfg(target_os = "linux")]
  (libc::EBADR, "EBADR", "invalid request descriptor"),
  #[cfg(target_os = "linux")]
  (libc::ENOANO, "ENOANO", "no anode"),
  #[cfg(target_os = "linux")]
  (libc::EBADRQC, "EBADRQC", "invalid request code"),
  #[cfg(target_os = "linux")]
  (libc::EBADSLT, "EBADSLT", "invalid slot"),
  #[cfg(target_os = "linux")]
  (libc::EBFONT, "EBFONT", "bad font file format"),
  #[cfg(target_os = "linux")]
  (libc::EADV, "EADV", "advertise error"),
  #[cfg(target_os = "linux")]
  (libc::ESRMNT, "ESRMNT", "srmount error"),
  #[cfg(target_os = "linux")]
  (libc::EDOTDOT, "EDOTDOT", "RFS specific error"),
  #[cfg(target_os = "linux")]
  (libc::ENAVAIL, "ENAVAIL", "no XENIX semaphores available"),
  #[cfg(target_os = "linux")]
  (
    libc::ELIBACC,
    "ELIBACC",
    "can not access a needed shared library",
  ),
  #[cfg(target_os = "linux")]
  (
    libc::ELIBBAD,
    "ELIBBAD",
    "accessing a corrupted shared library",
  ),
  #[cfg(target_os = "linux")]
  (libc::ELIBSCN, "ELIBSCN", ".lib section in a.out corrupted"),
  #[cfg(target_os = "linux")]
  (
    libc::ELIBMAX,
    "ELIBMAX",
    "attempting to link in too many shared libraries",
  ),
  #[cfg(target_os = "linux")]
  (
    libc::ELIBEXEC,
    "ELIBEXEC",
    "cannot exec a shared library directly",
  ),
  #[cfg(target_os = "linux")]
  (
    libc::ERESTART,
    "ERESTART",
    "interrupted system call should be restarted",
  ),
  #[cfg(target_os = "linux")]
  (libc::ESTRPIPE, "ESTRPIPE", "streams pipe error"),
  #[cfg(target_os = "linux")]
  (libc::EUSERS, "EUSERS", "too many users"),
  #[cfg(target_os = "linux")]
  (
    libc::ETOOMANYREFS,
    "ETOOMANYREFS",
    "too many references: cannot splice",
  ),
  #[cfg(target_os = "linux")]
  (libc::ENOTBLK, "ENOTBLK", "block device required"),
];

/// A file name from bytes (Unix names are any bytes but `/` and NUL).
pub fn os_string(bytes: Vec<u8>) -> OsString {
  OsString::from_vec(bytes)
}

/// Unix paths need no rewriting: `fs::canonicalize` returns them plain.
pub fn simplify(path: std::path::PathBuf) -> std::path::PathBuf {
  path
}

/// statfs(2) of a directory. A path with a NUL byte, which no system call takes, fails as std
/// fails it: `InvalidInput`, with no OS error code.
pub fn statfs(dir: &Path) -> io::Result<libc::statfs> {
  let c = CString::new(dir.as_os_str().as_bytes())
    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
  // SAFETY: a zeroed statfs is a valid out-parameter; `c` is a valid C string.
  let mut st: libc::statfs = unsafe { std::mem::zeroed() };
  if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
    return Err(io::Error::last_os_error());
  }
  Ok(st)
}
