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
//!
//! Two more modes give bench/run.js the physical floors its targets are stated against (issue 18):
//!
//! - `floor-lock <path> <n> <warm-up>`: the hot path of an uncontended `withIndexLock` round trip with
//!   nothing around it: `<path>.lock` opened once, then n times flock(LOCK_EX|LOCK_NB), fstat
//!   (std's `metadata`, the call the library makes: statx on Linux), flock(LOCK_UN). Every
//!   iteration is timed; prints one JSON line { n, medianNs, meanNs, p99Ns, samplesUs }.
//! - `floor-handover <path> <hand-overs> <hold-us>`: two processes (this one and a peer it spawns)
//!   hand a flock on `<path>.lock` back and forth, each blocked in flock(LOCK_EX) while the other
//!   releases: the kernel's wake-up of a blocked waiter in another process. Timed as
//!   bench/handover-child.js times index-lock's hand-over; prints one JSON line { latenciesUs }.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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
  let lock = open_sidecar(path)?;
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
  match args.first().map(String::as_str) {
    Some("floor-lock") => floor_lock(&args[1..]),
    Some("floor-handover") => floor_handover(&args[1..], true),
    Some("floor-handover-peer") => floor_handover(&args[1..], false),
    _ => rmw_main(&args),
  }
}

/// Like every party to the protocol: create the sidecar if missing, never truncate it.
fn open_sidecar(path: &Path) -> io::Result<File> {
  OpenOptions::new()
    .read(true)
    .write(true)
    .create(true)
    .truncate(false)
    .mode(0o666)
    .open(sidecar(path))
}

fn floor_args(args: &[String], usage: &str) -> (PathBuf, usize, usize) {
  if args.len() != 3 {
    eprintln!("usage: index-lock-bench-native {usage}");
    std::process::exit(2);
  }
  let num = |i: usize| -> usize { args[i].parse().expect("numeric argument") };
  (PathBuf::from(&args[0]), num(1), num(2))
}

/// `floor-lock <path> <n> <warm-up>`: the three syscalls of an uncontended round trip on a kept
/// descriptor, as src/lock.rs relocks a released sidecar (try-lock, check it still has a name,
/// unlock), and nothing else.
fn floor_lock(args: &[String]) {
  let (path, n, warm_up) = floor_args(args, "floor-lock <path> <n> <warm-up>");
  let lock = open_sidecar(&path).expect("open the sidecar");
  let round_trip = || -> io::Result<()> {
    flock(&lock, libc::LOCK_EX | libc::LOCK_NB)?;
    let named = lock.metadata()?.nlink() > 0;
    flock(&lock, libc::LOCK_UN)?;
    // The library acts on the answer; so does this loop, so the call cannot be dropped.
    if named {
      Ok(())
    } else {
      Err(io::Error::other("the sidecar lost its name"))
    }
  };
  for _ in 0..warm_up {
    round_trip().expect("floor-lock warm-up");
  }
  let mut ns = Vec::with_capacity(n);
  let all = Instant::now();
  for _ in 0..n {
    let started = Instant::now();
    round_trip().expect("floor-lock");
    ns.push(started.elapsed().as_nanos() as u64);
  }
  let total = all.elapsed().as_nanos() as f64;
  let samples_us: Vec<f64> = ns.iter().map(|&x| x as f64 / 1e3).collect();
  ns.sort_unstable();
  // The bench's quantile: the smallest sample with at least q of them at or below it.
  let q = |q: f64| ns[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
  println!(
    "{}",
    json!({ "n": n, "medianNs": q(0.5), "meanNs": total / n as f64, "p99Ns": q(0.99), "samplesUs": samples_us })
  );
}

/// `floor-handover <path> <hand-overs> <hold-us>`: the first process takes the lock, spawns its
/// peer (`floor-handover-peer`, same arguments) and the two take turns over a pair of pipes, as
/// bench/run.js makes two handover-child.js processes take turns:
///
/// - the waiter says "about to block" (a line `0`), then blocks in flock(LOCK_EX);
/// - the holder, once that line has come, waits `hold-us` more (so the waiter is parked in the
///   kernel when the unlock comes), takes its release time, unlocks and sends that time;
/// - the waiter returns from flock, takes its entry time, reads the release time: one hand-over;
/// - the new holder says "entered" (`0`), and only then does the old one say "about to block"
///   and ask again. flock hands nothing over: a lock released and at once asked for again by
///   its releaser can be taken by it before the woken waiter runs, so asking early would barge.
///
/// Times are CLOCK_MONOTONIC, as process.hrtime.bigint() in handover-child.js: from the holder's
/// last instant inside the lock to the waiter's first instant after its flock returned. Every
/// line is written and read outside that interval, as the JS children's IPC messages are.
fn floor_handover(args: &[String], first: bool) {
  let usage = "floor-handover <path> <hand-overs> <hold-us>";
  let (path, rounds, hold_us) = floor_args(args, usage);
  let lock = open_sidecar(&path).expect("open the sidecar");
  let hold = std::time::Duration::from_micros(hold_us as u64);
  let (mut peer, mut tx, mut rx): (
    Option<std::process::Child>,
    Box<dyn Write>,
    Box<dyn BufRead>,
  ) = if first {
    // Held before the peer exists: its first flock must find the lock taken.
    flock(&lock, libc::LOCK_EX).expect("flock");
    let mut child = std::process::Command::new(std::env::current_exe().expect("own path"))
      .arg("floor-handover-peer")
      .args(args)
      .stdin(std::process::Stdio::piped())
      .stdout(std::process::Stdio::piped())
      .spawn()
      .expect("spawn the peer");
    let tx = Box::new(child.stdin.take().unwrap());
    let rx = Box::new(io::BufReader::new(child.stdout.take().unwrap()));
    (Some(child), tx, rx)
  } else {
    (None, Box::new(io::stdout()), Box::new(io::stdin().lock()))
  };
  let recv =
    |rx: &mut Box<dyn BufRead>| -> u128 { read_line(rx).parse().expect("a time from the peer") };

  let mut latencies_us = Vec::new();
  let mut holding = first;
  if first {
    recv(&mut rx); // the peer is about to block
  } else {
    send_line(&mut tx, "0"); // about to block
  }
  let mut done = 0;
  while done < rounds {
    if holding {
      std::thread::sleep(hold);
      let released = monotonic_ns();
      flock(&lock, libc::LOCK_UN).expect("flock(LOCK_UN)");
      send_line(&mut tx, &released.to_string());
      holding = false;
      done += 1;
      if done < rounds {
        recv(&mut rx); // the peer entered
        send_line(&mut tx, "0"); // about to block
      }
    } else {
      flock(&lock, libc::LOCK_EX).expect("flock(LOCK_EX)");
      let entered = monotonic_ns();
      let released = recv(&mut rx);
      latencies_us.push((entered as f64 - released as f64) / 1e3);
      holding = true;
      done += 1;
      if done < rounds {
        send_line(&mut tx, "0"); // entered
        recv(&mut rx); // the peer is about to block
      }
    }
  }

  if let Some(child) = peer.as_mut() {
    // The peer's own waits, then its exit: one JSON line with both processes' hand-overs.
    let theirs: Vec<f64> = serde_json::from_str(&read_line(&mut rx)).expect("the peer's result");
    latencies_us.extend(theirs);
    child.wait().expect("the peer's exit");
    println!("{}", json!({ "latenciesUs": latencies_us }));
  } else {
    send_line(&mut tx, &serde_json::to_string(&latencies_us).unwrap());
  }
}

fn send_line(tx: &mut dyn Write, line: &str) {
  writeln!(tx, "{line}")
    .and_then(|()| tx.flush())
    .expect("write to the peer");
}

fn read_line(rx: &mut dyn BufRead) -> String {
  let mut line = String::new();
  if rx.read_line(&mut line).expect("read from the peer") == 0 {
    panic!("the peer is gone");
  }
  line.trim().to_owned()
}

fn rmw_main(args: &[String]) {
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
