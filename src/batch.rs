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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;

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
}

#[derive(Default)]
struct Table {
  batches: HashMap<u64, Open>,
  /// The batch of a key that still takes riders.
  joinable: HashMap<String, u64>,
  /// The batch each waiting rider is in.
  riding: HashMap<u64, u64>,
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

/// Registers the batch the calling thread has just queued for `key`: other threads' calls with
/// the same file and write options may join it. Returns its id.
pub fn open(key: String, io: String, indent: String, fsync: bool) -> u64 {
  let mut t = table();
  t.next += 1;
  let id = t.next;
  t.joinable.insert(key.clone(), id);
  t.batches.insert(
    id,
    Open {
      key,
      owner: std::thread::current().id(),
      io,
      indent,
      fsync,
      riders: Vec::new(),
    },
  );
  id
}

/// Another request for `key` is being made: its batch takes no more riders.
pub fn close(key: &str) {
  let mut t = table();
  if !t.joinable.is_empty() {
    t.joinable.remove(key);
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

/// The batch `id` runs now: its riders, which it must answer. It takes no more.
pub fn take(id: u64) -> Vec<Rider> {
  let mut t = table();
  let Some(batch) = t.batches.remove(&id) else {
    return Vec::new();
  };
  forget(&mut t, id, &batch);
  batch.riders
}

/// The batch `id` will not run: its riders are handed back.
pub fn abandon(id: u64) {
  let mut t = table();
  if let Some(batch) = t.batches.remove(&id) {
    forget(&mut t, id, &batch);
    drop(t);
    hand_back(batch.riders);
  }
}

/// The JS thread `owner` ends (a worker terminated): its waiting batches will never run.
pub fn abandon_thread(owner: ThreadId) {
  let mut t = table();
  let ids: Vec<u64> = t
    .batches
    .iter()
    .filter(|(_, b)| b.owner == owner)
    .map(|(id, _)| *id)
    .collect();
  let mut riders = Vec::new();
  for id in ids {
    if let Some(batch) = t.batches.remove(&id) {
      forget(&mut t, id, &batch);
      riders.extend(batch.riders);
    }
  }
  drop(t);
  hand_back(riders);
}

fn forget(t: &mut Table, id: u64, batch: &Open) {
  if t.joinable.get(&batch.key) == Some(&id) {
    t.joinable.remove(&batch.key);
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
    let id = open("/k-join".into(), "/io".into(), "  ".into(), true);
    // The owner's own calls join in JS, never here.
    assert!(ride("/k-join", ("/io", "  ", true)).is_none());
    let (ticket, answer) = on_other_thread(|| {
      assert!(ride("/k-join", ("/io", "", true)).is_none());
      assert!(ride("/k-join", ("/io", "  ", false)).is_none());
      assert!(ride("/k-join", ("/other", "  ", true)).is_none());
      ride("/k-join", ("/io", "  ", true)).unwrap()
    });
    let riders = take(id);
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
    let id = open("/k-close".into(), "/io".into(), "".into(), true);
    let ((a, ra), (_, rb)) = on_other_thread(|| {
      let a = ride("/k-close", ("/io", "", true)).unwrap();
      let b = ride("/k-close", ("/io", "", true)).unwrap();
      (a, b)
    });
    assert!(leave(a));
    assert!(matches!(ra.try_recv(), Ok(Reply::Left)));
    close("/k-close");
    assert!(on_other_thread(|| ride("/k-close", ("/io", "", true))).is_none());
    abandon(id);
    assert!(matches!(rb.try_recv(), Ok(Reply::Retry)));
    assert!(take(id).is_empty());
  }

  #[test]
  fn a_thread_that_ends_hands_its_batches_riders_back() {
    let owner = on_other_thread(|| {
      open("/k-end".into(), "/io".into(), "".into(), false);
      std::thread::current().id()
    });
    let (_, answer) = ride("/k-end", ("/io", "", false)).unwrap();
    abandon_thread(owner);
    assert!(matches!(answer.try_recv(), Ok(Reply::Retry)));
  }

  #[test]
  fn a_rider_whose_batch_task_is_dropped_unrun_is_handed_back() {
    let id = open("/k-drop".into(), "/io".into(), "".into(), true);
    let (_, answer) = on_other_thread(|| ride("/k-drop", ("/io", "", true))).unwrap();
    drop(take(id));
    assert!(matches!(answer.try_recv(), Ok(Reply::Retry)));
  }

  #[test]
  fn at_most_so_many_riders_per_batch() {
    let id = open("/k-full".into(), "/io".into(), "".into(), true);
    let joined = on_other_thread(|| {
      (0..MOST_RIDERS + 3)
        .filter(|_| ride("/k-full", ("/io", "", true)).is_some())
        .count()
    });
    assert_eq!(joined, MOST_RIDERS);
    abandon(id);
  }
}
