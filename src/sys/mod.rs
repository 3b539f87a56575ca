//! The platform layer: everything that differs between Linux, the other Unixes (macOS) and
//! Windows, behind one set of functions, so the rest of the crate has no `cfg` of its own. The
//! backend is chosen at compile time, the way fs4 does it:
//!
//! - `linux`: flock(2); a blocking wait that a real-time signal interrupts when it is abandoned;
//!   holders and waiters from /proc/locks; filesystem types from /proc/self/mountinfo.
//! - `generic-unix` (macOS, the BSDs, and Linux built with the `generic-unix` feature, which is how
//!   this code is tested on Linux): flock(2); a polling wait; no holder list; filesystem types from
//!   statfs (`f_fstypename` and `MNT_LOCAL` on macOS); case-insensitive volumes detected with
//!   `pathconf(_PC_CASE_SENSITIVE)` on macOS.
//! - `windows`: LockFileEx (std's `File::lock`) over the whole sidecar, which nobody can delete or
//!   rename while it is open; a polling wait; no holder list; network drives told by
//!   `GetDriveTypeW` and UNC paths; a rename that waits out other processes' open handles for a
//!   bounded time.
//!
//! Each backend module defines the same names; `pub use imp::*` makes them this module's.
//!
//! This is the bottom layer: it uses nothing of the crate above it, and reports what the OS says
//! (statfs magics, mount lines and options, whether a drive is remote, errno numbers and their
//! names) without judging it: what a filesystem means for flock is `fstype`'s to say. Its
//! functions fail with a plain `io::Error` (or an `OsError`, which also names the failed call);
//! the caller adds the path and makes it an `error::Error`.

#[cfg(unix)]
mod unix;

#[cfg(any(windows, not(all(target_os = "linux", not(feature = "generic-unix")))))]
mod polling;

#[cfg(all(target_os = "linux", not(feature = "generic-unix")))]
mod linux;
#[cfg(all(target_os = "linux", not(feature = "generic-unix")))]
use linux as imp;

#[cfg(all(unix, any(not(target_os = "linux"), feature = "generic-unix")))]
mod generic;
#[cfg(all(unix, any(not(target_os = "linux"), feature = "generic-unix")))]
use generic as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

pub use imp::*;

/// The lock key of `key` on a case-insensitive volume: `fold_case(key)`, so that every spelling of
/// one file gives one key (one queue, one sidecar name, one place in a set's lock order, one
/// hold). `None` on a case-sensitive volume. Shadows the backend's own `fold_key`, which it
/// asks, so that tests can force folding on Linux: `force_fold_for_test` in Rust tests, and
/// `INDEX_LOCK_FOLD_CASE=1` in the test-only fault-injection build.
pub fn fold_key(key: &std::path::Path) -> Option<std::path::PathBuf> {
  if forced_fold() {
    return Some(fold_case(key));
  }
  imp::fold_key(key)
}

#[cfg(test)]
thread_local! {
  static FORCE_FOLD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes `fold_key` fold on this thread (Rust tests of case-insensitive behaviour on Linux).
#[cfg(test)]
pub fn force_fold_for_test(on: bool) {
  FORCE_FOLD.with(|f| f.set(on));
}

#[cfg(test)]
fn forced_fold() -> bool {
  FORCE_FOLD.with(|f| f.get())
}

#[cfg(all(not(test), feature = "fault-injection"))]
fn forced_fold() -> bool {
  static FORCED: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("INDEX_LOCK_FOLD_CASE").is_some_and(|v| v == "1"));
  *FORCED
}

#[cfg(all(not(test), not(feature = "fault-injection")))]
#[inline(always)]
fn forced_fold() -> bool {
  false
}

/// A failed call of a function here that makes more than one system call: the OS error, and
/// which call it was (`"open"`, `"fstat"`, ...), a fact only this layer has. The caller adds the
/// path it reports (`error::Error::os`). A function that makes one call returns `io::Result`,
/// and its caller names the call. (Backends share signatures: where one backend makes several
/// calls, every backend's version returns `OsResult`.)
#[derive(Debug)]
pub struct OsError {
  pub syscall: &'static str,
  pub source: std::io::Error,
}

pub type OsResult<T> = std::result::Result<T, OsError>;

impl OsError {
  /// `map_err(OsError::on("fstat"))`: the error of that call.
  pub fn on(syscall: &'static str) -> impl FnOnce(std::io::Error) -> OsError {
    move |source| OsError { syscall, source }
  }
}

/// How a lock is held: many shared holders at once, or one exclusive holder. Defined here, at the
/// bottom, because the backends take and report it (`try_lock`, `wait_lock`, `Holder`); the rest
/// of the crate knows it as `lock::Mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
  Shared,
  Exclusive,
}

/// A process holding a lock, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
  pub pid: u32,
  pub mode: Mode,
}

/// What the OS says about the filesystem holding a directory: facts only; what they mean for
/// flock is `fstype::identify`'s to say.
#[derive(Clone, Debug, Default)]
pub struct Probe {
  /// statfs `f_type` (0 where the OS has no such number).
  pub magic: u64,
  /// The type name where the OS gives one: the mount's in /proc/self/mountinfo on Linux (it
  /// tells FUSE backends apart, e.g. `fuse.sshfs`), statfs's `f_fstypename` on macOS, the
  /// volume's file system on Windows. `None`: only the magic says.
  pub fstype: Option<String>,
  /// The mount's options (mount and superblock), comma-separated; empty when unknown.
  pub options: String,
  pub mount_point: Option<std::path::PathBuf>,
  pub locality: Locality,
}

/// What the OS says, beside the type name, about where a filesystem keeps its data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Locality {
  /// Nothing (Linux and the BSDs: the type name is all there is).
  #[default]
  Untold,
  /// macOS: whether statfs flags the mount `MNT_LOCAL`.
  MntLocal(bool),
  /// Windows: whether the volume is a network drive: a UNC path, or a drive `GetDriveTypeW`
  /// calls `DRIVE_REMOTE` (a mapped one).
  NetworkDrive(bool),
}

/// What `read_cached` found at a path.
#[derive(Debug, PartialEq, Eq)]
pub enum Cached {
  /// The whole file, copied from the page cache without waiting for the disk.
  Bytes(Vec<u8>),
  /// No file there (ENOENT): what the threadpool read reports as a missing file.
  Missing,
  /// Reading it here could wait (not all in the cache, a network or FUSE filesystem, a large or
  /// special file), or fails, or this OS cannot tell: the threadpool read does it and reports
  /// whatever error there is.
  WouldBlock,
}

/// The longest prefix of a file name's bytes (`OsStr::as_encoded_bytes`) of at most `max` bytes
/// that is still a name on this OS: any prefix on Unix, a prefix that does not cut a character
/// on Windows (whose names are WTF-8 here).
pub fn name_prefix(name: &[u8], max: usize) -> &[u8] {
  let mut end = name.len().min(max);
  if cfg!(windows) {
    while end > 0 && end < name.len() && (name[end] & 0xC0) == 0x80 {
      end -= 1;
    }
  }
  &name[..end]
}

/// `key` with each character mapped to the lower case of its upper case (where each is one
/// character), so that two spellings of one file on a case-insensitive volume give one key.
/// Upper case first because that is how NTFS compares names (its upcase table) and it is what
/// makes `ſ` and `s` (or `ϐ` and `β`) one name; lower case after it so that the sidecar a folded
/// key names on a new file is an ordinary `index.json.lock`. The few upper-case letters that
/// lower to one letter with another (the Kelvin sign and `K`) then share a key: two files that
/// share a lock, never one file with two. Unicode normalisation (APFS also ignores it) is not
/// applied: two normal forms of one name get two keys.
pub fn fold_case(key: &std::path::Path) -> std::path::PathBuf {
  let Some(s) = key.to_str() else {
    return key.to_path_buf();
  };
  s.chars().map(fold_char).collect::<String>().into()
}

/// `fold_case` of a file name's bytes (`OsStr::as_encoded_bytes`): each valid UTF-8 run folded,
/// other bytes kept (a temp name may end in the first half of a character; see `name_prefix`).
pub fn fold_name(name: &[u8]) -> Vec<u8> {
  let mut out = Vec::with_capacity(name.len());
  for chunk in name.utf8_chunks() {
    out.extend(
      chunk
        .valid()
        .chars()
        .map(fold_char)
        .collect::<String>()
        .bytes(),
    );
    out.extend_from_slice(chunk.invalid());
  }
  out
}

fn fold_char(c: char) -> char {
  fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    match (it.next(), it.next()) {
      (Some(x), None) => Some(x),
      _ => None,
    }
  }
  let up = single(c.to_uppercase()).unwrap_or(c);
  single(up.to_lowercase()).unwrap_or(up)
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::path::Path;

  #[test]
  fn folding_makes_spellings_equal_in_lower_case() {
    assert_eq!(
      fold_case(Path::new("C:/Data/Index.json")),
      fold_case(Path::new("c:/DATA/index.JSON"))
    );
    assert_eq!(
      fold_case(Path::new("C:/Data/Index.json")),
      Path::new("c:/data/index.json")
    );
    // No one-to-many mappings: "ß" would become "SS" and change the name's length.
    assert_eq!(
      fold_case(Path::new("/d/STRAßE.json")),
      Path::new("/d/straße.json")
    );
    // One name on NTFS (which compares upper cases): one key.
    assert_eq!(
      fold_case(Path::new("ſ.json")),
      fold_case(Path::new("S.json"))
    );
    // Folding a folded key changes nothing.
    let once = fold_case(Path::new("C:/Ünïcode/İndex.JSON"));
    assert_eq!(fold_case(&once), once);
  }

  #[test]
  fn name_prefixes_are_names() {
    assert_eq!(name_prefix(b"index.json", 5), b"index");
    let e_acute = "é".as_bytes();
    let cut = name_prefix(e_acute, 1);
    assert!(cut.is_empty() || cfg!(unix), "{cut:?}");
  }
}
