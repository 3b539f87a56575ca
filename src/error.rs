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
  /// A path whose directory does not exist, so that no file can be created beside it (a lock
  /// file, a temp file): `ENOENT` as Node's `open` of such a path reports it, naming `dir`, the
  /// first directory of the path that does not exist, since a newcomer cannot tell from the path
  /// alone which part is missing. `dangling`: `dir` is a symlink to nothing.
  NoDirectory {
    source: io::Error,
    path: PathBuf,
    dir: PathBuf,
    dangling: bool,
  },
  /// An argument only the native side can judge (a NUL byte, a path that names no file).
  InvalidArgValue { name: &'static str, reason: String },
  /// A queued lock wait was cancelled by its caller (timeout or abort, decided in JS).
  Cancelled,
  /// A blocking wait by a thread that already holds (or waits for) the path: it could only hang.
  Deadlock { path: PathBuf },
  /// A blocking exclusive request by a thread that holds the path shared.
  Upgrade { path: PathBuf },
  /// A FIFO, socket or device where a regular file is expected: replacing it would destroy it
  /// (or, as root, a device node such as /dev/null), and reading it could block forever.
  NotRegular {
    kind: &'static str,
    syscall: &'static str,
    path: PathBuf,
  },
  /// Some orphaned temp files could not be removed: each failure (an `Io` error naming the
  /// file), and the names that were removed.
  Sweep {
    path: PathBuf,
    removed: Vec<String>,
    errors: Vec<Error>,
  },
  /// A save failed after its rename: the file already holds the new content (readers see it),
  /// only its durability is in doubt. Whoever retries must treat that content as written, or a
  /// retry of an earlier state moves the file backwards.
  Renamed(Box<Error>),
  /// The file an update resolved (and locked) at its call became a symlink while it waited:
  /// following it would read or write a file whose lock is not held.
  Repointed {
    syscall: &'static str,
    path: PathBuf,
  },
  /// A JSON Patch operation that cannot be applied (a `test` that does not match, a missing
  /// path): the call's whole patch is not applied.
  Patch {
    index: usize,
    op: &'static str,
    reason: String,
  },
  /// A file that is not one JSON text (or is blank, `line` 0), as `readJson` reports it.
  Corrupt {
    path: PathBuf,
    line: usize,
    column: usize,
    offset: usize,
    reason: String,
  },
  /// A document nested deeper than the native engine goes (`json::MAX_DEPTH`).
  TooDeep { path: PathBuf, depth: usize },
}

/// libuv's EFTYPE ("inappropriate file type or format"), which Node names: a real errno on the
/// BSDs and macOS, libuv's own number elsewhere.
#[cfg(any(
  target_os = "macos",
  target_os = "ios",
  target_os = "freebsd",
  target_os = "openbsd",
  target_os = "netbsd",
  target_os = "dragonfly"
))]
const EFTYPE: i32 = libc::EFTYPE;
#[cfg(not(any(
  target_os = "macos",
  target_os = "ios",
  target_os = "freebsd",
  target_os = "openbsd",
  target_os = "netbsd",
  target_os = "dragonfly"
)))]
const EFTYPE: i32 = 4028;

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
  pub fn io(source: io::Error, syscall: &'static str, path: &Path) -> Self {
    Error::Io {
      source,
      syscall,
      path: path.to_path_buf(),
    }
  }

  /// The failed system call a platform function reports (`sys::OsError`), at `path`.
  pub fn os(e: crate::sys::OsError, path: &Path) -> Self {
    Self::io(e.source, e.syscall, path)
  }

  /// An OS error from a bare errno value (for conditions we detect ourselves, e.g. `EISDIR`: pass
  /// `sys::errno::*`, which every OS names the same).
  pub fn errno(errno: i32, syscall: &'static str, path: &Path) -> Self {
    Self::io(io::Error::from_raw_os_error(errno), syscall, path)
  }

  /// Stable code string: `ENOENT`-style for OS errors, Node's `ERR_*` for arguments.
  pub fn code(&self) -> String {
    match self {
      Error::Io { source, .. } | Error::NoDirectory { source, .. } => errno_name(source),
      Error::InvalidArgValue { .. } => "ERR_INVALID_ARG_VALUE".into(),
      Error::Cancelled => "ECANCELED".into(),
      Error::Deadlock { .. } => "ELOCKDEADLOCK".into(),
      Error::Upgrade { .. } => "ELOCKUPGRADE".into(),
      Error::NotRegular { .. } => "EFTYPE".into(),
      Error::Sweep { errors, .. } => errors.first().map_or("EUNKNOWN".into(), Error::code),
      Error::Renamed(inner) => inner.code(),
      Error::Repointed { .. } => "ELOOP".into(),
      Error::Patch { .. } => "EPATCH".into(),
      Error::Corrupt { .. } => "ECORRUPT".into(),
      Error::TooDeep { .. } => "ERR_OUT_OF_RANGE".into(),
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
      Error::NoDirectory {
        source,
        path,
        dir,
        dangling,
      } => format!(
        "{}: {}, open '{}': the directory '{}' does not exist{} (index-lock creates no directories)",
        errno_name(source),
        describe(source),
        path.display(),
        dir.display(),
        if *dangling {
          " (a symlink to a missing target)"
        } else {
          ""
        }
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
      Error::NotRegular {
        kind,
        syscall,
        path,
      } => format!(
        "EFTYPE: inappropriate file type or format ({kind}, not a regular file), {syscall} '{}'",
        path.display()
      ),
      Error::Sweep { path, errors, .. } => {
        let each: Vec<String> = errors.iter().map(Error::message).collect();
        format!(
          "Could not remove {} orphaned temp file{} of '{}': {}",
          errors.len(),
          if errors.len() == 1 { "" } else { "s" },
          path.display(),
          each.join("; ")
        )
      }
      Error::Renamed(inner) => inner.message(),
      Error::Patch { index, op, reason } => {
        format!("JSON Patch operation {index} ({op}) cannot be applied: {reason}")
      }
      Error::Corrupt {
        path,
        line,
        column,
        offset,
        reason,
      } => {
        if *line == 0 {
          format!("Corrupt JSON in '{}': {reason}", path.display())
        } else {
          format!(
            "Corrupt JSON in '{}': {reason} at line {line} column {column} (position {offset})",
            path.display()
          )
        }
      }
      Error::TooDeep { path, depth } => format!(
        "'{}' is nested more than {} levels deep, more than the native JSON engine takes; \
         use updateJson for it",
        path.display(),
        depth.saturating_sub(1)
      ),
      Error::Repointed { syscall, path } => format!(
        "ELOOP: '{}' resolves elsewhere now: it, or a directory on its way, was replaced by a \
         symbolic link while this update waited for its lock; not followed, since the lock held \
         is the one of the file resolved at the call, {syscall} '{}'",
        path.display(),
        path.display()
      ),
    }
  }

  /// Marks an error of a save's steps after its rename (see `Renamed`).
  pub fn renamed(self) -> Self {
    match self {
      Error::Renamed(_) => self,
      other => Error::Renamed(Box::new(other)),
    }
  }

  fn to_value(&self) -> serde_json::Value {
    if let Error::Renamed(inner) = self {
      let mut v = inner.to_value();
      v["renamed"] = serde_json::json!(true);
      return v;
    }
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
      Error::Repointed { syscall, path } => {
        let eloop = io::Error::from_raw_os_error(crate::sys::errno::ELOOP);
        v["errno"] = serde_json::json!(lookup(&eloop).map_or(0, |(n, _, _)| n));
        v["syscall"] = serde_json::json!(syscall);
        v["path"] = serde_json::json!(path.to_string_lossy());
      }
      Error::NoDirectory { source, path, .. } => {
        let errno = lookup(source).map_or(-source.raw_os_error().unwrap_or(0), |(n, _, _)| n);
        v["errno"] = serde_json::json!(errno);
        v["syscall"] = serde_json::json!("open");
        v["path"] = serde_json::json!(path.to_string_lossy());
      }
      Error::Patch { index, op, .. } => {
        v["index"] = serde_json::json!(index);
        v["op"] = serde_json::json!(op);
      }
      Error::Corrupt {
        path,
        line,
        column,
        offset,
        reason,
      } => {
        v["path"] = serde_json::json!(path.to_string_lossy());
        v["reason"] = serde_json::json!(reason);
        if *line > 0 {
          v["line"] = serde_json::json!(line);
          v["column"] = serde_json::json!(column);
          v["position"] = serde_json::json!(offset);
        }
      }
      Error::TooDeep { path, depth } => {
        v["path"] = serde_json::json!(path.to_string_lossy());
        v["depth"] = serde_json::json!(depth);
      }
      Error::Deadlock { path } | Error::Upgrade { path } => {
        v["path"] = serde_json::json!(path.to_string_lossy());
      }
      Error::NotRegular { syscall, path, .. } => {
        v["errno"] = serde_json::json!(-EFTYPE);
        v["syscall"] = serde_json::json!(syscall);
        v["path"] = serde_json::json!(path.to_string_lossy());
      }
      Error::Sweep {
        removed, errors, ..
      } => {
        // The first failure's fields on the aggregate, so that code/syscall/path read the way a
        // single failure's would.
        let each: Vec<serde_json::Value> = errors.iter().map(Error::to_value).collect();
        if let Some(first) = each.first() {
          for field in ["errno", "syscall", "path"] {
            if let Some(f) = first.get(field) {
              v[field] = f.clone();
            }
          }
        }
        v["errors"] = serde_json::Value::Array(each);
        v["removed"] = serde_json::json!(removed);
      }
      _ => {}
    }
    v
  }

  /// The JSON payload the JS layer rebuilds a proper error object from.
  pub fn to_json(&self) -> String {
    self.to_value().to_string()
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

/// Node's errno number, code and text for an OS error.
fn lookup(e: &io::Error) -> Option<(i32, &'static str, &'static str)> {
  crate::sys::translate(e.raw_os_error()?)
}

/// `ENOENT` for errno 2; libuv's `UNKNOWN` for an errno it has no name for (the number stays
/// in `errno`); `EUNKNOWN` where the OS gave no errno at all.
pub fn errno_name(e: &io::Error) -> String {
  match (lookup(e), e.raw_os_error()) {
    (Some((_, name, _)), _) => name.into(),
    (None, Some(_)) => "UNKNOWN".into(),
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
      (W::ERROR_MORE_DATA, "ENAMETOOLONG", -4064),
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

  #[test]
  fn unknown_errno_keeps_its_number_but_never_becomes_the_code() {
    let e = Error::errno(200, "open", Path::new("/x"));
    assert_eq!(e.code(), "UNKNOWN");
    let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
    assert_eq!(v["errno"], -200);
  }

  /// `os.constants.errno` of Node 20 on Linux: each must map to Node's own name.
  #[cfg(target_os = "linux")]
  #[test]
  fn every_errno_node_names_has_that_name() {
    let node = r#"{"E2BIG":7,"EACCES":13,"EADDRINUSE":98,"EADDRNOTAVAIL":99,"EAFNOSUPPORT":97,"EAGAIN":11,"EALREADY":114,"EBADF":9,"EBADMSG":74,"EBUSY":16,"ECANCELED":125,"ECHILD":10,"ECONNABORTED":103,"ECONNREFUSED":111,"ECONNRESET":104,"EDEADLK":35,"EDESTADDRREQ":89,"EDOM":33,"EDQUOT":122,"EEXIST":17,"EFAULT":14,"EFBIG":27,"EHOSTUNREACH":113,"EIDRM":43,"EILSEQ":84,"EINPROGRESS":115,"EINTR":4,"EINVAL":22,"EIO":5,"EISCONN":106,"EISDIR":21,"ELOOP":40,"EMFILE":24,"EMLINK":31,"EMSGSIZE":90,"EMULTIHOP":72,"ENAMETOOLONG":36,"ENETDOWN":100,"ENETRESET":102,"ENETUNREACH":101,"ENFILE":23,"ENOBUFS":105,"ENODATA":61,"ENODEV":19,"ENOENT":2,"ENOEXEC":8,"ENOLCK":37,"ENOLINK":67,"ENOMEM":12,"ENOMSG":42,"ENOPROTOOPT":92,"ENOSPC":28,"ENOSR":63,"ENOSTR":60,"ENOSYS":38,"ENOTCONN":107,"ENOTDIR":20,"ENOTEMPTY":39,"ENOTSOCK":88,"ENOTSUP":95,"ENOTTY":25,"ENXIO":6,"EOPNOTSUPP":95,"EOVERFLOW":75,"EPERM":1,"EPIPE":32,"EPROTO":71,"EPROTONOSUPPORT":93,"EPROTOTYPE":91,"ERANGE":34,"EROFS":30,"ESPIPE":29,"ESRCH":3,"ESTALE":116,"ETIME":62,"ETIMEDOUT":110,"ETXTBSY":26,"EWOULDBLOCK":11,"EXDEV":18}"#;
    let node: serde_json::Map<String, serde_json::Value> = serde_json::from_str(node).unwrap();
    // Aliases of one number: Node's error objects use the first name.
    fn alias(n: &str) -> &str {
      match n {
        "EOPNOTSUPP" => "ENOTSUP",
        "EWOULDBLOCK" => "EAGAIN",
        other => other,
      }
    }
    for (name, n) in node {
      let e = Error::errno(n.as_i64().unwrap() as i32, "open", Path::new("/x"));
      assert_eq!(e.code(), alias(&name), "errno {n}");
    }
    // libuv's names beyond those (e.g. a dead FUSE mount, remote I/O).
    for (n, name) in [
      (libc::EHOSTDOWN, "EHOSTDOWN"),
      (libc::EREMOTEIO, "EREMOTEIO"),
      (libc::ENONET, "ENONET"),
    ] {
      assert_eq!(Error::errno(n, "read", Path::new("/x")).code(), name);
    }
    // No errno the kernel defines reaches JS as a bare number.
    for n in 1..134 {
      let code = Error::errno(n, "open", Path::new("/x")).code();
      let bare = code.starts_with('E') && code[1..].bytes().all(|b| b.is_ascii_digit());
      assert!(!bare, "{n}: {code}");
    }
  }

  #[cfg(unix)]
  #[test]
  fn sweep_failures_carry_each_file_and_the_first_ones_fields() {
    let e = Error::Sweep {
      path: PathBuf::from("/d/index.json"),
      removed: vec!["a".into()],
      errors: vec![
        Error::errno(libc::EPERM, "unlink", Path::new("/d/.x.tmp")),
        Error::errno(libc::EBUSY, "unlink", Path::new("/d/.y.tmp")),
      ],
    };
    let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
    assert_eq!(v["code"], "EPERM");
    assert_eq!(v["syscall"], "unlink");
    assert_eq!(v["path"], "/d/.x.tmp");
    assert_eq!(v["removed"], serde_json::json!(["a"]));
    assert_eq!(v["errors"][1]["code"], "EBUSY");
    assert_eq!(v["errors"][1]["path"], "/d/.y.tmp");
    assert!(v["message"].as_str().unwrap().contains("/d/.y.tmp"));
  }
}
