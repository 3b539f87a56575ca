//! Change batches waiting for their file's lock, open to calls from the process's other threads.
//!
//! A thread's own calls join its batch in JS (lib/changes.js). A call made on another thread of
//! the process (a worker) joins here, so that concurrent changes to one file from every thread
//! are one read, one parse and one write. A joined call (a rider) goes with the batch when it runs
//! and gets its outcome from the engine thread; if the batch is given up before it runs (its own
//! calls all left, its thread ended), the rider is handed back and its thread queues the call
//! itself. A batch stops taking riders at the first other request for its file from any thread:
//! no call may overtake a request made before it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;

use crate::registry::Grant;

/// Most riders one batch takes; beyond, a call queues a batch of its own.
const MOST_RIDERS: usize = 64;

/// A change as JS passes it: kind (`patch`/`merge`), the change and its `default` as JSON text.
pub struct Text {
  pub kind: String,
  pub change: String,
  pub default: Option<String>,
}

/// How a rider's call ended.
pub enum Reply {
  /// Applied (or failed) with the batch: `None` done, else the error as JSON; and how many calls
  /// the batch carried.
  Done(Option<String>, u32),
  /// The batch was given up before it ran: the caller queues the call itself.
  Retry,
  /// The caller withdrew it (timeout, abort) before the batch ran.
  Left,
}

/// A call from another thread, riding with a batch.
pub struct Rider {
  seq: u64,
  call: Text,
  ticket: u64,
  thread: ThreadId,
  reply: Answer,
}

/// Delivers a rider's reply to its caller (a caller that has gone, its worker ended, drops it).
/// One dropped unsent (its batch's task never ran) sends `Retry`: a caller must never be left
/// waiting, which would also keep its thread's event loop alive.
pub struct Answer(Option<Box<dyn FnOnce(Reply) + Send>>);

impl Answer {
  pub fn new(f: impl FnOnce(Reply) + Send + 'static) -> Self {
    Answer(Some(Box::new(f)))
  }

  pub fn send(mut self, reply: Reply) {
    if let Some(f) = self.0.take() {
      f(reply)
    }
  }
}

impl Drop for Answer {
  fn drop(&mut self) {
    if let Some(f) = self.0.take() {
      f(Reply::Retry)
    }
  }
}

impl Rider {
  /// Its place in the call order, its change, and where its reply goes.
  pub fn into_parts(self) -> (u64, Text, Answer) {
    (self.seq, self.call, self.reply)
  }
}

struct Open {
  key: String,
  owner: ThreadId,
  io: String,
  indent: String,
  fsync: bool,
  riders: Vec<Rider>,
  /// The id of its queued lock request, if it queued one.
  wait: Option<u64>,
  /// Its owner's thread ended while it waited: the grant runs it for its riders (`granted`).
  orphaned: bool,
  /// Its lock, once granted, until the batch runs (`take`): held here, not by its owner's JS,
  /// so that if the owner's thread ends first the batch still runs for its riders with it.
  grant: Option<Arc<Grant>>,
  /// Another request for its key came in before it was armed: it takes no riders.
  overtaken: bool,
}

/// A batch whose owner's thread ended while it waited, to run for its riders at its grant.
pub struct Orphan {
  pub io: String,
  pub indent: String,
  pub fsync: bool,
  pub riders: Vec<Rider>,
}

#[derive(Default)]
struct Table {
  batches: HashMap<u64, Open>,
  /// The batch of a key that still takes riders.
  joinable: HashMap<String, u64>,
  /// The batch each waiting rider is in.
  riding: HashMap<u64, u64>,
  /// The batch of each queued lock request that is a batch's.
  waits: HashMap<u64, u64>,
  next: u64,
}

fn table() -> std::sync::MutexGuard<'static, Table> {
  static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
  TABLE
    .get_or_init(Mutex::default)
    .lock()
    .unwrap_or_else(|e| e.into_inner())
}

/// The next number in the process-wide call order (a batch runs its calls in this order).
pub fn seq() -> u64 {
  static SEQ: AtomicU64 = AtomicU64::new(1);
  SEQ.fetch_add(1, Ordering::Relaxed)
}

/// Registers a batch the calling thread is about to request the lock of `key` for (then
/// `hold`, or `set_wait` and `arm`; or `abandon`). Returns its id. It takes riders only once
/// armed, and only if no other request for `key` came in meanwhile: such a request may be
/// queued before the batch, and a rider's thread's later call must not run before it.
pub fn open(key: String, (io, indent, fsync): (String, String, bool)) -> u64 {
  let mut t = table();
  OPEN.fetch_add(1, Ordering::SeqCst);
  t.next += 1;
  let id = t.next;
  t.batches.insert(
    id,
    Open {
      key,
      owner: std::thread::current().id(),
      io,
      indent,
      fsync,
      riders: Vec::new(),
      wait: None,
      orphaned: false,
      grant: None,
      overtaken: false,
    },
  );
  id
}

/// A request for `key` has just been made (queued or granted; by the batch `except`, if any):
/// every other batch of the key takes no more riders, and one not yet armed never will. Called
/// after the request, so that a batch queued before it, whose record is made before its own
/// request, is always seen. With no batch open (the usual case) it costs one atomic load on the
/// lock path, not the table's mutex.
pub fn close(key: &str, except: Option<u64>) {
  if OPEN.load(Ordering::SeqCst) == 0 {
    return;
  }
  let mut t = table();
  if t.joinable.get(key).is_some_and(|&j| Some(j) != except) {
    t.joinable.remove(key);
  }
  for (id, b) in t.batches.iter_mut() {
    if b.key == key && Some(*id) != except {
      b.overtaken = true;
    }
  }
}

/// The batch `id` has made its request (its lock held, or queued): it takes riders from now
/// on, unless another request for its key came in first.
pub fn arm(id: u64) {
  let mut t = table();
  let Some(b) = t.batches.get(&id) else {
    return;
  };
  if !b.overtaken {
    let key = b.key.clone();
    t.joinable.insert(key, id);
  }
}

/// The batch `id` took its lock at once: held here until it runs (`take`).
pub fn hold(id: u64, grant: Grant) {
  let mut t = table();
  if let Some(b) = t.batches.get_mut(&id) {
    b.grant = Some(Arc::new(grant));
  }
}

/// The batch `id` queued the lock request `wait` (see `granted`).
pub fn set_wait(id: u64, wait: u64) {
  let mut t = table();
  if let Some(b) = t.batches.get_mut(&id) {
    b.wait = Some(wait);
    t.waits.insert(wait, id);
  }
}

/// Joins the open batch of `key` queued by another thread, if its file and write options are
/// these; `reply()`, made only then, gets the outcome, and `ticket` (unique in the process) is
/// the caller's to `leave` with. False: the caller queues its own.
pub fn join(
  key: &str,
  (io, indent, fsync): (&str, &str, bool),
  ticket: u64,
  call: Text,
  reply: impl FnOnce() -> Answer,
) -> bool {
  let mut t = table();
  let Some(&id) = t.joinable.get(key) else {
    return false;
  };
  let me = std::thread::current().id();
  let Some(batch) = t.batches.get_mut(&id) else {
    return false;
  };
  if batch.owner == me
    || batch.io != io
    || batch.indent != indent
    || batch.fsync != fsync
    || batch.riders.len() >= MOST_RIDERS
  {
    return false;
  }
  batch.riders.push(Rider {
    seq: seq(),
    call,
    ticket,
    thread: me,
    reply: reply(),
  });
  t.riding.insert(ticket, id);
  true
}

/// Withdraws a rider whose batch has not run: true if it was withdrawn (its answer is `Left`),
/// false if the batch has its call already (its outcome will come).
pub fn leave(ticket: u64) -> bool {
  let mut t = table();
  let Some(id) = t.riding.remove(&ticket) else {
    return false;
  };
  let Some(batch) = t.batches.get_mut(&id) else {
    return false;
  };
  let Some(at) = batch.riders.iter().position(|r| r.ticket == ticket) else {
    return false;
  };
  let rider = batch.riders.remove(at);
  drop(t);
  rider.reply.send(Reply::Left);
  true
}

/// The batch `id` runs now: its riders, which it must answer, and its lock if the grant is held
/// here (see `granted`). It takes no more.
pub fn take(id: u64) -> (Vec<Rider>, Option<Arc<Grant>>) {
  let mut t = table();
  let Some(mut batch) = t.batches.remove(&id) else {
    return (Vec::new(), None);
  };
  forget(&mut t, id, &batch);
  (batch.riders, batch.grant.take())
}

/// The batch `id` will not run: its riders are handed back. Unless `force`, a batch with riders
/// is kept instead (false): its owner runs it for them, where they would otherwise queue again
/// behind calls their threads made since.
pub fn abandon(id: u64, force: bool) -> bool {
  let mut t = table();
  if !force && t.batches.get(&id).is_some_and(|b| !b.riders.is_empty()) {
    return false;
  }
  if let Some(batch) = t.batches.remove(&id) {
    forget(&mut t, id, &batch);
    // Unlocked first: its lock, released with it, may go to a batch waiting on this thread.
    drop(t);
    hand_back(batch.riders);
  }
  true
}

/// The JS thread `owner` ends (a worker terminated): its batches will never be run by it. One
/// with riders still runs for them, in its place in the queue: now if its lock is already held
/// here (returned, to be run), else at its grant. The rest hand their riders back. And the
/// thread's own calls riding elsewhere are withdrawn: a call of a thread that is gone is not
/// made (as it would not be had it waited in its own thread's batch).
pub fn abandon_thread(owner: ThreadId) -> Vec<(Orphan, Arc<Grant>)> {
  let mut t = table();
  let ids: Vec<u64> = t
    .batches
    .iter()
    .filter(|(_, b)| b.owner == owner)
    .map(|(id, _)| *id)
    .collect();
  let mut riders = Vec::new();
  let mut runnable = Vec::new();
  // Locks to give up, once the table is unlocked: releasing one hands it to the next waiter on
  // this thread, whose grant may be a batch's (`granted`), which locks the table again.
  let mut released = Vec::new();
  for id in ids {
    let batch = t.batches.get_mut(&id).expect("listed above");
    if batch.wait.is_some() && batch.grant.is_none() && !batch.riders.is_empty() {
      batch.orphaned = true;
      let key = batch.key.clone();
      if t.joinable.get(&key) == Some(&id) {
        t.joinable.remove(&key);
      }
      continue;
    }
    if let Some(mut batch) = t.batches.remove(&id) {
      forget(&mut t, id, &batch);
      match batch.grant.take() {
        Some(grant) if !batch.riders.is_empty() => runnable.push((orphan_of(batch), grant)),
        // Its lock goes (dropping the grant releases it), its riders home.
        grant => {
          released.extend(grant);
          riders.extend(batch.riders);
        }
      }
    }
  }
  let mut gone = Vec::new();
  for batch in t.batches.values_mut() {
    let (theirs, others) = std::mem::take(&mut batch.riders)
      .into_iter()
      .partition(|r| r.thread == owner);
    batch.riders = others;
    gone.extend::<Vec<Rider>>(theirs);
  }
  for r in &gone {
    t.riding.remove(&r.ticket);
  }
  drop(t);
  drop(released);
  hand_back(riders);
  for r in gone {
    r.reply.send(Reply::Left);
  }
  runnable
}

fn orphan_of(batch: Open) -> Orphan {
  Orphan {
    io: batch.io,
    indent: batch.indent,
    fsync: batch.fsync,
    riders: batch.riders,
  }
}

/// What became of a batch's grant (`granted`).
pub enum Granted {
  /// Held for the batch until its owner runs it (or released, if the batch is gone).
  Kept,
  /// Its owner's thread has ended: run it for its riders with this lock.
  Orphan(Orphan, Arc<Grant>),
}

/// The lock request `wait` of a batch is granted: the lock is held for the batch until it runs
/// (`take`), or, if its owner's thread has ended, it is to be run now for its riders.
pub fn granted(wait: u64, grant: Grant) -> Granted {
  let mut t = table();
  let Some(id) = t.waits.remove(&wait) else {
    // The batch is gone (given up): the lock goes with the grant.
    return Granted::Kept;
  };
  let Some(batch) = t.batches.get_mut(&id) else {
    return Granted::Kept;
  };
  if !batch.orphaned {
    batch.grant = Some(Arc::new(grant));
    return Granted::Kept;
  }
  let batch = t.batches.remove(&id).expect("found above");
  forget(&mut t, id, &batch);
  Granted::Orphan(orphan_of(batch), Arc::new(grant))
}

/// The lock request `wait` failed: a batch orphaned on it hands its riders back.
pub fn failed(wait: u64) {
  let mut t = table();
  let Some(id) = t.waits.remove(&wait) else {
    return;
  };
  if t.batches.get(&id).is_some_and(|b| b.orphaned) {
    if let Some(batch) = t.batches.remove(&id) {
      forget(&mut t, id, &batch);
      drop(t);
      hand_back(batch.riders);
    }
  }
}

/// Batches in the table (`open` to `forget`).
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Drops the indexes of `batch`, just removed from the table.
fn forget(t: &mut Table, id: u64, batch: &Open) {
  OPEN.fetch_sub(1, Ordering::SeqCst);
  if t.joinable.get(&batch.key) == Some(&id) {
    t.joinable.remove(&batch.key);
  }
  if let Some(w) = batch.wait {
    t.waits.remove(&w);
  }
  for r in &batch.riders {
    t.riding.remove(&r.ticket);
  }
}

fn hand_back(riders: Vec<Rider>) {
  for r in riders {
    r.reply.send(Reply::Retry);
  }
}

#[cfg(test)]
mod tests {
  use std::sync::mpsc;

  use super::*;

  fn text() -> Text {
    Text {
      kind: "merge".into(),
      change: "{}".into(),
      default: None,
    }
  }

  fn on_other_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
  }

  /// A batch of this thread for `key` on the file "/io", opened as the JS side opens one.
  fn opened(key: &str, indent: &str, fsync: bool) -> u64 {
    let id = open(key.into(), ("/io".into(), indent.into(), fsync));
    close(key, Some(id));
    arm(id);
    id
  }

  /// Joins with a fresh ticket; the reply arrives on the receiver.
  fn ride(key: &str, opts: (&str, &str, bool)) -> Option<(u64, mpsc::Receiver<Reply>)> {
    let ticket = seq();
    let (tx, rx) = mpsc::channel();
    let reply = move || {
      Answer::new(move |r| {
        let _ = tx.send(r);
      })
    };
    join(key, opts, ticket, text(), reply).then_some((ticket, rx))
  }

  #[test]
  fn riders_join_other_threads_batches_with_the_same_options_only() {
    let id = opened("/k-join", "  ", true);
    // The owner's own calls join in JS, never here.
    assert!(ride("/k-join", ("/io", "  ", true)).is_none());
    let (ticket, answer) = on_other_thread(|| {
      assert!(ride("/k-join", ("/io", "", true)).is_none());
      assert!(ride("/k-join", ("/io", "  ", false)).is_none());
      assert!(ride("/k-join", ("/other", "  ", true)).is_none());
      ride("/k-join", ("/io", "  ", true)).unwrap()
    });
    let (riders, _) = take(id);
    assert_eq!(riders.len(), 1);
    // Taken: leaving is too late, and the batch takes no more.
    assert!(!leave(ticket));
    assert!(on_other_thread(|| ride("/k-join", ("/io", "  ", true))).is_none());
    for r in riders {
      let (_, _, answer) = r.into_parts();
      answer.send(Reply::Done(Some("err".into()), 2));
    }
    assert!(matches!(answer.try_recv(), Ok(Reply::Done(Some(e), 2)) if e == "err"));
  }

  #[test]
  fn another_request_closes_the_batch_and_abandoning_hands_riders_back() {
    let id = opened("/k-close", "", true);
    let ((a, ra), (_, rb)) = on_other_thread(|| {
      let a = ride("/k-close", ("/io", "", true)).unwrap();
      let b = ride("/k-close", ("/io", "", true)).unwrap();
      (a, b)
    });
    assert!(leave(a));
    assert!(matches!(ra.try_recv(), Ok(Reply::Left)));
    close("/k-close", None);
    assert!(on_other_thread(|| ride("/k-close", ("/io", "", true))).is_none());
    assert!(abandon(id, true));
    assert!(matches!(rb.try_recv(), Ok(Reply::Retry)));
    assert!(take(id).0.is_empty());
  }

  #[test]
  fn a_thread_that_ends_hands_its_batches_riders_back() {
    let owner = on_other_thread(|| {
      opened("/k-end", "", false);
      std::thread::current().id()
    });
    let (_, answer) = ride("/k-end", ("/io", "", false)).unwrap();
    assert!(abandon_thread(owner).is_empty());
    assert!(matches!(answer.try_recv(), Ok(Reply::Retry)));
  }

  #[test]
  fn a_rider_whose_batch_task_is_dropped_unrun_is_handed_back() {
    let id = opened("/k-drop", "", true);
    let (_, answer) = on_other_thread(|| ride("/k-drop", ("/io", "", true))).unwrap();
    drop(take(id));
    assert!(matches!(answer.try_recv(), Ok(Reply::Retry)));
  }

  #[test]
  fn a_request_of_another_thread_while_a_batch_is_being_opened_keeps_it_closed() {
    let id = open("/k-race".into(), ("/io".into(), "".into(), true));
    on_other_thread(|| close("/k-race", None));
    close("/k-race", Some(id));
    arm(id);
    assert!(on_other_thread(|| ride("/k-race", ("/io", "", true))).is_none());
    assert!(abandon(id, false));
    // A later batch of the key, not overtaken, is open to riders again.
    let id = opened("/k-race", "", true);
    assert!(on_other_thread(|| ride("/k-race", ("/io", "", true))).is_some());
    assert!(abandon(id, true));
  }

  #[test]
  fn a_thread_that_ends_withdraws_its_own_riders() {
    let id = opened("/k-gone", "", true);
    let (rider_thread, answer) = on_other_thread(|| {
      let (_, rx) = ride("/k-gone", ("/io", "", true)).unwrap();
      (std::thread::current().id(), rx)
    });
    abandon_thread(rider_thread);
    assert!(matches!(answer.try_recv(), Ok(Reply::Left)));
    assert!(take(id).0.is_empty());
  }

  /// A free lock of a test file in a directory of its own (removed by the caller), as a grant
  /// to hand a batch.
  fn a_grant(tag: &str) -> (Grant, std::path::PathBuf) {
    let dir = crate::testdir::fresh(tag);
    let grant = crate::registry::try_enter(&dir.join("index.json"), crate::lock::Mode::Exclusive)
      .unwrap()
      .unwrap();
    (grant, dir)
  }

  #[test]
  fn a_queued_batch_whose_owner_ends_runs_for_its_riders_at_its_grant() {
    let wait = seq();
    let (owner, id) = on_other_thread(|| {
      let id = opened("/k-orphan", "", true);
      set_wait(id, wait);
      (std::thread::current().id(), id)
    });
    let (_, answer) = ride("/k-orphan", ("/io", "", true)).unwrap();
    assert!(abandon_thread(owner).is_empty());
    // Not handed back: it waits for the grant, in its place in the queue.
    assert!(answer.try_recv().is_err());
    let (grant, dir) = a_grant("batch-orphan");
    let Granted::Orphan(orphan, _) = granted(wait, grant) else {
      panic!("the grant runs it")
    };
    assert_eq!(orphan.riders.len(), 1);
    assert!(take(id).0.is_empty());
    std::fs::remove_dir_all(dir).unwrap();
  }

  #[test]
  fn a_batch_granted_but_not_run_when_its_owner_ends_runs_for_its_riders_with_its_lock() {
    let wait = seq();
    let (owner, id) = on_other_thread(|| {
      let id = opened("/k-held", "", true);
      set_wait(id, wait);
      (std::thread::current().id(), id)
    });
    let (_, answer) = ride("/k-held", ("/io", "", true)).unwrap();
    let (grant, dir) = a_grant("batch-held");
    assert!(matches!(granted(wait, grant), Granted::Kept));
    let runnable = abandon_thread(owner);
    assert_eq!(runnable.len(), 1);
    assert_eq!(runnable[0].0.riders.len(), 1);
    assert!(answer.try_recv().is_err());
    assert!(take(id).0.is_empty());
    // The owner runs it (the usual case): the lock comes with its riders.
    let wait = seq();
    let id = on_other_thread(|| {
      let id = opened("/k-held2", "", true);
      set_wait(id, wait);
      id
    });
    let (grant, dir2) = a_grant("batch-held2");
    assert!(matches!(granted(wait, grant), Granted::Kept));
    let (riders, grant) = take(id);
    assert!(riders.is_empty() && grant.is_some());
    drop((runnable, grant));
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(dir2).unwrap();
  }

  #[test]
  fn at_most_so_many_riders_per_batch() {
    let id = opened("/k-full", "", true);
    let joined = on_other_thread(|| {
      (0..MOST_RIDERS + 3)
        .filter(|_| ride("/k-full", ("/io", "", true)).is_some())
        .count()
    });
    assert_eq!(joined, MOST_RIDERS);
    assert!(!abandon(id, false), "a batch with riders is kept");
    assert!(abandon(id, true));
  }
}
