//! The in-process half: one readers-writer FIFO per canonical path, shared by every worker thread.
//!
//! Requests join a path's queue synchronously on the calling thread, so JS call order is queue
//! order. Only the request at the head touches the OS lock: it tries it without blocking and,
//! when another process holds it, one dedicated thread per (path, mode) waits for it (a blocking
//! flock on Linux, a polling wait elsewhere; see `sys`), so neither the event loop nor libuv's
//! threadpool ever waits for a lock.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, LazyLock, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::lock::{self, Mode, OsLock};
use crate::path::sidecar;
use crate::spare;
use crate::sweep;
use crate::sys;

/// Called once with the outcome of a queued request: a grant, or why there will be none.
pub type Notify = Box<dyn FnOnce(Result<Grant>) + Send>;

struct Waiter {
  id: u64,
  mode: Mode,
  /// The thread that asked (for a JS caller: its main or worker thread).
  thread: ThreadId,
  notify: Notify,
}

/// How long one process may keep the OS lock across in-process hand-overs while another process
/// waits for it. flock(2) has no queue, so without a bound a process whose own callers keep
/// queueing would never let others in.
const FAIR_SLICE: Duration = Duration::from_millis(10);
/// After giving the lock up for fairness, how long to stay out of the race for it, so that the
/// other process's waiter gets it before we ask again (see `sys::YIELD_DELAY`).
const YIELD_DELAY: Duration = sys::YIELD_DELAY;
/// How long, at least, shared requests are held back while this process holds the lock shared and
/// another process waits for it, counted from the start of the hold-back or the last release
/// since; twice the typical hold of the path when that is longer (see `Entry::hold_back_shared`).
/// Past it without a release, the holders evidently do not drain (they may be waiting for the
/// held-back requests themselves), and the requests go in.
const HOLD_BACK_MIN: Duration = Duration::from_millis(100);
/// While shared requests are held back, how often they are looked at again: nothing else may
/// happen in this process to look at them (the other process's waiter can give up unseen).
const HOLD_BACK_RECHECK: Duration = FAIR_SLICE;

struct HeldOs {
  lock: OsLock,
  mode: Mode,
  /// Start of the current fair slice.
  since: Instant,
}

impl HeldOs {
  fn new(lock: OsLock, mode: Mode) -> Self {
    HeldOs {
      lock,
      mode,
      since: Instant::now(),
    }
  }
}

/// A thread waiting for the OS lock in one mode of a path.
struct PendingWait {
  thread: sys::Waker,
  /// Set when no queued request wants this mode any more; the thread then gives up.
  abandoned: Arc<AtomicBool>,
}

/// The state of one canonical path.
struct Entry {
  sidecar: PathBuf,
  /// In-process holders, all of `hold_mode`, and the thread each was granted to.
  holders: usize,
  hold_mode: Mode,
  holder_threads: Vec<ThreadId>,
  /// The flock this process holds for the path while it has holders (kept across in-process
  /// hand-overs of the same mode, for at most a fair slice while other processes wait).
  os: Option<HeldOs>,
  /// The blocking-flock thread on its way for each mode, if any.
  pending: [Option<PendingWait>; 2],
  queue: VecDeque<Waiter>,
  /// While shared requests are held back for another process's waiter: since when, or since the
  /// last release of a holder (the holders are still draining).
  held_back: Option<Instant>,
  /// A re-examination of held-back requests is scheduled (`schedule_recheck`).
  recheck: bool,
  /// How long holds of this path typically last (a moving average), which bounds a hold-back.
  typical_hold: Duration,
}

impl Entry {
  fn new(key: &Path) -> Self {
    Entry {
      sidecar: sidecar(key),
      holders: 0,
      hold_mode: Mode::Shared,
      holder_threads: Vec::new(),
      os: None,
      pending: [None, None],
      queue: VecDeque::new(),
      held_back: None,
      recheck: false,
      typical_hold: Duration::ZERO,
    }
  }

  /// Counts a new holder of `key` and hands out its grant.
  fn admit(&mut self, key: &Arc<Path>, thread: ThreadId, mode: Mode) -> Grant {
    self.holders += 1;
    self.hold_mode = mode;
    self.holder_threads.push(thread);
    Grant {
      key: key.clone(),
      mode,
      thread,
      released: AtomicBool::new(false),
      granted_at: Instant::now(),
    }
  }

  /// True when this process has had the OS lock for a full slice and another process is waiting
  /// for it: then no more in-process requests are admitted until it has been handed over. The
  /// look (a /proc/locks read on Linux) happens at most once per slice.
  fn should_yield(&mut self) -> bool {
    let Some(held) = &mut self.os else {
      return false;
    };
    if held.since.elapsed() < FAIR_SLICE {
      return false;
    }
    if held.lock.others_waiting() {
      return true;
    }
    held.since = Instant::now();
    false
  }

  /// Whether to hold back a shared request while this process holds the lock shared, because
  /// another process waits for it (`should_yield`). Holding back only helps that process if our
  /// holders drain, and a holder's release may depend on the very request held back (a reader
  /// that takes its next shared handle before releasing the last one): holding it back for good
  /// would then deadlock both processes (forever if the other waits without a timeout), while
  /// admitting it delays the other process no longer than the holder it replaces does. Which
  /// case it is cannot be seen, so the hold-back is bounded: once no holder has released for
  /// `HOLD_BACK_MIN`, or twice the path's typical hold if longer (holders that merely take long
  /// are let finish), the request goes in and a fresh fair slice starts. Holders that keep
  /// releasing are draining, and the hold-back lasts until they are gone and the other process
  /// is in. A hand-over-hand reader's holds stay short on average (only the one spanning a
  /// hold-back is long), so it keeps going, a hold-back's length at a time.
  fn hold_back_shared(&mut self) -> bool {
    if !self.should_yield() {
      self.held_back = None;
      return false;
    }
    let since = *self.held_back.get_or_insert_with(Instant::now);
    if since.elapsed() < HOLD_BACK_MIN.max(self.typical_hold * 2) {
      return true;
    }
    self.held_back = None;
    if let Some(held) = &mut self.os {
      held.since = Instant::now();
    }
    false
  }

  /// Whether the OS lock this process keeps across in-process hand-overs is still on the file the
  /// sidecar path names (looked at every `lock::TRUST_NAME_FOR`): a sidecar or directory moved
  /// or replaced while the path stays busy here must not keep this process on the old file while
  /// other processes lock the new one. True without an OS lock.
  fn os_still_named(&mut self) -> bool {
    match &mut self.os {
      Some(held) => held.lock.still_named(&self.sidecar).unwrap_or(false),
      None => true,
    }
  }

  /// Gives up the OS lock this process holds for the path, if any, keeping its descriptor for the
  /// next hold (`spare`).
  fn let_go(&mut self) {
    if let Some(held) = self.os.take() {
      spare::release(&self.sidecar, held.lock);
    }
  }

  fn idle(&self) -> bool {
    self.holders == 0
      && self.queue.is_empty()
      && self.os.is_none()
      && self.pending.iter().all(Option::is_none)
  }
}

type Table = HashMap<Arc<Path>, Entry>;

/// One table per process: worker threads load the same library image and share it, so they
/// queue behind each other instead of fighting over two flocks of one process.
static REGISTRY: LazyLock<Mutex<Table>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn table() -> MutexGuard<'static, Table> {
  // A panic while holding the table cannot leave it half-updated in a way worse than losing
  // the process's locks, so keep serving instead of poisoning every later call.
  REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Work to do once the table is unlocked: outcomes to deliver (a notify may drop a grant, and
/// dropping a grant releases it, which locks the table again), and an orphaned-temp sweep owed by
/// a fresh exclusive acquisition.
#[derive(Default)]
struct Outbox {
  outcomes: Vec<(Notify, Result<Grant>)>,
  sweep: Option<Arc<Path>>,
}

impl Outbox {
  fn push(&mut self, notify: Notify, outcome: Result<Grant>) {
    self.outcomes.push((notify, outcome));
  }
}

fn deliver(out: Outbox) {
  // Started once the grantee holds the lock: no writer that locks is mid-save then, and any
  // other writer's temp file is flocked, so the sweep (on its own thread) leaves it alone.
  if let Some(key) = out.sweep {
    sweep::sweep_if_changed(&key);
  }
  for (notify, outcome) in out.outcomes {
    notify(outcome);
  }
}

/// Proof of holding a path's lock; dropping it releases (so a terminated worker never leaves a
/// path locked). The JS side keeps every held lock referenced until `release()`, so a handle the
/// program drops is not released early by the garbage collector.
#[derive(Debug)]
pub struct Grant {
  key: Arc<Path>,
  mode: Mode,
  thread: ThreadId,
  released: AtomicBool,
  granted_at: Instant,
}

impl Grant {
  pub fn mode(&self) -> Mode {
    self.mode
  }

  pub fn key(&self) -> &Path {
    &self.key
  }

  pub fn is_released(&self) -> bool {
    self.released.load(Ordering::Acquire)
  }

  /// Gives the lock back; later calls do nothing.
  pub fn release(&self) {
    if self.released.swap(true, Ordering::AcqRel) {
      return;
    }
    let mut out = Outbox::default();
    {
      let mut t = table();
      if let Some(e) = t.get_mut(&self.key) {
        e.holders -= 1;
        e.typical_hold = (e.typical_hold * 7 + self.granted_at.elapsed()) / 8;
        if e.held_back.is_some() {
          e.held_back = Some(Instant::now());
        }
        if let Some(i) = e.holder_threads.iter().position(|t| *t == self.thread) {
          e.holder_threads.swap_remove(i);
        }
        pump(&self.key, e, &mut out);
        remove_if_idle(&mut t, &self.key);
      }
    }
    deliver(out);
  }
}

impl Drop for Grant {
  fn drop(&mut self) {
    self.release();
  }
}

fn grant_head(key: &Arc<Path>, e: &mut Entry, out: &mut Outbox) {
  let w = e.queue.pop_front().expect("grant_head needs a head");
  let grant = e.admit(key, w.thread, w.mode);
  out.push(w.notify, Ok(grant));
}

/// Grants every request the current state allows, in queue order: consecutive shared requests
/// together, an exclusive one alone. Starts a blocking flock wait when the OS lock is busy, and
/// calls off a wait no queued request needs any more (all of them timed out or were aborted), so
/// it cannot briefly take a lock nobody here wants.
fn pump(key: &Arc<Path>, e: &mut Entry, out: &mut Outbox) {
  grant_ready(key, e, out);
  for mode in [Mode::Shared, Mode::Exclusive] {
    if let Some(wait) = &e.pending[mode.index()] {
      if !e.queue.iter().any(|w| w.mode == mode) && !wait.abandoned.swap(true, Ordering::AcqRel) {
        lock::interrupt(&wait.thread);
        if sys::WAKE_MAY_BE_LOST {
          keep_waking(key.clone(), mode, wait.abandoned.clone());
        }
      }
    }
  }
}

/// Times an abandoned wait is woken again, and the longest pause between two wake-ups: about 10
/// seconds in all. A wait still there after that is stuck in something a signal does not end
/// (an `open` on a hung network mount); it ends when that does, and hands back what it got.
const WAKE_RESENDS: usize = 200;
const WAKE_RESEND_MAX: Duration = Duration::from_millis(50);

/// Wakes the abandoned wait of `key` in `mode` again and again until it is over (its thread
/// has deregistered), so that a wake-up lost in the window before its flock(2) (see
/// `sys::WAKE_MAY_BE_LOST`) cannot leave it blocked until the foreign holder lets go, which may
/// be never. Each wake-up is sent under the table lock, only while the thread is still
/// registered: it deregisters under that lock before it exits, so it is alive when signalled.
fn keep_waking(key: Arc<Path>, mode: Mode, abandoned: Arc<AtomicBool>) {
  let _ = std::thread::Builder::new()
    .name("index-lock-wake".into())
    .spawn(move || {
      let mut pause = Duration::from_millis(1);
      for _ in 0..WAKE_RESENDS {
        std::thread::sleep(pause);
        pause = (pause * 2).min(WAKE_RESEND_MAX);
        let t = table();
        match t.get(&key).and_then(|e| e.pending[mode.index()].as_ref()) {
          Some(wait) if Arc::ptr_eq(&wait.abandoned, &abandoned) => lock::interrupt(&wait.thread),
          _ => return,
        }
      }
    });
}

fn grant_ready(key: &Arc<Path>, e: &mut Entry, out: &mut Outbox) {
  loop {
    let Some(head) = e.queue.front() else {
      e.held_back = None;
      if e.holders == 0 {
        e.let_go();
      }
      return;
    };
    let mode = head.mode;
    if e.holders > 0 {
      // A shared request joins the holders' OS lock only while it is on the file the path
      // names; otherwise it waits for them to drain, and the lock is taken afresh.
      let joins = e.hold_mode == Mode::Shared && mode == Mode::Shared && e.os_still_named();
      if joins && (!e.hold_back_shared() || !schedule_recheck(key, e)) {
        grant_head(key, e, out);
        continue;
      }
      return;
    }
    e.held_back = None;
    let mut delay = Duration::ZERO;
    if !e.os_still_named() {
      // Closed, not kept: it locks a file the path no longer names.
      e.os = None;
    }
    if matches!(&e.os, Some(held) if held.mode != mode) {
      e.let_go();
    } else if e.os.is_some() && e.should_yield() {
      e.let_go();
      delay = YIELD_DELAY;
    }
    if e.os.is_none() {
      if e.pending[mode.index()].is_some() {
        return;
      }
      let now = if delay.is_zero() {
        spare::try_lock(&e.sidecar, mode)
      } else {
        Ok(None)
      };
      match now {
        Ok(Some(l)) => {
          e.os = Some(HeldOs::new(l, mode));
          if mode == Mode::Exclusive {
            out.sweep = Some(key.clone());
          }
        }
        Ok(None) => {
          match spawn_wait(key.clone(), e.sidecar.clone(), mode, delay) {
            Ok(wait) => e.pending[mode.index()] = Some(wait),
            Err(err) => {
              let w = e.queue.pop_front().expect("head exists");
              out.push(w.notify, Err(err));
              continue;
            }
          }
          return;
        }
        Err(err) => {
          let w = e.queue.pop_front().expect("head exists");
          out.push(w.notify, Err(err));
          continue;
        }
      }
    }
    grant_head(key, e, out);
  }
}

/// Has held-back shared requests of `key` looked at again after `HOLD_BACK_RECHECK` (unless that
/// is already arranged): they are granted once no other process waits, or once the hold-back
/// has lasted its bound. False when no thread could be started: then nothing would ever look at
/// them again, so the caller admits them instead.
fn schedule_recheck(key: &Arc<Path>, e: &mut Entry) -> bool {
  if e.recheck {
    return true;
  }
  let key = key.clone();
  let started = std::thread::Builder::new()
    .name("index-lock-recheck".into())
    .spawn(move || {
      std::thread::sleep(HOLD_BACK_RECHECK);
      let mut out = Outbox::default();
      {
        let mut t = table();
        let Some(e) = t.get_mut(&key) else {
          return;
        };
        e.recheck = false;
        pump(&key, e, &mut out);
        remove_if_idle(&mut t, &key);
      }
      deliver(out);
    });
  e.recheck = started.is_ok();
  e.recheck
}

fn remove_if_idle(t: &mut Table, key: &Path) {
  if t.get(key).is_some_and(Entry::idle) {
    t.remove(key);
  }
}

/// Waits for the OS lock on a thread of its own. When every request that wanted it gives up,
/// `pump` interrupts the wait; if the lock arrives anyway, it is handed straight back.
fn spawn_wait(
  key: Arc<Path>,
  sidecar: PathBuf,
  mode: Mode,
  delay: Duration,
) -> Result<PendingWait> {
  lock::init_wake_signal();
  let abandoned = Arc::new(AtomicBool::new(false));
  let flag = abandoned.clone();
  let handle = std::thread::Builder::new()
    .name("index-lock-wait".into())
    .spawn(move || {
      std::thread::sleep(delay);
      let got = lock::lock_blocking(&sidecar, mode, &flag);
      let mut out = Outbox::default();
      {
        let mut t = table();
        let Some(e) = t.get_mut(&key) else {
          return;
        };
        // Deregistered under the table lock: from here on nobody may signal this thread.
        e.pending[mode.index()] = None;
        let wanted = e.holders == 0 && e.queue.front().map(|w| w.mode) == Some(mode);
        match got {
          Ok(Some(l)) if wanted && e.os.is_none() => {
            e.os = Some(HeldOs::new(l, mode));
            if mode == Mode::Exclusive {
              out.sweep = Some(key.clone());
            }
          }
          Ok(_unwanted_or_abandoned) => {}
          Err(err) => {
            if wanted {
              let w = e.queue.pop_front().expect("head exists");
              out.push(w.notify, Err(err));
            }
          }
        }
        pump(&key, e, &mut out);
        remove_if_idle(&mut t, &key);
      }
      deliver(out);
    })
    .map_err(|e| Error::io(e, "pthread_create", Path::new("index-lock-wait")))?;
  Ok(PendingWait {
    thread: sys::waker_of(&handle),
    abandoned,
  })
}

/// The table's key for a lock key: the key itself, folded on a case-insensitive volume (see
/// `sys::fold_key`) so two spellings of one file share one queue. Their sidecar is the same file
/// there anyway; each entry keeps the first spelling's.
fn table_key(key: &Path) -> Cow<'_, Path> {
  match sys::fold_key(key) {
    Some(folded) => Cow::Owned(folded),
    None => Cow::Borrowed(key),
  }
}

fn key_of(t: &Table, key: &Path) -> Arc<Path> {
  t.get_key_value(key)
    .map(|(k, _)| k.clone())
    .unwrap_or_else(|| Arc::from(key))
}

/// Grants the lock now if that needs no waiting and jumps no queue; `Ok(None)` otherwise.
pub fn try_enter(key: &Path, mode: Mode) -> Result<Option<Grant>> {
  let mut t = table();
  let k = key_of(&t, &table_key(key));
  let e = t.entry(k.clone()).or_insert_with(|| Entry::new(key));
  let granted = if !e.queue.is_empty() {
    None
  } else if e.holders > 0 {
    (e.hold_mode == Mode::Shared && mode == Mode::Shared && !e.should_yield() && e.os_still_named())
      .then_some(())
  } else {
    match spare::try_lock(&e.sidecar, mode) {
      Ok(Some(l)) => {
        e.os = Some(HeldOs::new(l, mode));
        Some(())
      }
      Ok(None) => None,
      Err(err) => {
        remove_if_idle(&mut t, &k);
        return Err(err);
      }
    }
  };
  let fresh_exclusive = granted.is_some() && e.holders == 0 && mode == Mode::Exclusive;
  let grant = granted.map(|()| e.admit(&k, std::thread::current().id(), mode));
  remove_if_idle(&mut t, &k);
  drop(t);
  if fresh_exclusive {
    sweep::sweep_if_changed(&k);
  }
  Ok(grant)
}

/// Queues a request behind everything already queued for `key`; `notify` receives the grant,
/// or the error that ended the request. The caller's `id` identifies it for `cancel`.
pub fn enter(key: &Path, mode: Mode, id: u64, notify: Notify) {
  let mut out = Outbox::default();
  {
    let mut t = table();
    let k = key_of(&t, &table_key(key));
    let e = t.entry(k.clone()).or_insert_with(|| Entry::new(key));
    e.queue.push_back(Waiter {
      id,
      mode,
      thread: std::thread::current().id(),
      notify,
    });
    pump(&k, e, &mut out);
    remove_if_idle(&mut t, &k);
  }
  deliver(out);
}

/// Withdraws a queued request (its `notify` receives `Error::Cancelled`). False when it is no
/// longer queued: it was granted or failed already, and that outcome stands.
pub fn cancel(key: &Path, id: u64) -> bool {
  let mut out = Outbox::default();
  let found = {
    let mut t = table();
    let Some(k) = t.get_key_value(&*table_key(key)).map(|(k, _)| k.clone()) else {
      return false;
    };
    let e = t.get_mut(&k).expect("key just found");
    let found = match e.queue.iter().position(|w| w.id == id) {
      Some(i) => {
        let w = e.queue.remove(i).expect("index in range");
        out.push(w.notify, Err(Error::Cancelled));
        // The head may have changed: a shared request behind a withdrawn exclusive one may
        // now run alongside the current holders.
        pump(&k, e, &mut out);
        true
      }
      None => false,
    };
    remove_if_idle(&mut t, &k);
    found
  };
  deliver(out);
  found
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Ids for `enter`/`cancel`, unique in the process (and exact as JS numbers).
pub fn next_id() -> u64 {
  NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Blocks the calling thread until the lock is granted (`Ok(Some)`) or `timeout` passes
/// (`Ok(None)`; `None` waits forever). Refuses at once a wait that could only hang: this thread
/// already holds the path or has a request queued for it (`ELOCKDEADLOCK`), or holds it shared
/// and asks for exclusive (`ELOCKUPGRADE`).
pub fn enter_blocking(key: &Path, mode: Mode, timeout: Option<Duration>) -> Result<Option<Grant>> {
  let me = std::thread::current().id();
  if let Some(e) = table().get(&*table_key(key)) {
    if e.holder_threads.contains(&me) {
      return Err(if e.hold_mode == Mode::Shared && mode == Mode::Exclusive {
        Error::Upgrade { path: key.into() }
      } else {
        Error::Deadlock { path: key.into() }
      });
    }
    if e.queue.iter().any(|w| w.thread == me) {
      return Err(Error::Deadlock { path: key.into() });
    }
  }
  if let Some(g) = try_enter(key, mode)? {
    return Ok(Some(g));
  }
  if timeout == Some(Duration::ZERO) {
    return Ok(None);
  }
  let (tx, rx) = mpsc::sync_channel(1);
  let id = next_id();
  enter(
    key,
    mode,
    id,
    Box::new(move |outcome| {
      let _ = tx.send(outcome);
    }),
  );
  let outcome = match timeout {
    None => rx.recv().ok(),
    Some(d) => match rx.recv_timeout(d) {
      Ok(o) => Some(o),
      // Not withdrawn means the outcome is already on its way: take it.
      Err(_) if !cancel(key, id) => rx.recv().ok(),
      Err(_) => return Ok(None),
    },
  };
  outcome
    .expect("every queued request is notified exactly once")
    .map(Some)
}

/// The processes holding the OS lock of `key` (this process included when it holds it).
pub fn holders(key: &Path) -> Vec<lock::Holder> {
  lock::holders(&sidecar(key))
}

/// The processes waiting for the OS lock of `key` (`None`: the OS cannot tell).
pub fn waiters(key: &Path) -> Option<Vec<lock::Holder>> {
  lock::waiters(&sidecar(key))
}

/// Number of paths with any lock activity in this process (for leak checks).
pub fn active_paths() -> usize {
  table().len()
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::mpsc;

  fn key(tag: &str) -> PathBuf {
    crate::testdir::fresh(&format!("reg-{tag}")).join("index.json")
  }

  fn queued(k: &Path, mode: Mode, id: u64) -> mpsc::Receiver<Result<Grant>> {
    let (tx, rx) = mpsc::channel();
    enter(
      k,
      mode,
      id,
      Box::new(move |r| {
        let _ = tx.send(r);
      }),
    );
    rx
  }

  fn granted(rx: &mpsc::Receiver<Result<Grant>>) -> Grant {
    rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap()
  }

  fn still_waiting(rx: &mpsc::Receiver<Result<Grant>>) {
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
  }

  #[test]
  fn readers_writer_fifo_keeps_queue_order() {
    let k = key("fifo");
    let s1 = try_enter(&k, Mode::Shared).unwrap().unwrap();
    let s2 = try_enter(&k, Mode::Shared)
      .unwrap()
      .expect("shared joins shared");
    let x = queued(&k, Mode::Exclusive, 1);
    // A shared request behind a waiting exclusive one queues, and try_enter jumps no queue.
    let s3 = queued(&k, Mode::Shared, 2);
    assert!(try_enter(&k, Mode::Shared).unwrap().is_none());
    still_waiting(&x);
    drop(s1);
    still_waiting(&x);
    drop(s2);
    let xg = granted(&x);
    still_waiting(&s3);
    drop(xg);
    let s3g = granted(&s3);
    assert_eq!(s3g.mode(), Mode::Shared);
    drop(s3g);
    assert!(!table().contains_key(k.as_path()));
  }

  #[test]
  fn cancel_withdraws_and_lets_the_rest_through() {
    let k = key("cancel");
    let s = try_enter(&k, Mode::Shared).unwrap().unwrap();
    let x = queued(&k, Mode::Exclusive, 10);
    let s2 = queued(&k, Mode::Shared, 11);
    still_waiting(&s2);
    assert!(cancel(&k, 10));
    assert!(matches!(x.recv().unwrap(), Err(Error::Cancelled)));
    let s2g = granted(&s2);
    assert!(
      !cancel(&k, 11),
      "a granted request is no longer cancellable"
    );
    drop((s, s2g));
    assert!(!table().contains_key(k.as_path()));
  }

  #[test]
  fn another_holder_of_the_flock_is_waited_for_on_a_thread() {
    let k = key("os");
    let foreign = lock::try_lock(&sidecar(&k), Mode::Exclusive)
      .unwrap()
      .unwrap();
    assert!(try_enter(&k, Mode::Exclusive).unwrap().is_none());
    let w = queued(&k, Mode::Exclusive, 20);
    still_waiting(&w);
    drop(foreign);
    let g = granted(&w);
    g.release();
    g.release();
    assert!(!table().contains_key(k.as_path()));
  }

  #[test]
  fn blocking_waits_that_could_only_hang_are_refused() {
    let k = key("blocking");
    let s = enter_blocking(&k, Mode::Shared, None).unwrap().unwrap();
    assert_eq!(
      enter_blocking(&k, Mode::Exclusive, None)
        .unwrap_err()
        .code(),
      "ELOCKUPGRADE"
    );
    assert_eq!(
      enter_blocking(&k, Mode::Shared, None).unwrap_err().code(),
      "ELOCKDEADLOCK"
    );
    // Another thread waits, with a timeout and then without one until we release.
    let k2 = k.clone();
    let other = std::thread::spawn(move || {
      let started = std::time::Instant::now();
      let none = enter_blocking(&k2, Mode::Exclusive, Some(Duration::from_millis(50))).unwrap();
      assert!(none.is_none());
      assert!(started.elapsed() >= Duration::from_millis(50));
      enter_blocking(&k2, Mode::Exclusive, None).unwrap().unwrap()
    });
    std::thread::sleep(Duration::from_millis(150));
    drop(s);
    let g = other.join().unwrap();
    assert_eq!(g.mode(), Mode::Exclusive);
    drop(g);
    assert!(!table().contains_key(k.as_path()));
  }

  #[test]
  fn a_cancelled_os_wait_hands_the_lock_back() {
    let k = key("abandon");
    let foreign = lock::try_lock(&sidecar(&k), Mode::Exclusive)
      .unwrap()
      .unwrap();
    let w = queued(&k, Mode::Exclusive, 30);
    still_waiting(&w);
    assert!(cancel(&k, 30));
    drop(foreign);
    // The abandoned wait thread obtains the flock and must give it straight back.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
      if let Some(l) = lock::try_lock(&sidecar(&k), Mode::Exclusive).unwrap() {
        drop(l);
        break;
      }
      assert!(
        std::time::Instant::now() < deadline,
        "flock never came back"
      );
      std::thread::sleep(Duration::from_millis(5));
    }
  }

  #[test]
  fn every_abandoned_os_wait_ends_while_the_lock_stays_held() {
    let k = key("wake");
    let foreign = lock::try_lock(&sidecar(&k), Mode::Exclusive)
      .unwrap()
      .unwrap();
    // Requests withdrawn at every moment of their wait thread's start, including between its
    // look at the `abandoned` flag and its flock(2) (widened here so the wake-up lands there).
    sys::widen_wake_race(300);
    for i in 0..300u64 {
      let id = 1_000_000 + i;
      let rx = queued(&k, Mode::Exclusive, id);
      std::thread::sleep(Duration::from_micros((i * 37) % 600));
      assert!(cancel(&k, id));
      assert!(matches!(rx.recv().unwrap(), Err(Error::Cancelled)));
    }
    sys::widen_wake_race(0);
    // The entry goes once no wait thread is left: a thread still blocked in flock(2) keeps it
    // (and would until `foreign` lets go, which it never does here).
    let deadline = Instant::now() + Duration::from_secs(10);
    while table().contains_key(k.as_path()) {
      assert!(Instant::now() < deadline, "a wait thread never ended");
      std::thread::sleep(Duration::from_millis(5));
    }
    drop(foreign);
  }

  #[cfg(windows)]
  #[test]
  fn two_spellings_of_one_file_share_one_queue() {
    let k = key("case");
    let upper = PathBuf::from(k.to_str().unwrap().to_uppercase());
    let g = try_enter(&k, Mode::Exclusive).unwrap().unwrap();
    // One queue: this thread already holds it, so a blocking wait is refused at once instead
    // of timing out behind itself.
    assert_eq!(
      enter_blocking(&upper, Mode::Exclusive, Some(Duration::from_millis(50)))
        .unwrap_err()
        .code(),
      "ELOCKDEADLOCK"
    );
    assert_eq!(active_paths_for_test(&[&k, &upper]), 1);
    drop(g);
    assert!(!table().contains_key(&*table_key(&k)));
  }

  #[cfg(windows)]
  fn active_paths_for_test(keys: &[&Path]) -> usize {
    let t = table();
    let mut found: Vec<&Arc<Path>> = keys
      .iter()
      .filter_map(|k| t.get_key_value(&*table_key(k)).map(|(k, _)| k))
      .collect();
    found.dedup();
    found.len()
  }
}
