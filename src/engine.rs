//! The JSON engine's threads: a few long-lived threads with the stack deep documents need.
//!
//! Parsing, formatting, comparing and dropping a document recurse once per level of nesting, up to
//! `json::MAX_DEPTH` (measured: 100,000 levels fit in 32 MiB; twice that for margin), so the engine
//! cannot run on libuv's or the JS thread's stack. A thread started per call cost two thread
//! creations per update and, on a busy machine, milliseconds of the event loop; these threads are
//! started once and kept. They are only ever started from a JS thread (`start`, called by every
//! binding before it hands work over): a thread that cannot be created (a tight `ulimit -v`
//! refusing the stack reservation) is then an error for that call, where creating one from a
//! libuv thread under the same limit made glibc abort the process.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Condvar, Mutex, OnceLock};

use crate::error::{Error, Result};

/// Stack of each engine thread. Only the pages a document uses are ever touched, so a shallow
/// index costs what any thread costs; the reservation is address space.
const STACK: usize = 64 << 20;

/// Most engine threads: batches of different files run side by side (each holds its thread
/// through its fsyncs); more would only contend for the cores.
const MOST_THREADS: usize = 4;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
  jobs: VecDeque<Job>,
  threads: usize,
  idle: usize,
}

struct Pool {
  queue: Mutex<Queue>,
  work: Condvar,
}

fn pool() -> &'static Pool {
  static POOL: OnceLock<Pool> = OnceLock::new();
  POOL.get_or_init(|| Pool {
    queue: Mutex::new(Queue::default()),
    work: Condvar::new(),
  })
}

/// Asked once: on Linux the answer reads three cgroup files, which per call cost more syscalls
/// than the update itself.
fn wanted() -> usize {
  static WANTED: OnceLock<usize> = OnceLock::new();
  *WANTED.get_or_init(|| {
    std::thread::available_parallelism()
      .map(|n| n.get())
      .unwrap_or(1)
      .clamp(1, MOST_THREADS)
  })
}

/// Makes sure the engine has threads, starting them if needed: call it on a JS thread before any
/// `run`. An error (EAGAIN, ENOMEM from `pthread_create`) only when there is none at all.
pub fn start() -> Result<()> {
  let p = pool();
  let mut q = p.queue.lock().unwrap_or_else(|e| e.into_inner());
  while q.threads < wanted() {
    match std::thread::Builder::new()
      .name("index-lock-json".into())
      .stack_size(STACK)
      .spawn(serve)
    {
      Ok(_) => q.threads += 1,
      Err(e) if q.threads == 0 => {
        return Err(Error::io(
          e,
          "pthread_create",
          Path::new("index-lock JSON engine thread"),
        ))
      }
      // Fewer threads than wanted still serve every call, in turn.
      Err(_) => break,
    }
  }
  Ok(())
}

fn serve() {
  let p = pool();
  loop {
    let job = {
      let mut q = p.queue.lock().unwrap_or_else(|e| e.into_inner());
      loop {
        if let Some(job) = q.jobs.pop_front() {
          break job;
        }
        q.idle += 1;
        q = p.work.wait(q).unwrap_or_else(|e| e.into_inner());
        q.idle -= 1;
      }
    };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
  }
}

/// Runs `f` on an engine thread and waits for its answer. `start` must have succeeded first; a
/// panic in `f` is resumed here, on the caller's thread.
pub fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
  run_then(move || (f(), ()))
}

/// `run` of an `f` that returns its answer and what it leaves behind: the caller has the answer
/// while the engine thread still frees the rest (a big document takes milliseconds).
pub fn run_then<T: Send + 'static, L: 'static>(f: impl FnOnce() -> (T, L) + Send + 'static) -> T {
  let (tx, rx) = mpsc::sync_channel(1);
  submit(
    move || match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
      Ok((answer, leftover)) => {
        let _ = tx.send(Ok(answer));
        drop(leftover);
      }
      Err(panic) => {
        let _ = tx.send(Err(panic));
      }
    },
  );
  match rx.recv() {
    Ok(Ok(v)) => v,
    Ok(Err(panic)) => std::panic::resume_unwind(panic),
    Err(_) => unreachable!("an engine job always answers"),
  }
}

/// Queues `job` for the engine's threads; its answer, and catching its panics, are its own
/// business (a panic that escapes is caught and dropped, so the thread keeps serving).
pub fn submit(job: impl FnOnce() + Send + 'static) {
  let p = pool();
  let mut q = p.queue.lock().unwrap_or_else(|e| e.into_inner());
  debug_assert!(q.threads > 0, "engine::start must run before any job");
  q.jobs.push_back(Box::new(job));
  if q.idle > 0 {
    p.work.notify_one();
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn jobs_run_on_big_stacks_and_panics_reach_the_caller() {
    start().unwrap();
    // Recursion a default 2 MiB thread could not hold (about 10 MiB of frames).
    fn deep(n: u32) -> u32 {
      let pad = std::hint::black_box([n as u8; 512]);
      if n == 0 {
        0
      } else {
        deep(n - 1) + u32::from(pad[511] == u8::MAX && n == u32::MAX)
      }
    }
    assert_eq!(run(|| deep(20_000)), 0);
    let name = run(|| std::thread::current().name().map(String::from));
    assert_eq!(name.as_deref(), Some("index-lock-json"));
    let caught = std::panic::catch_unwind(|| run(|| panic!("engine job")));
    assert!(caught.is_err());
    // The thread that panicked still serves.
    assert_eq!(run(|| 7), 7);
  }

  #[test]
  fn many_callers_share_the_threads() {
    start().unwrap();
    let handles: Vec<_> = (0..16)
      .map(|i| std::thread::spawn(move || run(move || i * 2)))
      .collect();
    let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..16).map(|i| i * 2).sum::<i32>());
  }
}
