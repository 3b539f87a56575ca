//! Linux: flock(2) with a blocking wait that a real-time signal interrupts, /proc/locks for who
//! holds and who waits, /proc/self/mountinfo for what a filesystem is.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use fs4::FileExt;

use super::{Cached, Holder, Locality, Mode, OsResult, Probe};

pub use super::unix::*;

/// What `backend()` reports to JS.
pub const BACKEND: &str = "linux";

/// A released sidecar's descriptor is worth keeping open here (see `crate::spare`): it is
/// read-only (`SIDECAR_MARKED` is false), so it keeps no one from deleting or renaming the file
/// or its directory, nor from remounting its filesystem read-only.
pub const KEEP_SIDECARS: bool = true;

/// Waiters never mark the sidecar here (/proc/locks tells a holder who waits), so it is opened
/// read-only.
pub const SIDECAR_MARKED: bool = false;

/// After giving the OS lock up for fairness, how long to stay out of the race for it, so that a
/// waiter the kernel just woke gets it before we ask again.
pub const YIELD_DELAY: Duration = Duration::from_millis(1);

/// Blocks in flock(2) until the lock is ours (`Ok(true)`), or until `abandoned` is set and a
/// wake-up signal interrupts the wait (`Ok(false)`). The kernel hands the lock over the moment
/// its holder lets go.
pub fn wait_lock(file: &File, mode: Mode, abandoned: &AtomicBool) -> io::Result<bool> {
  loop {
    if abandoned.load(Ordering::Acquire) {
      return Ok(false);
    }
    #[cfg(test)]
    race_window();
    let r = match mode {
      Mode::Shared => FileExt::lock_shared(file),
      Mode::Exclusive => FileExt::lock(file),
    };
    match r {
      Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
      other => return other.map(|()| true),
    }
  }
}

/// Microseconds a wait pauses between its `abandoned` check and flock(2), so that tests can land
/// a wake-up signal there at will.
#[cfg(test)]
static RACE_WINDOW_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(test)]
fn race_window() {
  let us = RACE_WINDOW_US.load(Ordering::Relaxed);
  if us > 0 {
    std::thread::sleep(Duration::from_micros(us));
  }
}

/// Widens the window between a wait's `abandoned` check and its flock(2) (tests only).
#[cfg(test)]
pub fn widen_wake_race(us: u64) {
  RACE_WINDOW_US.store(us, Ordering::Relaxed);
}

/// The signal that interrupts an abandoned blocking wait: a real-time signal with a handler that
/// does nothing and no SA_RESTART, so flock(2) returns EINTR. `None` (waits then simply run to
/// completion and hand the lock straight back) if something else in the process already
/// handles that signal.
static WAKE_SIGNAL: LazyLock<Option<libc::c_int>> = LazyLock::new(|| {
  extern "C" fn ignore(_: libc::c_int) {}
  let sig = libc::SIGRTMIN() + 7;
  // SAFETY: sigaction with valid, zero-initialised structs; only installs over the default.
  unsafe {
    let mut old: libc::sigaction = std::mem::zeroed();
    if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 || old.sa_sigaction != libc::SIG_DFL {
      return None;
    }
    let mut act: libc::sigaction = std::mem::zeroed();
    act.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
    libc::sigemptyset(&mut act.sa_mask);
    (libc::sigaction(sig, &act, std::ptr::null_mut()) == 0).then_some(sig)
  }
});

/// The thread running a `wait_lock`, for `interrupt`.
#[derive(Debug)]
pub struct Waker(libc::pthread_t);

// SAFETY: a pthread_t is an identifier (musl makes it a pointer, which is what stops the auto
// impl); it is only passed to pthread_kill, under the registry lock that keeps the thread alive.
unsafe impl Send for Waker {}

/// Prepares the wake-up signal; call before starting a thread that `interrupt` may target.
pub fn init_wake() {
  LazyLock::force(&WAKE_SIGNAL);
}

pub fn waker_of<T>(handle: &std::thread::JoinHandle<T>) -> Waker {
  use std::os::unix::thread::JoinHandleExt;
  // std's raw pthread type is an integer on every libc; libc's own is a pointer on musl.
  #[allow(clippy::unnecessary_cast)]
  Waker(handle.as_pthread_t() as libc::pthread_t)
}

/// A wake-up can be lost: a signal that lands between the wait's look at `abandoned` and its
/// flock(2) call runs the handler before the call, which then blocks. No atomic "unblock the
/// signal and lock" call exists for flock (as `pselect` is for select), so the waker sends it
/// again until the wait is over (see `registry::keep_waking`).
pub const WAKE_MAY_BE_LOST: bool = true;

/// Interrupts the blocking flock of the thread `waker` names (it must be running `wait_lock`,
/// and its `abandoned` flag set first).
pub fn interrupt(waker: &Waker) {
  if let Some(sig) = *WAKE_SIGNAL {
    // SAFETY: the caller guarantees the thread is alive (it deregisters itself under the same
    // lock the caller holds before it exits).
    unsafe {
      libc::pthread_kill(waker.0, sig);
    }
  }
}

/// What `others_waiting` remembers between calls: the lock file's identity and the last answer
/// of a look at /proc/locks made on the prober thread. /proc/locks lists every lock on the host
/// (15,000 on a busy database host take ~30 ms to read), so the thread that asks (the JS thread,
/// for a free lock taken at once) must never read it.
#[derive(Debug)]
pub struct Mark {
  id: Option<(u64, u64)>,
  probe: Arc<WaitLook>,
}

#[derive(Debug, Default)]
struct WaitLook {
  /// A look is queued or running.
  running: AtomicBool,
  /// What the last finished look saw.
  waiting: AtomicBool,
}

impl Mark {
  pub fn new(file: &File) -> Self {
    Mark {
      id: file.metadata().ok().map(|m| (m.dev(), m.ino())),
      probe: Arc::default(),
    }
  }
}

/// Whether another process was seen blocked waiting for the lock `file` holds, by the last look
/// at /proc/locks; starts the next look on the prober thread (one at a time per lock), so every
/// answer is at most one look old. The first call answers false: the caller asks again a fair
/// slice later, and then gets the look's answer.
pub fn others_waiting(_file: &File, mark: &mut Mark) -> bool {
  let Some((dev, ino)) = mark.id else {
    return false;
  };
  let seen = mark.probe.waiting.load(Ordering::Acquire);
  if !mark.probe.running.swap(true, Ordering::AcqRel) {
    let probe = mark.probe.clone();
    let job: ProbeJob = Box::new(move || {
      let seen = read_proc_locks().is_some_and(|table| {
        waiters_in(&table, dev, ino)
          .iter()
          .any(|pid| *pid != std::process::id())
      });
      probe.waiting.store(seen, Ordering::Release);
      probe.running.store(false, Ordering::Release);
    });
    if PROBER.send(job).is_err() {
      mark.probe.running.store(false, Ordering::Release);
    }
  }
  seen
}

type ProbeJob = Box<dyn FnOnce() + Send>;

/// The one thread that reads /proc/locks for `others_waiting`, started with the first look.
static PROBER: LazyLock<Prober> = LazyLock::new(|| {
  let (tx, rx) = std::sync::mpsc::channel::<ProbeJob>();
  let started = std::thread::Builder::new()
    .name("index-lock-prober".into())
    .spawn(move || {
      for job in rx {
        job();
      }
    })
    .is_ok();
  Prober(started.then(|| std::sync::Mutex::new(tx)))
});

struct Prober(Option<std::sync::Mutex<std::sync::mpsc::Sender<ProbeJob>>>);

impl Prober {
  fn send(&self, job: ProbeJob) -> std::result::Result<(), ()> {
    let Some(tx) = &self.0 else { return Err(()) };
    let tx = tx.lock().map_err(|_| ())?;
    tx.send(job).map_err(|_| ())
  }
}

/// The processes holding a flock on `sidecar` (not those waiting for one), read from /proc/locks
/// by device and inode.
pub fn holders(sidecar: &Path) -> Vec<Holder> {
  let Ok(meta) = fs::metadata(sidecar) else {
    return Vec::new();
  };
  // A lock released elsewhere on the host while the table is read can hide a line from one
  // pass; a few more passes cost little next to the timeout that led here.
  for _ in 0..5 {
    let Some(table) = read_proc_locks() else {
      return Vec::new();
    };
    let pids = holders_in(&table, meta.dev(), meta.ino());
    if !pids.is_empty() {
      return pids;
    }
  }
  Vec::new()
}

/// Who holds the lock on `sidecar`, for `inspect` where `holders` listed nobody: a shared
/// try-lock (`probe_shared`), which sees an exclusive holder that /proc/locks hides.
pub fn probe(sidecar: &Path) -> OsResult<Option<Mode>> {
  probe_shared(sidecar)
}

/// The inode number of the initial pid namespace (the kernel's PROC_PID_INIT_INO).
const INITIAL_PID_NS: &str = "pid:[4026531836]";

/// Whether `holders` shows every holder of a flock that this host's kernel keeps: /proc/locks
/// hides holders in pid namespaces this /proc cannot see, so ours must be the initial one (not a
/// container sharing the volume with the host or with another container). Holders the kernel
/// never sees (a network or cluster filesystem's other clients, a FUSE daemon that handles flock
/// itself) it cannot show at all: which filesystems have those is for the caller to judge.
pub fn lists_every_holder() -> bool {
  static INITIAL: LazyLock<bool> = LazyLock::new(|| {
    fs::read_link("/proc/self/ns/pid").is_ok_and(|l| l.as_os_str() == INITIAL_PID_NS)
  });
  *INITIAL
}

/// /proc/locks, read to the end in large reads. The kernel renders it by position on every
/// read call and returns at most a buffer page's worth per call, so a lock released anywhere on
/// the host between two calls can shift a line out of view: callers that find nothing read again.
fn read_proc_locks() -> Option<String> {
  use std::io::Read;
  let mut file = File::open("/proc/locks").ok()?;
  let mut table = Vec::with_capacity(64 * 1024);
  let mut chunk = vec![0u8; 64 * 1024];
  loop {
    match file.read(&mut chunk) {
      Ok(0) => break,
      Ok(n) => table.extend_from_slice(&chunk[..n]),
      Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
      Err(_) => return None,
    }
  }
  String::from_utf8(table).ok()
}

/// The processes blocked waiting for a flock on `sidecar`, and the mode each asks for, from
/// /proc/locks (`Some`: this OS can tell).
pub fn waiters(sidecar: &Path) -> Option<Vec<Holder>> {
  let Ok(meta) = fs::metadata(sidecar) else {
    return Some(Vec::new());
  };
  let table = read_proc_locks()?;
  let mut entries = flock_entries(&table, meta.dev(), meta.ino(), true);
  entries.dedup();
  Some(entries)
}

fn holders_in(table: &str, dev: u64, ino: u64) -> Vec<Holder> {
  flock_entries(table, dev, ino, false)
}

fn waiters_in(table: &str, dev: u64, ino: u64) -> Vec<u32> {
  let mut pids: Vec<u32> = flock_entries(table, dev, ino, true)
    .iter()
    .map(|h| h.pid)
    .collect();
  pids.dedup();
  pids
}

/// The flock holders (or, with `waiting`, the blocked waiters) of one inode in a /proc/locks
/// table, by pid.
fn flock_entries(table: &str, dev: u64, ino: u64, waiting: bool) -> Vec<Holder> {
  let exact = format!("{:02x}:{:02x}:{}", libc::major(dev), libc::minor(dev), ino);
  let suffix = format!(":{ino}");
  let mut exact_pids = Vec::new();
  let mut inode_pids = Vec::new();
  for line in table.lines() {
    // "1: FLOCK  ADVISORY  WRITE 1234 fe:01:5678 0 EOF"; waiters carry "->" after the index.
    let mut f: Vec<&str> = line.split_whitespace().collect();
    let is_waiter = f.get(1) == Some(&"->");
    if is_waiter {
      f.remove(1);
    }
    if is_waiter != waiting || f.len() < 6 || f[1] != "FLOCK" {
      continue;
    }
    let Ok(pid) = f[4].parse::<u32>() else {
      continue;
    };
    let mode = if f[3] == "WRITE" {
      Mode::Exclusive
    } else {
      Mode::Shared
    };
    let entry = Holder { pid, mode };
    if f[5] == exact {
      exact_pids.push(entry);
    } else if f[5].ends_with(&suffix) {
      // Overlay and similar stacked filesystems report the lower device in /proc/locks.
      inode_pids.push(entry);
    }
  }
  let mut entries = if exact_pids.is_empty() {
    inode_pids
  } else {
    exact_pids
  };
  entries.sort_unstable_by_key(|h| h.pid);
  entries.dedup();
  entries
}

/// The kernel's id of the calling thread (unique on the host while it runs).
pub fn thread_id() -> u64 {
  // SAFETY: gettid takes no arguments and cannot fail.
  unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

/// The statfs magic, and the mount's type name and options from /proc/self/mountinfo (it tells
/// FUSE backends apart, e.g. `fuse.sshfs`) where it has the mount.
pub fn probe_fs(dir: &Path) -> io::Result<Probe> {
  #[allow(clippy::unnecessary_cast)]
  let magic = statfs(dir)?.f_type as u64;
  let mount = fs::read_to_string("/proc/self/mountinfo")
    .ok()
    .and_then(|t| mount_of(&t, dir));
  let (mount_point, fstype, options) = match mount {
    Some((mp, t, o)) => (Some(mp), Some(t), o),
    None => (None, None, String::new()),
  };
  Ok(Probe {
    magic,
    fstype,
    options,
    mount_point,
    locality: Locality::Untold,
  })
}

/// Unescapes the octal escapes (`\040` for a space) mountinfo uses in paths.
fn unescape(field: &str) -> Vec<u8> {
  let b = field.as_bytes();
  let mut out = Vec::with_capacity(b.len());
  let mut i = 0;
  while i < b.len() {
    if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
    {
      out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
      i += 4;
    } else {
      out.push(b[i]);
      i += 1;
    }
  }
  out
}

/// One line of /proc/self/mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MountLine {
  /// The mount's id (what statx's STATX_MNT_ID gives for a file under it).
  id: u64,
  mount_point: PathBuf,
  fstype: String,
  /// Mount and superblock options, comma-separated.
  options: String,
}

/// Parses a mountinfo line: "36 35 98:0 /root /mnt rw,noatime shared:1 - ext4 /dev/sda1 rw".
fn mount_line(line: &str) -> Option<MountLine> {
  let (left, right) = line.split_once(" - ")?;
  let left: Vec<&str> = left.split(' ').collect();
  let right: Vec<&str> = right.split(' ').collect();
  if left.len() < 6 || right.len() < 3 {
    return None;
  }
  Some(MountLine {
    id: left[0].parse().ok()?,
    mount_point: PathBuf::from(os_string(unescape(left[4]))),
    fstype: right[0].to_string(),
    options: format!("{},{}", left[5], right[2]),
  })
}

/// The mount holding `path` in a /proc/self/mountinfo table: (mount point, fstype, options).
/// The longest mount point that is a prefix wins; later lines win ties (they are mounted on top).
fn mount_of(table: &str, path: &Path) -> Option<(PathBuf, String, String)> {
  let mut best: Option<(PathBuf, String, String)> = None;
  for m in table.lines().filter_map(mount_line) {
    if !path.starts_with(&m.mount_point) {
      continue;
    }
    let longer = best
      .as_ref()
      .is_none_or(|(b, _, _)| m.mount_point.as_os_str().len() >= b.as_os_str().len());
    if longer {
      best = Some((m.mount_point, m.fstype, m.options));
    }
  }
  best
}

/// Opens `path` (following symlinks) only if every step of the lookup is in the kernel's dentry
/// cache: openat2(2) with RESOLVE_CACHED fails with EAGAIN where the lookup would need IO (an
/// uncached directory block or inode, a network filesystem's revalidation). Kernels before 5.12
/// (or a seccomp filter) refuse the call, and then nothing is read on the calling thread.
fn open_cached(
  path: &std::ffi::CStr,
  flags: libc::c_int,
  follow: bool,
) -> io::Result<std::os::fd::OwnedFd> {
  use std::os::fd::FromRawFd;
  // SAFETY: a zeroed open_how is valid (no flags); its fields are set below.
  let mut how: libc::open_how = unsafe { std::mem::zeroed() };
  how.flags = (flags | libc::O_CLOEXEC) as u64;
  // Without `follow` the path is one resolved before (an update's file): no component of it may
  // be a symlink now, or it leads somewhere else.
  how.resolve = libc::RESOLVE_CACHED | if follow { 0 } else { libc::RESOLVE_NO_SYMLINKS };
  // SAFETY: `path` is a valid C string and `how` a valid open_how of the size passed.
  let fd = unsafe {
    libc::syscall(
      libc::SYS_openat2,
      libc::AT_FDCWD,
      path.as_ptr(),
      &how as *const libc::open_how,
      std::mem::size_of::<libc::open_how>(),
    )
  };
  if fd < 0 {
    return Err(io::Error::last_os_error());
  }
  // SAFETY: the kernel just returned this descriptor to us alone.
  Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// statx(2) of an open descriptor with AT_STATX_DONT_SYNC: FUSE and NFS answer from the
/// attributes they have cached instead of asking their server (as fstat may once those expire).
/// Some only if the kernel filled in type, size, inode and mount id. The raw syscall: musl's
/// libc may lack the wrapper.
fn statx_cached(fd: &std::os::fd::OwnedFd) -> Option<libc::statx> {
  use std::os::fd::AsRawFd;
  let want = libc::STATX_TYPE | libc::STATX_SIZE | libc::STATX_INO | libc::STATX_MNT_ID;
  // SAFETY: a zeroed statx is a valid out-parameter; `fd` is open and the path empty.
  let mut stx: libc::statx = unsafe { std::mem::zeroed() };
  let r = unsafe {
    libc::syscall(
      libc::SYS_statx,
      fd.as_raw_fd(),
      c"".as_ptr(),
      libc::AT_EMPTY_PATH | libc::AT_STATX_DONT_SYNC,
      want,
      &mut stx as *mut libc::statx,
    )
  };
  (r == 0 && stx.stx_mask & want == want).then_some(stx)
}

/// The type of each mount, by mount id, from /proc/self/mountinfo: the kernel renders it itself,
/// never asking a filesystem, so looking a file's mount up here cannot wait on a hung FUSE daemon
/// or NFS server as statfs can.
struct Mounts {
  /// /proc/self/mountinfo, kept open: poll(2) reports POLLPRI on it after any mount or unmount
  /// in this mount namespace, so the table is known stale before a freed mount id (or device)
  /// can be handed to a new mount. `None`: /proc is not there, and nothing is local.
  watch: Option<File>,
  types: std::collections::HashMap<u64, String>,
  stale: bool,
  refreshed: Option<std::time::Instant>,
}

/// At most one re-read of mountinfo per this long (it costs about a microsecond per mount on the
/// JS thread); until then a stale table answers "not local" and reads go to the threadpool.
const MOUNTS_REFRESH_GAP: Duration = Duration::from_millis(100);

static MOUNTS: LazyLock<std::sync::Mutex<Mounts>> = LazyLock::new(|| {
  std::sync::Mutex::new(Mounts {
    watch: File::open("/proc/self/mountinfo").ok(),
    types: std::collections::HashMap::new(),
    stale: true,
    refreshed: None,
  })
});

impl Mounts {
  /// Whether the mount `id` (of a file this process holds open, which keeps the id from being
  /// reused meanwhile) is of a type `serves` says serves cached reads.
  fn is_local(&mut self, id: u64, serves: fn(&str) -> bool) -> bool {
    use std::io::{Read, Seek};
    use std::os::fd::AsRawFd;
    let Some(watch) = self.watch.as_mut() else {
      return false;
    };
    let mut pfd = libc::pollfd {
      fd: watch.as_raw_fd(),
      events: libc::POLLPRI,
      revents: 0,
    };
    // SAFETY: one valid pollfd; a zero timeout never waits.
    if unsafe { libc::poll(&mut pfd, 1, 0) } != 0 {
      self.stale = true;
    }
    if self.stale {
      if self
        .refreshed
        .is_some_and(|t| t.elapsed() < MOUNTS_REFRESH_GAP)
      {
        return false;
      }
      self.refreshed = Some(std::time::Instant::now());
      let mut table = String::new();
      if watch.rewind().is_err() || watch.read_to_string(&mut table).is_err() {
        return false;
      }
      self.types = table
        .lines()
        .filter_map(mount_line)
        .map(|m| (m.id, m.fstype))
        .collect();
      self.stale = false;
    }
    // A mount missing from a fresh table (lazily unmounted, say) is not known local.
    self.types.get(&id).is_some_and(|t| serves(t))
  }
}

/// Whether files of mount `id` may be read on the calling thread (see `Mounts`).
fn mount_is_local(id: u64, serves: fn(&str) -> bool) -> bool {
  MOUNTS
    .lock()
    .unwrap_or_else(std::sync::PoisonError::into_inner)
    .is_local(id, serves)
}

/// preadv2(2) with RWF_NOWAIT: reads only what is in the page cache, EAGAIN where it would wait
/// for the disk (or for a lock on the page), EOPNOTSUPP where the filesystem cannot tell. The
/// raw syscall: musl's libc may lack the wrapper.
fn read_nowait(fd: &std::os::fd::OwnedFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
  use std::os::fd::AsRawFd;
  let iov = libc::iovec {
    iov_base: buf.as_mut_ptr().cast(),
    iov_len: buf.len(),
  };
  // The kernel joins the offset from two longs; on 64-bit targets the high one is shifted out.
  let low = offset as libc::c_ulong;
  let high = offset.checked_shr(libc::c_ulong::BITS).unwrap_or(0) as libc::c_ulong;
  // SAFETY: `iov` describes `buf`, which is valid for writes of its length.
  let n = unsafe {
    libc::syscall(
      libc::SYS_preadv2,
      fd.as_raw_fd(),
      &iov as *const libc::iovec,
      1 as libc::c_int,
      low,
      high,
      libc::RWF_NOWAIT,
    )
  };
  if n < 0 {
    return Err(io::Error::last_os_error());
  }
  Ok(n as usize)
}

/// The bytes of `path` if reading them on the calling thread cannot wait: the lookup is in the
/// dentry cache, the file is a regular file of at most `max` bytes on a filesystem whose type (as
/// mountinfo names it) `serves` says serves cached reads without a network or a daemon, and all
/// of it is in the page cache. A device, FIFO or directory is never opened for reading
/// here (it is looked at through an O_PATH descriptor first, as `atomic::read` stats first), so
/// the threadpool read refuses it as before.
pub fn read_cached(path: &Path, max: usize, follow: bool, serves: fn(&str) -> bool) -> Cached {
  use std::os::unix::ffi::OsStrExt;
  let bytes = path.as_os_str().as_bytes();
  let Ok(c) = std::ffi::CString::new(bytes) else {
    return Cached::WouldBlock;
  };
  // An empty path is an argument error, which the threadpool read reports.
  if bytes.is_empty() {
    return Cached::WouldBlock;
  }
  // Without `follow`, a symlink anywhere on the path fails the open (ELOOP), and the threadpool
  // read refuses it.
  let handle = match open_cached(&c, libc::O_PATH, follow) {
    Ok(fd) => fd,
    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Cached::Missing,
    Err(_) => return Cached::WouldBlock,
  };
  // Nothing here may ask the file's filesystem anything that can go to a server or a FUSE
  // daemon (statfs, or fstat once cached attributes expire): the O_PATH descriptor names the
  // file's mount, the kernel's own mount table says what that is, and only a known local one is
  // read from here. The link's directory being local (lib/files.js) says nothing about where a
  // symlink leads, nor about a mount on the file itself or one made over the directory since.
  let Some(seen) = statx_cached(&handle) else {
    return Cached::WouldBlock;
  };
  if !mount_is_local(seen.stx_mnt_id, serves) {
    return Cached::WouldBlock;
  }
  let regular = |st: &libc::statx| u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFREG;
  if !regular(&seen) || seen.stx_size > max as u64 {
    return Cached::WouldBlock;
  }
  // O_NONBLOCK: a FIFO renamed in since the look must not make the open wait for a writer.
  let Ok(file) = open_cached(&c, libc::O_RDONLY | libc::O_NONBLOCK, follow) else {
    return Cached::WouldBlock;
  };
  drop(handle);
  let Some(st) = statx_cached(&file) else {
    return Cached::WouldBlock;
  };
  let id = |st: &libc::statx| (st.stx_dev_major, st.stx_dev_minor, st.stx_ino);
  if id(&st) != id(&seen) || !regular(&st) {
    return Cached::WouldBlock;
  }
  // As Node's readFileSync: the size fstat gives, or to the end when it gives none.
  let size = st.stx_size as usize;
  let mut buf = vec![0u8; if size == 0 { 4096 } else { size }];
  let mut len = 0;
  loop {
    if len == buf.len() {
      if size != 0 {
        break;
      }
      if buf.len() >= max {
        return Cached::WouldBlock;
      }
      buf.resize((buf.len() * 2).min(max), 0);
    }
    match read_nowait(&file, &mut buf[len..], len as u64) {
      Ok(0) => break,
      Ok(n) => len += n,
      Err(_) => return Cached::WouldBlock,
    }
  }
  buf.truncate(len);
  Cached::Bytes(buf)
}

/// Linux filesystems are case-sensitive (ext4's per-directory casefolding aside): every spelling
/// is its own file.
pub fn fold_key(_key: &Path) -> Option<PathBuf> {
  None
}

#[cfg(test)]
mod tests {
  use super::*;

  /// The mount types these tests let serve cached reads: all but proc, whose reads run kernel
  /// code of every kind (the crate's own list is `fstype::serves_cached_reads`).
  fn serves(fstype: &str) -> bool {
    fstype != "proc"
  }

  #[test]
  fn cached_small_files_are_read_on_the_calling_thread_and_missing_ones_reported() {
    let d = crate::testdir::fresh("cached-read");
    let p = d.join("index.json");
    fs::write(&p, b"{\"a\":1}").unwrap();
    assert_eq!(
      read_cached(&p, 1 << 20, true, serves),
      Cached::Bytes(b"{\"a\":1}".to_vec())
    );
    std::os::unix::fs::symlink("index.json", d.join("link.json")).unwrap();
    assert_eq!(
      read_cached(&d.join("link.json"), 1 << 20, true, serves),
      Cached::Bytes(b"{\"a\":1}".to_vec())
    );
    fs::write(d.join("empty.json"), b"").unwrap();
    assert_eq!(
      read_cached(&d.join("empty.json"), 1 << 20, true, serves),
      Cached::Bytes(vec![])
    );
    // Looked up once (as the threadpool read would), a missing name is in the cache as such.
    let _ = fs::metadata(d.join("none.json"));
    assert_eq!(
      read_cached(&d.join("none.json"), 1 << 20, true, serves),
      Cached::Missing
    );
    let _ = fs::metadata(d.join("no/none.json"));
    assert_eq!(
      read_cached(&d.join("no/none.json"), 1 << 20, true, serves),
      Cached::Missing
    );
    fs::remove_dir_all(d).unwrap();
  }

  #[test]
  fn files_are_classified_by_their_own_mount_not_by_the_directory_of_the_link() {
    use std::os::fd::AsFd;
    let d = crate::testdir::fresh("cached-mounts");
    let p = d.join("index.json");
    fs::write(&p, b"{}").unwrap();
    let mount = |p: &Path| {
      let f = File::open(p).unwrap();
      statx_cached(&f.as_fd().try_clone_to_owned().unwrap())
        .unwrap()
        .stx_mnt_id
    };
    assert!(mount_is_local(mount(&p), serves));
    // proc (whose reads run kernel code of every kind) is not a known local filesystem.
    assert!(!mount_is_local(
      mount(Path::new("/proc/self/status")),
      serves
    ));
    assert!(!mount_is_local(u64::MAX, serves));
    // A link in a local directory to a file elsewhere is judged by where it leads.
    std::os::unix::fs::symlink("/proc/self/status", d.join("proc.json")).unwrap();
    let _ = fs::read(d.join("proc.json"));
    assert_eq!(
      read_cached(&d.join("proc.json"), 1 << 20, true, serves),
      Cached::WouldBlock
    );
    assert_eq!(
      read_cached(&p, 1 << 20, true, serves),
      Cached::Bytes(b"{}".to_vec())
    );
    fs::remove_dir_all(d).unwrap();
  }

  #[test]
  fn directories_fifos_devices_large_files_and_bad_paths_are_left_to_the_threadpool() {
    let d = crate::testdir::fresh("cached-special");
    assert_eq!(read_cached(&d, 1 << 20, true, serves), Cached::WouldBlock);
    let fifo = d.join("fifo.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Neither opened for reading nor waited on: no writer ever comes.
    assert_eq!(
      read_cached(&fifo, 1 << 20, true, serves),
      Cached::WouldBlock
    );
    assert_eq!(
      read_cached(Path::new("/dev/null"), 1 << 20, true, serves),
      Cached::WouldBlock
    );
    let big = d.join("big.json");
    fs::write(&big, b"0123456789").unwrap();
    assert_eq!(read_cached(&big, 9, true, serves), Cached::WouldBlock);
    assert_eq!(
      read_cached(&big, 10, true, serves),
      Cached::Bytes(b"0123456789".to_vec())
    );
    assert_eq!(
      read_cached(Path::new(""), 1 << 20, true, serves),
      Cached::WouldBlock
    );
    assert_eq!(
      read_cached(&big.join("x"), 1 << 20, true, serves),
      Cached::WouldBlock
    );
    fs::remove_dir_all(d).unwrap();
  }

  /// tmpfs keeps every file in memory (fadvise cannot drop it), so this needs a disk: a directory
  /// under the crate's target/, not the temp dir.
  #[test]
  fn a_file_not_in_the_page_cache_is_left_to_the_threadpool_and_served_once_read() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
      .join("target")
      .join(format!("cached-read-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    let magic = statfs(&d).unwrap().f_type;
    if magic as u64 == 0x01021994 {
      eprintln!("skipped: target/ is on tmpfs, whose pages cannot be dropped");
      fs::remove_dir_all(&d).unwrap();
      return;
    }
    let p = d.join("index.json");
    let data = vec![b'7'; 64 * 1024];
    let mut f = File::create(&p).unwrap();
    f.write_all(&data).unwrap();
    f.sync_all().unwrap();
    // SAFETY: `f` is open; offset and length 0 mean the whole file.
    let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(r, 0);
    assert_eq!(read_cached(&p, 1 << 20, true, serves), Cached::WouldBlock);
    assert_eq!(fs::read(&p).unwrap(), data);
    assert_eq!(read_cached(&p, 1 << 20, true, serves), Cached::Bytes(data));
    fs::remove_dir_all(d).unwrap();
  }

  #[test]
  fn mountinfo_picks_the_innermost_mount() {
    let table = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                 30 22 0:40 / /data rw shared:2 - nfs4 srv:/x rw,vers=4.2\n\
                 31 30 0:41 / /data/sync\\040dir rw - fuse.rclone remote: rw,user_id=0\n";
    let (mp, t, o) = mount_of(table, Path::new("/data/sync dir/index.json")).unwrap();
    assert_eq!(mp, Path::new("/data/sync dir"));
    assert_eq!(t, "fuse.rclone");
    assert!(o.contains("user_id=0"));
    assert_eq!(mount_of(table, Path::new("/data/x")).unwrap().1, "nfs4");
    assert_eq!(mount_of(table, Path::new("/datax")).unwrap().1, "ext4");
    let ids: Vec<(u64, String)> = table
      .lines()
      .filter_map(mount_line)
      .map(|m| (m.id, m.fstype))
      .collect();
    assert_eq!(ids[2], (31, "fuse.rclone".to_string()));
  }

  #[test]
  fn proc_locks_parsing_skips_waiters_and_other_inodes() {
    let table = "1: FLOCK  ADVISORY  WRITE 10 fe:01:77 0 EOF\n\
                 1: -> FLOCK  ADVISORY  WRITE 11 fe:01:77 0 EOF\n\
                 2: FLOCK  ADVISORY  READ 12 fe:01:78 0 EOF\n\
                 3: POSIX  ADVISORY  WRITE 13 fe:01:77 0 EOF\n\
                 4: FLOCK  ADVISORY  READ 14 fe:01:77 0 EOF\n";
    let dev = libc::makedev(0xfe, 1);
    let pids: Vec<(u32, Mode)> = holders_in(table, dev, 77)
      .iter()
      .map(|h| (h.pid, h.mode))
      .collect();
    assert_eq!(pids, vec![(10, Mode::Exclusive), (14, Mode::Shared)]);
    assert_eq!(waiters_in(table, dev, 77), vec![11]);
  }
}
