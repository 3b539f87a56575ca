//! macOS and the other Unixes (and Linux with the `generic-unix` feature): flock(2) with a polling
//! wait, no holder list, statfs for the filesystem type.

use std::path::{Path, PathBuf};

use super::{Cached, Holder, Locality, Mode, OsResult, Probe};

pub use super::polling::*;
pub use super::unix::*;

pub const BACKEND: &str = "generic-unix";

/// Each release closes the sidecar: its descriptor is opened for writing (waiters mark it), and a
/// kept one would keep its filesystem from being remounted read-only.
pub const KEEP_SIDECARS: bool = false;

/// No portable interface lists the holders of a flock (macOS's `lsof` digs them out of the
/// kernel with private calls), so timeouts and `status` report none.
pub fn holders(_sidecar: &Path) -> Vec<Holder> {
  Vec::new()
}

/// Who holds the lock on `sidecar` (for `inspect`, which has no holder list here): F_GETLK, which
/// takes no lock and sees flocks on macOS and the BSDs, where one lock list holds both kinds.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn probe(sidecar: &Path) -> OsResult<Option<Mode>> {
  test_lock(sidecar)
}

/// On a Linux kernel F_GETLK cannot see flocks, so this build (which stands in for macOS in tests)
/// sees only an exclusive holder, with a shared try-lock.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn probe(sidecar: &Path) -> OsResult<Option<Mode>> {
  probe_shared(sidecar)
}

/// No holder list, so not every holder is in it.
pub fn lists_every_holder() -> bool {
  false
}

/// Nor its waiters: `None`, unknown.
pub fn waiters(_sidecar: &Path) -> Option<Vec<Holder>> {
  None
}

/// An id of the calling thread that is unique on the host while it runs.
#[cfg(target_vendor = "apple")]
pub fn thread_id() -> u64 {
  let mut id = 0u64;
  // SAFETY: a null thread means the calling thread; `id` is a valid out-parameter.
  unsafe { libc::pthread_threadid_np(0 as libc::pthread_t, &mut id) };
  id
}

#[cfg(target_os = "linux")]
pub fn thread_id() -> u64 {
  // SAFETY: gettid takes no arguments and cannot fail.
  unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

#[cfg(not(any(target_vendor = "apple", target_os = "linux")))]
pub fn thread_id() -> u64 {
  // Unique within the process, which is what a temp name needs beside the pid.
  use std::hash::{Hash, Hasher};
  let mut h = std::collections::hash_map::DefaultHasher::new();
  std::thread::current().id().hash(&mut h);
  h.finish() & 0xffff_ffff
}

/// C char array to String, up to its NUL.
#[cfg(target_vendor = "apple")]
fn c_chars(chars: &[libc::c_char]) -> String {
  let bytes: Vec<u8> = chars
    .iter()
    .take_while(|c| **c != 0)
    .map(|c| *c as u8)
    .collect();
  String::from_utf8_lossy(&bytes).into_owned()
}

/// macOS's statfs names the filesystem (`apfs`, `nfs`, `smbfs`, `macfuse`, ...) and says
/// whether it is local (`MNT_LOCAL`).
#[cfg(target_vendor = "apple")]
pub fn probe_fs(dir: &Path) -> std::io::Result<Probe> {
  let st = statfs(dir)?;
  Ok(Probe {
    magic: u64::from(st.f_type),
    fstype: Some(c_chars(&st.f_fstypename)),
    options: String::new(),
    mount_point: Some(PathBuf::from(c_chars(&st.f_mntonname))),
    locality: Locality::MntLocal(st.f_flags & (libc::MNT_LOCAL as u32) != 0),
  })
}

/// Elsewhere statfs has only the type number.
#[cfg(not(target_vendor = "apple"))]
pub fn probe_fs(dir: &Path) -> std::io::Result<Probe> {
  #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
  let magic = statfs(dir)?.f_type as u64;
  Ok(Probe {
    magic,
    fstype: None,
    options: String::new(),
    mount_point: mount_point_of(dir),
    locality: Locality::Untold,
  })
}

/// The mount point holding `dir`: its highest ancestor on the same device.
#[cfg(not(target_vendor = "apple"))]
fn mount_point_of(dir: &Path) -> Option<PathBuf> {
  use std::os::unix::fs::MetadataExt;
  let dev = std::fs::metadata(dir).ok()?.dev();
  let mut top = dir;
  while let Some(parent) = top.parent() {
    match std::fs::metadata(parent) {
      Ok(m) if m.dev() == dev => top = parent,
      _ => break,
    }
  }
  Some(top.to_path_buf())
}

/// The lock key of `key` on a case-insensitive volume (APFS and HFS+ by default): folded, so that
/// two spellings of one file share one queue. `None` on a case-sensitive volume.
#[cfg(target_vendor = "apple")]
pub fn fold_key(key: &Path) -> Option<PathBuf> {
  use std::os::unix::ffi::OsStrExt;
  let dir = key.parent()?;
  let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
  // SAFETY: `c` is a valid C string. 1: case-sensitive; 0: not; -1: unknown (treated as
  // sensitive, which only costs a second queue for a second spelling).
  let sensitive = unsafe { libc::pathconf(c.as_ptr(), libc::_PC_CASE_SENSITIVE) };
  (sensitive == 0).then(|| super::fold_case(key))
}

#[cfg(not(target_vendor = "apple"))]
pub fn fold_key(_key: &Path) -> Option<PathBuf> {
  None
}

/// No read here can be told not to wait for the disk (Linux's RWF_NOWAIT): every read goes to the
/// threadpool.
pub fn read_cached(_path: &Path, _max: usize, _follow: bool, _serves: fn(&str) -> bool) -> Cached {
  Cached::WouldBlock
}
