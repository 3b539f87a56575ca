//! The one error type of the native core, mapped to JS errors with stable codes.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the native core. The JS layer turns each variant into the
/// matching JS error class; the `code` strings are part of the public contract.
#[derive(Debug)]
pub enum Error {
  /// An OS call failed; reported the way Node's fs errors are (`code`, `errno`, `syscall`, `path`).
  Io {
    source: io::Error,
    syscall: &'static str,
    path: PathBuf,
  },
  /// An argument only the native side can judge (a NUL byte, a path that names no file).
  InvalidArgValue { name: &'static str, reason: String },
  /// A queued lock wait was cancelled by its caller (timeout or abort, decided in JS).
  Cancelled,
  /// A blocking wait by a thread that already holds (or waits for) the path: it could only hang.
  Deadlock { path: PathBuf },
  /// A blocking exclusive request by a thread that holds the path shared.
  Upgrade { path: PathBuf },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
  pub fn io(source: io::Error, syscall: &'static str, path: &Path) -> Self {
    Error::Io {
      source,
      syscall,
      path: path.to_path_buf(),
    }
  }

  /// An OS error from a bare errno value (for conditions we detect ourselves, e.g. `EISDIR`: pass
  /// `sys::errno::*`, which every OS names the same).
  pub fn errno(errno: i32, syscall: &'static str, path: &Path) -> Self {
    Self::io(io::Error::from_raw_os_error(errno), syscall, path)
  }

  /// Stable code string: `ENOENT`-style for OS errors, Node's `ERR_*` for arguments.
  pub fn code(&self) -> String {
    match self {
      Error::Io { source, .. } => errno_name(source),
      Error::InvalidArgValue { .. } => "ERR_INVALID_ARG_VALUE".into(),
      Error::Cancelled => "ECANCELED".into(),
      Error::Deadlock { .. } => "ELOCKDEADLOCK".into(),
      Error::Upgrade { .. } => "ELOCKUPGRADE".into(),
    }
  }

  pub fn message(&self) -> String {
    match self {
      Error::Io {
        source,
        syscall,
        path,
      } => format!(
        "{}: {}, {} '{}'",
        errno_name(source),
        describe(source),
        syscall,
        path.display()
      ),
      Error::InvalidArgValue { name, reason } => {
        format!("The argument '{name}' {reason}")
      }
      Error::Cancelled => "lock wait cancelled".into(),
      Error::Deadlock { path } => format!(
        "Waiting for the lock on '{}' would deadlock: this thread already holds or awaits it",
        path.display()
      ),
      Error::Upgrade { path } => format!(
        "Cannot take the exclusive lock on '{}' while this thread holds it shared; \
         take it exclusive from the start",
        path.display()
      ),
    }
  }

  /// The JSON payload the JS layer rebuilds a proper error object from.
  pub fn to_json(&self) -> String {
    let mut v = serde_json::json!({ "code": self.code(), "message": self.message() });
    match self {
      Error::Io {
        source,
        syscall,
        path,
      } => {
        let errno = lookup(source).map_or(-source.raw_os_error().unwrap_or(0), |(n, _, _)| n);
        v["errno"] = serde_json::json!(errno);
        v["syscall"] = serde_json::json!(syscall);
        v["path"] = serde_json::json!(path.to_string_lossy());
      }
      Error::Deadlock { path } | Error::Upgrade { path } => {
        v["path"] = serde_json::json!(path.to_string_lossy());
      }
      _ => {}
    }
    v.to_string()
  }
}

impl std::fmt::Display for Error {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.write_str(&self.message())
  }
}

impl std::error::Error for Error {}

impl From<Error> for napi::Error {
  fn from(e: Error) -> Self {
    napi::Error::new(napi::Status::GenericFailure, e.to_json())
  }
}

/// errno values and the short texts libuv (and so Node) uses for them (Unix; Windows codes are
/// in `sys::windows`).
#[cfg(unix)]
pub(crate) const ERRNOS: &[(i32, &str, &str)] = &[
  (libc::EPERM, "EPERM", "operation not permitted"),
  (libc::ENOENT, "ENOENT", "no such file or directory"),
  (libc::EINTR, "EINTR", "interrupted system call"),
  (libc::EIO, "EIO", "i/o error"),
  (libc::ENXIO, "ENXIO", "no such device or address"),
  (libc::EBADF, "EBADF", "bad file descriptor"),
  (libc::EAGAIN, "EAGAIN", "resource temporarily unavailable"),
  (libc::ENOMEM, "ENOMEM", "not enough memory"),
  (libc::EACCES, "EACCES", "permission denied"),
  (libc::EBUSY, "EBUSY", "resource busy or locked"),
  (libc::EEXIST, "EEXIST", "file already exists"),
  (libc::EXDEV, "EXDEV", "cross-device link not permitted"),
  (libc::ENODEV, "ENODEV", "no such device"),
  (libc::ENOTDIR, "ENOTDIR", "not a directory"),
  (libc::EISDIR, "EISDIR", "illegal operation on a directory"),
  (libc::EINVAL, "EINVAL", "invalid argument"),
  (libc::ENFILE, "ENFILE", "file table overflow"),
  (libc::EMFILE, "EMFILE", "too many open files"),
  (libc::ETXTBSY, "ETXTBSY", "text file is busy"),
  (libc::EFBIG, "EFBIG", "file too large"),
  (libc::ENOSPC, "ENOSPC", "no space left on device"),
  (libc::EROFS, "EROFS", "read-only file system"),
  (libc::EMLINK, "EMLINK", "too many links"),
  (libc::ENAMETOOLONG, "ENAMETOOLONG", "name too long"),
  (libc::ENOLCK, "ENOLCK", "no locks available"),
  (libc::ENOSYS, "ENOSYS", "function not implemented"),
  (libc::ENOTEMPTY, "ENOTEMPTY", "directory not empty"),
  (libc::ELOOP, "ELOOP", "too many symbolic links encountered"),
  (
    libc::EOPNOTSUPP,
    "ENOTSUP",
    "operation not supported on socket",
  ),
  (libc::ESTALE, "ESTALE", "stale file handle"),
  (libc::EDQUOT, "EDQUOT", "disk quota exceeded"),
  (libc::ETIMEDOUT, "ETIMEDOUT", "connection timed out"),
];

/// Node's errno number, code and text for an OS error.
fn lookup(e: &io::Error) -> Option<(i32, &'static str, &'static str)> {
  crate::sys::translate(e.raw_os_error()?)
}

/// `ENOENT` for errno 2; `EUNKNOWN` where the OS gave no errno we know.
pub fn errno_name(e: &io::Error) -> String {
  match (lookup(e), e.raw_os_error()) {
    (Some((_, name, _)), _) => name.into(),
    (None, Some(n)) => format!("E{n}"),
    (None, None) => "EUNKNOWN".into(),
  }
}

fn describe(e: &io::Error) -> String {
  match lookup(e) {
    Some((_, _, text)) => text.into(),
    None => e.to_string(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[cfg(unix)]
  #[test]
  fn io_errors_look_like_node_fs_errors() {
    let e = Error::errno(libc::ENOENT, "open", Path::new("/x/index.json"));
    assert_eq!(e.code(), "ENOENT");
    assert_eq!(
      e.message(),
      "ENOENT: no such file or directory, open '/x/index.json'"
    );
    let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
    assert_eq!(v["errno"], -2);
    assert_eq!(v["syscall"], "open");
    assert_eq!(v["path"], "/x/index.json");
  }

  #[test]
  fn conditions_detected_here_have_one_name_everywhere() {
    let e = Error::errno(crate::sys::errno::EISDIR, "open", Path::new("index.json"));
    assert_eq!(e.code(), "EISDIR");
    assert!(e
      .message()
      .starts_with("EISDIR: illegal operation on a directory, open"));
    let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
    assert_eq!(
      v["errno"],
      if cfg!(windows) { -4068 } else { -libc::EISDIR }
    );
    assert_eq!(
      Error::errno(crate::sys::errno::ELOOP, "open", Path::new("x")).code(),
      "ELOOP"
    );
  }

  #[cfg(windows)]
  #[test]
  fn windows_codes_get_libuv_names_and_numbers() {
    use windows_sys::Win32::Foundation as W;
    for (code, name, errno) in [
      (W::ERROR_FILE_NOT_FOUND, "ENOENT", -4058),
      (W::ERROR_PATH_NOT_FOUND, "ENOENT", -4058),
      (W::ERROR_ACCESS_DENIED, "EPERM", -4048),
      (W::ERROR_SHARING_VIOLATION, "EBUSY", -4082),
      (W::ERROR_LOCK_VIOLATION, "EBUSY", -4082),
      (W::ERROR_FILE_EXISTS, "EEXIST", -4075),
      (W::ERROR_ALREADY_EXISTS, "EEXIST", -4075),
      (W::ERROR_DISK_FULL, "ENOSPC", -4055),
      (W::ERROR_HANDLE_DISK_FULL, "ENOSPC", -4055),
      (W::ERROR_FILENAME_EXCED_RANGE, "ENAMETOOLONG", -4064),
      (W::ERROR_DIRECTORY, "ENOENT", -4058),
    ] {
      let e = Error::io(
        io::Error::from_raw_os_error(code as i32),
        "open",
        Path::new("x"),
      );
      assert_eq!(e.code(), name);
      let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
      assert_eq!(v["errno"], errno, "{name}");
    }
  }

  #[cfg(unix)]
  #[test]
  fn unknown_errno_keeps_its_number() {
    let e = Error::errno(200, "open", Path::new("/x"));
    assert_eq!(e.code(), "E200");
  }
}
