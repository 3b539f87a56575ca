//! The native lower bound of bench/run.js's read-modify-write test: the same loop as the JS rows
//! (flock `<path>.lock`, read, parse, insert one entry, write a temp file, fsync, rename, fsync
//! the directory) with no JavaScript, no queue and no napi in the way.
//!
//! One process of a P x C x U run: C OS threads, each with its own open file description of the
//! sidecar (flock excludes between descriptions, so the threads exclude each other as well as
//! other processes), each doing U updates. Speaks the same stdin/stdout protocol as
//! bench/rmw-child.js: prints `ready`, waits for a line on stdin, runs, prints one JSON line.
//!
//! Usage: index-lock-bench-native <path> <callers> <updates> <fsync 0|1> <proc-index> <warm-path> <warm-updates>

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// CLOCK_MONOTONIC in ns: the clock Node's `process.hrtime.bigint()` reads, so finish times are
/// comparable with the orchestrator's start signal.
fn monotonic_ns() -> u128 {
  let mut ts = libc::timespec {
    tv_sec: 0,
    tv_nsec: 0,
  };
  // SAFETY: valid pointer to a timespec; CLOCK_MONOTONIC always exists on Linux.
  unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
  ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
  loop {
    // SAFETY: a valid open descriptor.
    if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
      return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.kind() != io::ErrorKind::Interrupted {
      return Err(err);
    }
  }
}

fn sidecar(path: &Path) -> PathBuf {
  let mut s = path.as_os_str().to_os_string();
  s.push(".lock");
  PathBuf::from(s)
}

/// One update, with the lock already held: the work every JS row does too.
fn update(path: &Path, key: &str, durable: bool) -> io::Result<()> {
  let mut index: Value = match fs::read(path) {
    Ok(bytes) if bytes.iter().any(|b| !b.is_ascii_whitespace()) => serde_json::from_slice(&bytes)?,
    Ok(_) => json!({ "entries": {} }),
    Err(e) if e.kind() == io::ErrorKind::NotFound => json!({ "entries": {} }),
    Err(e) => return Err(e),
  };
  let at = SystemTime::now()
    .duration_since(UNIX_EPOCH)
    .unwrap()
    .as_millis() as u64;
  index["entries"]
    .as_object_mut()
    .ok_or_else(|| io::Error::other("entries is not an object"))?
    .insert(key.to_owned(), json!({ "at": at }));
  let mut text = serde_json::to_vec(&index)?;
  text.push(b'\n');

  let dir = path.parent().unwrap();
  let name = path.file_name().unwrap().to_string_lossy();
  let tmp = dir.join(format!(
    ".{name}.{}.{}.tmp",
    std::process::id(),
    TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
  ));
  let mut f = OpenOptions::new()
    .write(true)
    .create_new(true)
    .mode(0o666)
    .open(&tmp)?;
  f.write_all(&text)?;
  if durable {
    f.sync_all()?;
  }
  drop(f);
  fs::rename(&tmp, path)?;
  if durable {
    File::open(dir)?.sync_all()?;
  }
  Ok(())
}

/// Runs `updates` updates from one caller; returns each one's latency in microseconds, from the
/// request for the lock to the end of the save (what a JS caller's awaited promise measures).
fn caller(
  path: &Path,
  proc_index: usize,
  caller: usize,
  updates: usize,
  durable: bool,
) -> io::Result<Vec<f64>> {
  // Like every party to the protocol: create the sidecar if missing, never truncate it.
  let lock = OpenOptions::new()
    .read(true)
    .write(true)
    .create(true)
    .truncate(false)
    .mode(0o666)
    .open(sidecar(path))?;
  let mut lat = Vec::with_capacity(updates);
  for i in 0..updates {
    let started = Instant::now();
    flock(&lock, libc::LOCK_EX)?;
    let done = update(path, &format!("{proc_index}-{caller}-{i}"), durable);
    flock(&lock, libc::LOCK_UN)?;
    done?;
    lat.push(started.elapsed().as_nanos() as f64 / 1e3);
  }
  Ok(lat)
}

fn run(
  path: &Path,
  callers: usize,
  updates: usize,
  durable: bool,
  proc_index: usize,
) -> (Vec<f64>, usize) {
  let threads: Vec<_> = (0..callers)
    .map(|c| {
      let path = path.to_path_buf();
      std::thread::spawn(move || caller(&path, proc_index, c, updates, durable))
    })
    .collect();
  let mut lat = Vec::new();
  let mut errors = 0;
  for t in threads {
    match t.join().expect("caller thread panicked") {
      Ok(l) => lat.extend(l),
      Err(e) => {
        eprintln!("native bound: {e}");
        errors += 1;
      }
    }
  }
  (lat, errors)
}

fn main() {
  let args: Vec<String> = std::env::args().skip(1).collect();
  if args.len() != 7 {
    eprintln!("usage: index-lock-bench-native <path> <callers> <updates> <fsync 0|1> <proc-index> <warm-path> <warm-updates>");
    std::process::exit(2);
  }
  let num = |i: usize| -> usize { args[i].parse().expect("numeric argument") };
  let (path, callers, updates, durable, proc_index) = (
    PathBuf::from(&args[0]),
    num(1),
    num(2),
    args[3] == "1",
    num(4),
  );
  let (warm_path, warm_updates) = (PathBuf::from(&args[5]), num(6));

  // Warm the page cache and the allocator the way the JS children warm their JIT.
  run(&warm_path, 1, warm_updates, durable, proc_index);
  println!("ready");
  io::stdout().flush().unwrap();
  let mut line = String::new();
  if io::stdin().lock().read_line(&mut line).unwrap_or(0) == 0 {
    // The orchestrator is gone (end of input before the start signal): nobody to run for.
    std::process::exit(1);
  }

  let (lat, errors) = run(&path, callers, updates, durable, proc_index);
  let finish = monotonic_ns();
  println!(
    "{}",
    json!({ "latenciesUs": lat, "finishNs": finish.to_string(), "errors": errors, "pid": std::process::id() })
  );
}
