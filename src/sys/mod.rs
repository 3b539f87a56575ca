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
//!   rename while it is open; a polling wait; no holder list; `GetDriveTypeW` and UNC paths for
//!   network detection; a rename that waits out other processes' open handles for a bounded time.
//!
//! Each backend module defines the same names; `pub use imp::*` makes them this module's.

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

use crate::fstype::Coherence;
use crate::lock::Mode;

/// A process holding a lock, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
  pub pid: u32,
  pub mode: Mode,
}

/// What the OS says about the filesystem holding a directory.
#[derive(Clone, Debug, Default)]
pub struct Probe {
  /// statfs `f_type` (0 where the OS has no such number).
  pub magic: u64,
  pub fstype: String,
  pub options: String,
  pub mount_point: Option<std::path::PathBuf>,
  /// A verdict the backend can give from facts the type name does not carry (a Windows network
  /// drive, a macOS mount without `MNT_LOCAL`); `None` leaves it to `fstype::classify`.
  pub verdict: Option<(Coherence, &'static str)>,
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

/// `key` with every character that has a one-character uppercase mapping uppercased (as NTFS's
/// upcase table and APFS's case-insensitive compare treat them), so that two spellings of one
/// file on a case-insensitive volume give one registry key. Unicode normalisation (APFS also
/// ignores it) is not applied: two normal forms of one name get two queues, as before.
#[cfg_attr(not(any(windows, target_vendor = "apple")), allow(dead_code))]
pub fn fold_case(key: &std::path::Path) -> std::path::PathBuf {
  let Some(s) = key.to_str() else {
    return key.to_path_buf();
  };
  s.chars()
    .map(|c| {
      let mut up = c.to_uppercase();
      match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
      }
    })
    .collect::<String>()
    .into()
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::path::Path;

  #[test]
  fn folding_makes_spellings_equal_and_keeps_lengths() {
    assert_eq!(
      fold_case(Path::new("C:/Data/Index.json")),
      fold_case(Path::new("c:/DATA/index.JSON"))
    );
    // No one-to-many mappings: "ß" would become "SS" and change the name's length.
    assert_eq!(
      fold_case(Path::new("/d/straße.json")),
      Path::new("/D/STRAßE.JSON")
    );
  }

  #[test]
  fn name_prefixes_are_names() {
    assert_eq!(name_prefix(b"index.json", 5), b"index");
    let e_acute = "é".as_bytes();
    let cut = name_prefix(e_acute, 1);
    assert!(cut.is_empty() || cfg!(unix), "{cut:?}");
  }
}
