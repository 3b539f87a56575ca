//! index-lock's native core: the napi bindings over the lock registry and atomic file IO.

#![deny(clippy::all)]

pub mod atomic;
pub mod batch;
pub mod changes;
pub mod engine;
pub mod error;
pub mod fstype;
pub mod json;
pub mod lock;
pub mod path;
pub mod registry;
pub mod spare;
pub mod sweep;
pub mod sys;
#[cfg(test)]
mod testdir;

use std::path::Path;
use std::sync::Arc;

use napi::bindgen_prelude::{
  AsyncTask, Buffer, BufferSlice, Either, Either3, Null, Object, Uint8Array,
};
use napi::Task;
use napi::{Env, Result};
use napi_derive::napi;

use crate::lock::Mode;
use crate::registry::Grant;

fn mode_of(exclusive: bool) -> Mode {
  if exclusive {
    Mode::Exclusive
  } else {
    Mode::Shared
  }
}

/// A held lock. Releasing is idempotent; a handle that is garbage-collected or whose worker
/// thread terminates releases on drop.
#[napi]
pub struct NativeLock {
  /// Shared with a write that releases the lock when it is done (`atomicWriteRelease`).
  grant: Arc<Grant>,
}

impl NativeLock {
  fn new(grant: Grant) -> Self {
    NativeLock {
      grant: Arc::new(grant),
    }
  }
}

#[napi]
impl NativeLock {
  #[napi(getter)]
  pub fn exclusive(&self) -> bool {
    self.grant.mode() == Mode::Exclusive
  }

  #[napi(getter)]
  pub fn released(&self) -> bool {
    self.grant.is_released()
  }

  #[napi(getter)]
  pub fn key(&self) -> String {
    self.grant.key().to_string_lossy().into_owned()
  }

  #[napi]
  pub fn release(&self) {
    self.grant.release();
  }
}

/// The lock key of the file `path` names: its canonical absolute path, case-folded on a
/// case-insensitive volume (Windows; macOS per volume), so that every spelling of one file gives
/// one key. JS orders sets, keeps holds and batches by this key and passes it to every lock call
/// here; file IO goes through the caller's own path instead, so a save never renames the file to
/// the folded spelling.
#[napi]
pub fn resolve_path(path: String) -> Result<String> {
  Ok(lock_key(&path)?.to_string_lossy().into_owned())
}

/// A path resolved for a locked update: `key` as `resolvePath` gives it, and `path`, the same
/// file unfolded (the caller's spelling of the last component on a case-insensitive volume), which
/// the update reads and writes: the file it locked, whatever symlink or working directory changes
/// while it waits.
#[napi(object)]
pub struct ResolvedTarget {
  pub key: String,
  pub path: String,
}

#[napi]
pub fn resolve_target(path: String) -> Result<ResolvedTarget> {
  // ESTALE: on NFS (and FUSE) another host's or process's rename can leave the lookup a stale
  // handle for an instant; resolving again finds the new file.
  let resolved = atomic::retry_stale(|| path::resolve(&path))?;
  let key = key_of(&resolved);
  Ok(ResolvedTarget {
    key: key.to_string_lossy().into_owned(),
    path: resolved.to_string_lossy().into_owned(),
  })
}

/// The process's working directory as the OS has it (what a relative path in any file call
/// resolves against), not Node's `process.cwd()`, which keeps the spelling of the last chdir.
#[napi]
pub fn current_dir() -> Result<String> {
  std::env::current_dir()
    .map(|d| d.to_string_lossy().into_owned())
    .map_err(|e| error::Error::io(e, "getcwd", Path::new(".")).into())
}

fn lock_key(path: &str) -> crate::error::Result<std::path::PathBuf> {
  Ok(key_of(&atomic::retry_stale(|| path::resolve(path))?))
}

/// The lock key of a resolved path: folded on a case-insensitive volume.
fn key_of(resolved: &Path) -> std::path::PathBuf {
  sys::fold_key(resolved).unwrap_or_else(|| resolved.to_path_buf())
}

/// The sidecar lock file of an already resolved `key` (`<key>.lock`, or the hashed name of a
/// long file name; see `path::sidecar`).
#[napi]
pub fn sidecar_path(key: String) -> String {
  path::sidecar(Path::new(&key))
    .to_string_lossy()
    .into_owned()
}

/// Takes the lock of an already resolved `key` if that needs no waiting and jumps no queue.
#[napi]
pub fn try_lock(key: String, exclusive: bool) -> Result<Option<NativeLock>> {
  let lock = registry::try_enter(Path::new(&key), mode_of(exclusive))?.map(NativeLock::new);
  batch::close(&key, None);
  Ok(lock)
}

/// Identifies a queued request for `cancelWait`; unique across the process's worker threads.
#[napi]
pub fn next_wait_id() -> i64 {
  registry::next_id() as i64
}

type LockResolver = Box<dyn FnOnce(Env) -> Result<NativeLock>>;

/// Queues a request for `key` (synchronously, so JS call order is queue order) and returns a
/// promise of the handle. The wait happens off the JS thread and off libuv's threadpool.
#[napi(ts_return_type = "Promise<NativeLock>")]
pub fn lock(env: &Env, key: String, exclusive: bool, wait_id: i64) -> Result<Object<'_>> {
  let (deferred, promise) = env.create_deferred::<NativeLock, LockResolver>()?;
  registry::enter(
    Path::new(&key),
    mode_of(exclusive),
    wait_id as u64,
    Box::new(move |outcome| match outcome {
      // If the promise can no longer be settled (its worker is gone), the resolver is dropped
      // unrun and the grant inside it releases the lock.
      Ok(grant) => deferred.resolve(Box::new(move |_| Ok(NativeLock::new(grant)))),
      Err(e) => deferred.reject(e.into()),
    }),
  );
  batch::close(&key, None);
  Ok(promise)
}

/// Withdraws a queued request; its promise rejects with `ECANCELED`. False when it was granted
/// (or failed) already.
#[napi]
pub fn cancel_wait(key: String, wait_id: i64) -> bool {
  registry::cancel(Path::new(&key), wait_id as u64)
}

/// A process holding a lock.
#[napi(object)]
pub struct LockHolder {
  pub pid: u32,
  #[napi(ts_type = "'exclusive' | 'shared'")]
  pub mode: String,
}

/// The processes holding the OS lock of `key`, from /proc/locks (empty where the OS cannot tell).
#[napi]
pub fn lock_holders(key: String) -> Vec<LockHolder> {
  registry::holders(Path::new(&key))
    .into_iter()
    .map(holder_of)
    .collect()
}

/// `lockHolders` on libuv's threadpool: /proc/locks lists every lock on the host, and reading
/// it takes tens of milliseconds on a host with many, which a timeout must not cost the JS thread.
pub struct HoldersTask {
  key: String,
}

impl Task for HoldersTask {
  type Output = Vec<LockHolder>;
  type JsValue = Vec<LockHolder>;

  fn compute(&mut self) -> Result<Vec<LockHolder>> {
    Ok(lock_holders(std::mem::take(&mut self.key)))
  }

  fn resolve(&mut self, _env: Env, output: Vec<LockHolder>) -> Result<Vec<LockHolder>> {
    Ok(output)
  }
}

#[napi(ts_return_type = "Promise<Array<LockHolder>>")]
pub fn lock_holders_async(key: String) -> AsyncTask<HoldersTask> {
  AsyncTask::new(HoldersTask { key })
}

/// Who holds the OS lock of `key` where `lockHolders` named nobody (for `inspect()`), told
/// outside the registry (no queue joined, no temp file swept) and never by an exclusive try, so
/// that no request of another process fails for it (see `lock::probe`): `'free'` (no holder
/// seen), `'shared'` or `'exclusive'`. Creates no sidecar: a missing one is `'free'`.
#[napi(ts_return_type = "'free' | 'shared' | 'exclusive'")]
pub fn probe_lock(key: String) -> Result<String> {
  let sidecar = path::sidecar(Path::new(&key));
  Ok(match lock::probe(&sidecar)? {
    None => "free".into(),
    Some(Mode::Shared) => "shared".into(),
    Some(Mode::Exclusive) => "exclusive".into(),
  })
}

/// The processes blocked waiting for the OS lock of `key` and the mode each asks for, from
/// /proc/locks; null where the OS cannot tell (macOS, Windows).
#[napi]
pub fn lock_waiters(key: String) -> Option<Vec<LockHolder>> {
  registry::waiters(Path::new(&key)).map(|w| w.into_iter().map(holder_of).collect())
}

fn holder_of(h: lock::Holder) -> LockHolder {
  LockHolder {
    pid: h.pid,
    mode: match h.mode {
      Mode::Exclusive => "exclusive".into(),
      Mode::Shared => "shared".into(),
    },
  }
}

/// Removes the orphaned temp files of the data file `key` (see `sweep::sweep`); returns their
/// names. Needs no lock: a file is only removed when no writer holds its lock. Rejects with an
/// aggregate (`Error::Sweep`) when any removal failed.
#[napi]
pub async fn sweep_temps(key: String) -> Result<Vec<String>> {
  let swept = tokio::task::spawn_blocking({
    let key = key.clone();
    move || sweep::sweep(Path::new(&key))
  })
  .await
  .map_err(|e| napi::Error::from_reason(e.to_string()))??;
  if swept.errors.is_empty() {
    return Ok(swept.removed);
  }
  Err(
    error::Error::Sweep {
      path: key.into(),
      removed: swept.removed,
      errors: swept.errors,
    }
    .into(),
  )
}

/// A temp file beside a data file.
#[napi(object)]
pub struct TempFileInfo {
  pub name: String,
  /// The pid its name carries, in its writer's pid namespace (informative only).
  pub pid: u32,
  /// Its writer holds its lock (or that cannot be told): a save is under way, `sweep` keeps it.
  pub alive: bool,
  pub age_ms: f64,
  /// No writer holds its lock: left behind by a writer that died mid-save; `sweep` removes it.
  pub orphaned: bool,
}

/// index-lock's temp files beside the data file `key`.
#[napi]
pub fn temp_files(key: String) -> Result<Vec<TempFileInfo>> {
  Ok(
    sweep::temp_files(Path::new(&key))?
      .into_iter()
      .map(|t| TempFileInfo {
        orphaned: t.orphaned(),
        name: t.name,
        pid: t.pid,
        alive: t.alive,
        age_ms: t.age.as_secs_f64() * 1000.0,
      })
      .collect(),
  )
}

/// The filesystem holding a directory, and whether flock can be trusted there.
#[napi(object)]
pub struct FilesystemInfo {
  /// Type name (mountinfo's, e.g. `ext4`, `nfs4`, `fuse.sshfs`).
  pub fstype: String,
  /// statfs f_type.
  pub magic: f64,
  pub options: String,
  pub mount_point: Option<String>,
  #[napi(ts_type = "'local' | 'distributed' | 'unsafe'")]
  pub coherence: String,
  pub reason: String,
}

#[napi]
pub fn filesystem_info(dir: String) -> Result<FilesystemInfo> {
  Ok(filesystem_info_of(&dir)?)
}

/// `filesystemInfo` on libuv's threadpool: statfs can wait as long as a network or FUSE server
/// takes to answer, which the JS thread must never do.
pub struct FilesystemInfoTask {
  dir: String,
}

impl Task for FilesystemInfoTask {
  type Output = FilesystemInfo;
  type JsValue = FilesystemInfo;

  fn compute(&mut self) -> Result<FilesystemInfo> {
    Ok(filesystem_info_of(&self.dir)?)
  }

  fn resolve(&mut self, _env: Env, output: FilesystemInfo) -> Result<FilesystemInfo> {
    Ok(output)
  }
}

#[napi(ts_return_type = "Promise<FilesystemInfo>")]
pub fn filesystem_info_async(dir: String) -> AsyncTask<FilesystemInfoTask> {
  AsyncTask::new(FilesystemInfoTask { dir })
}

fn filesystem_info_of(dir: &str) -> error::Result<FilesystemInfo> {
  let info = fstype::identify(Path::new(dir))?;
  Ok(FilesystemInfo {
    fstype: info.fstype,
    magic: info.magic as f64,
    options: info.options,
    mount_point: info.mount_point.map(|p| p.to_string_lossy().into_owned()),
    coherence: info.coherence.as_str().into(),
    reason: info.reason.into(),
  })
}

/// The platform backend this build uses (see src/sys): `linux` (flock, /proc/locks, mountinfo, a
/// signal-interrupted wait), `generic-unix` (macOS and other Unixes, or Linux built with the
/// `generic-unix` feature: no holder list, a polling wait) or `windows`.
#[napi(ts_return_type = "'linux' | 'generic-unix' | 'windows'")]
pub fn backend() -> String {
  sys::BACKEND.into()
}

/// Whether this build has the test-only pause points.
#[napi]
pub fn fault_injection() -> bool {
  cfg!(feature = "fault-injection")
}

/// Paths with lock activity in this process.
#[napi]
pub fn active_paths() -> u32 {
  registry::active_paths() as u32
}

/// The bytes of `data` copied on the JS thread, for a write that runs elsewhere (see `WriteTask`).
fn owned_bytes(data: Either<String, Uint8Array>) -> Vec<u8> {
  match data {
    Either::A(s) => s.into_bytes(),
    Either::B(b) => b.to_vec(),
  }
}

fn bytes_of(data: &Either<String, Uint8Array>) -> &[u8] {
  match data {
    Either::A(s) => s.as_bytes(),
    Either::B(b) => b,
  }
}

/// `atomic::write` on libuv's threadpool, like Node's own fs calls: it waits for the disk, never
/// for a lock, and a pool hand-off costs a fraction of a tokio blocking-pool round trip.
pub struct WriteTask {
  path: String,
  /// Owned: JS memory may not be read off the JS thread. A typed array's buffer can be
  /// transferred to a worker (detached here) and freed while the write runs.
  data: Vec<u8>,
  fsync: bool,
  mode: Option<u32>,
  /// Released as soon as the write has succeeded (`atomicWriteRelease`).
  release: Option<Arc<Grant>>,
  /// The path is an update's file as resolved at its call: no symlink there is followed.
  pinned: bool,
}

impl Task for WriteTask {
  type Output = ();
  type JsValue = ();

  fn compute(&mut self) -> Result<()> {
    atomic::write(&self.path, &self.data, self.fsync, self.mode, self.pinned)?;
    if let Some(grant) = self.release.take() {
      grant.release();
    }
    Ok(())
  }

  fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
    Ok(())
  }
}

/// Atomically replaces the file at `path` (see `atomic::write`). The bytes are copied here, on
/// the JS thread, before the write starts.
#[napi(ts_return_type = "Promise<void>")]
pub fn atomic_write(
  path: String,
  data: Either<String, Uint8Array>,
  fsync: bool,
  mode: Option<u32>,
  pinned: Option<bool>,
) -> AsyncTask<WriteTask> {
  AsyncTask::new(WriteTask {
    path,
    data: owned_bytes(data),
    fsync,
    mode,
    release: None,
    pinned: pinned.unwrap_or(false),
  })
}

/// `atomicWrite` by the holder of `lock`, which is released on the writing thread the moment
/// the write has succeeded, before the promise settles on the JS thread: the next holder (in
/// this process or another) does not wait for that hop. A failed write keeps the lock, so the
/// caller can still act under it.
#[napi(ts_return_type = "Promise<void>")]
pub fn atomic_write_release(
  path: String,
  data: Either<String, Uint8Array>,
  fsync: bool,
  lock: &NativeLock,
) -> AsyncTask<WriteTask> {
  AsyncTask::new(WriteTask {
    path,
    data: owned_bytes(data),
    fsync,
    mode: None,
    release: Some(lock.grant.clone()),
    // Only an update writes this way, on the file it resolved at its call.
    pinned: true,
  })
}

/// `atomic::read` on libuv's threadpool (see `WriteTask`).
pub struct ReadTask {
  path: String,
  pinned: bool,
}

impl Task for ReadTask {
  type Output = Option<Vec<u8>>;
  type JsValue = Option<Buffer>;

  fn compute(&mut self) -> Result<Self::Output> {
    Ok(atomic::read(&self.path, self.pinned)?)
  }

  fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
    Ok(output.map(Buffer::from))
  }
}

/// The bytes of `path`, or null when it does not exist. `pinned`: `path` is an update's file as
/// resolved at its call, and a symlink there is refused (`ELOOP`), not followed.
#[napi(ts_return_type = "Promise<Buffer | null>")]
pub fn read_file(path: String, pinned: Option<bool>) -> AsyncTask<ReadTask> {
  AsyncTask::new(ReadTask {
    path,
    pinned: pinned.unwrap_or(false),
  })
}

/// The bytes of `path` if they can be read on this (the JS) thread without waiting for a disk or
/// a network (see `atomic::read_cached`): a Buffer, or null when there is no such file;
/// undefined when `readFile` must read it on the threadpool (it may also be an error to report).
#[napi(ts_return_type = "Buffer | null | undefined")]
pub fn read_file_cached(
  env: &Env,
  path: String,
  pinned: Option<bool>,
) -> Result<Either3<BufferSlice<'_>, Null, ()>> {
  Ok(match atomic::read_cached(&path, pinned.unwrap_or(false)) {
    sys::Cached::Bytes(b) => Either3::A(BufferSlice::copy_from(env, b)?),
    sys::Cached::Missing => Either3::B(Null),
    sys::Cached::WouldBlock => Either3::C(()),
  })
}

/// Where a JSON file stops being valid, for error messages (V8's parser does not always say).
/// Offsets and columns count bytes of the file, a BOM included; lines and columns are 1-based.
#[napi(object)]
pub struct JsonErrorPosition {
  pub line: u32,
  pub column: u32,
  pub offset: u32,
  pub reason: String,
}

/// The first error in a JSON file's bytes (invalid UTF-8 first, then the grammar, as `JSON.parse`
/// decides it); null when it is valid.
#[napi]
pub fn json_error_position(data: Uint8Array) -> Option<JsonErrorPosition> {
  let at = json::error_position(&data)?;
  let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
  Some(JsonErrorPosition {
    line: clamp(at.line),
    column: clamp(at.column),
    offset: clamp(at.offset),
    reason: at.reason,
  })
}

/// Blocks this thread until the lock of `key` is granted; null after `timeoutMs` (absent: wait
/// forever). For synchronous CLI code: throws `ELOCKDEADLOCK`/`ELOCKUPGRADE` instead of hanging
/// when this thread already holds or awaits the path.
#[napi]
pub fn lock_sync(
  key: String,
  exclusive: bool,
  timeout_ms: Option<f64>,
) -> Result<Option<NativeLock>> {
  let timeout = timeout_ms.map(|ms| std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0));
  let lock = registry::enter_blocking(Path::new(&key), mode_of(exclusive), timeout)?;
  batch::close(&key, None);
  Ok(lock.map(NativeLock::new))
}

/// One caller's JSON change, as JS passes it (checked by `checkChange` at the call).
#[napi(object)]
pub struct ChangeCall {
  #[napi(ts_type = "'patch' | 'merge'")]
  pub kind: String,
  /// The patch (an array of operations) or the merge patch, as JSON text.
  pub change: String,
  /// The call's `default`, as JSON text.
  pub default: Option<String>,
  /// Its place in the process-wide call order (`changeSeq`), among riders from other threads.
  pub seq: Option<i64>,
}

impl From<ChangeCall> for batch::Text {
  fn from(c: ChangeCall) -> Self {
    batch::Text {
      kind: c.kind,
      change: c.change,
      default: c.default,
    }
  }
}

/// Where a call's outcome goes: back to JS in the task's answer, or to a rider's own promise.
enum Destination {
  Here(usize),
  Rider(batch::Answer),
}

/// Parses a call's texts into what the engine applies (on an engine thread: they may nest deep).
fn engine_call(c: &batch::Text) -> error::Result<changes::Call> {
  Ok(changes::Call {
    change: changes::parse_change(&c.kind, &c.change)?,
    default: match &c.default {
      Some(text) => Some(changes::parse_value(text, "options.default")?),
      None => None,
    },
  })
}

/// A batch of JSON changes to one file, as one engine job: every call (this thread's and the
/// riders from other threads) in call order, one read, one write (see `changes::run`).
struct ChangesJob {
  path: String,
  calls: Vec<(u64, batch::Text, Destination)>,
  indent: String,
  fsync: bool,
  release: Option<Arc<Grant>>,
}

impl ChangesJob {
  fn new(path: String, calls: Vec<ChangeCall>, indent: String, fsync: bool) -> Self {
    let calls = calls
      .into_iter()
      .enumerate()
      .map(|(i, c)| {
        (
          c.seq.unwrap_or(0).max(0) as u64,
          c.into(),
          Destination::Here(i),
        )
      })
      .collect();
    ChangesJob {
      path,
      calls,
      indent,
      fsync,
      release: None,
    }
  }

  /// Runs on an engine thread; answers the riders, returns this thread's outcomes, and frees the
  /// document only after both.
  fn run(mut self) -> (ChangesDone, changes::Leftover) {
    let size = self.calls.len() as u32;
    if self.calls.is_empty() {
      // Everyone left while the lock was on its way: nothing to read or write.
      if let Some(g) = self.release.take() {
        g.release();
      }
      return (ChangesDone::default(), changes::Leftover::default());
    }
    self.calls.sort_by_key(|(seq, _, _)| *seq);
    let mut parsed = Vec::with_capacity(self.calls.len());
    let mut outcomes: Vec<Option<Option<String>>> = Vec::with_capacity(self.calls.len());
    for (_, text, _) in &self.calls {
      match engine_call(text) {
        Ok(call) => {
          parsed.push(call);
          outcomes.push(None);
        }
        Err(e) => outcomes.push(Some(Some(e.to_json()))),
      }
    }
    let (applied, leftover) = changes::run(
      Path::new(&self.path),
      &parsed,
      &self.indent,
      self.fsync,
      self.release.take(),
    );
    let mut applied = applied.into_iter();
    let mut here = Vec::new();
    for ((_, _, to), outcome) in self.calls.into_iter().zip(outcomes) {
      let outcome = outcome.unwrap_or_else(|| applied.next().flatten());
      match to {
        Destination::Here(i) => here.push((i, outcome)),
        Destination::Rider(answer) => answer.send(batch::Reply::Done(outcome, size)),
      }
    }
    here.sort_by_key(|(i, _)| *i);
    let outcomes = here.into_iter().map(|(_, o)| o).collect();
    (ChangesDone { outcomes, size }, leftover)
  }
}

/// How a batch's calls of this thread ended (null: done, else the error as JSON), and how many
/// calls the batch carried in all (riders from other threads included).
#[napi(object)]
#[derive(Default)]
pub struct ChangesDone {
  pub outcomes: Vec<Option<String>>,
  pub size: u32,
}

/// Runs `f` on an engine thread, which settles the promise itself: no hop through libuv's
/// threadpool, whose thread would only sit waiting for the engine. What `f` leaves behind is
/// freed after the promise is settled.
fn engine_promise<T, L>(
  env: &Env,
  f: impl FnOnce() -> (error::Result<T>, L) + Send + 'static,
) -> Result<Object<'_>>
where
  T: napi::bindgen_prelude::ToNapiValue + Send + 'static,
{
  engine::start()?;
  // `f` runs even if no promise can be made (its thread's environment is ending): a batch's
  // riders from other threads still get their answers, and its lock is used, not dropped.
  let (deferred, promise) = match env.create_deferred::<T, Box<dyn FnOnce(Env) -> Result<T>>>() {
    Ok((deferred, promise)) => (Some(deferred), Ok(promise)),
    Err(e) => (None, Err(e)),
  };
  engine::submit(move || {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let Some(deferred) = deferred else {
      return;
    };
    match outcome {
      Ok((Ok(value), leftover)) => {
        deferred.resolve(Box::new(move |_| Ok(value)));
        drop(leftover);
      }
      Ok((Err(e), _)) => deferred.reject(e.into()),
      Err(_) => deferred.reject(napi::Error::from_reason(
        "index-lock: the JSON engine failed unexpectedly (a bug: please report it)",
      )),
    }
  });
  promise
}

fn changes_promise(env: &Env, job: ChangesJob) -> Result<Object<'_>> {
  engine_promise(env, move || {
    let (done, leftover) = job.run();
    (Ok(done), leftover)
  })
}

/// Applies `calls` in order to the file `path` (as resolved at the calls) under a lock the caller
/// holds, writing once; resolves with each call's outcome (null, or its error as JSON).
#[napi(ts_return_type = "Promise<ChangesDone>")]
pub fn apply_changes(
  env: &Env,
  path: String,
  calls: Vec<ChangeCall>,
  indent: String,
  fsync: bool,
) -> Result<Object<'_>> {
  changes_promise(env, ChangesJob::new(path, calls, indent, fsync))
}

/// `applyChanges` by the holder of `lock` (or of the lock `changesQueue` holds for `batch`),
/// released on the engine thread the moment the write has succeeded (see `atomicWriteRelease`),
/// else when the job ends. `batch`: the id `changesOpen` gave the batch, whose riders from other
/// threads go with it.
#[napi(ts_return_type = "Promise<ChangesDone>")]
pub fn apply_changes_release<'e>(
  env: &'e Env,
  path: String,
  calls: Vec<ChangeCall>,
  indent: String,
  fsync: bool,
  lock: Option<&NativeLock>,
  batch: Option<i64>,
) -> Result<Object<'e>> {
  let (riders, held) = batch.map(|id| batch::take(id as u64)).unwrap_or_default();
  // The lock: the caller's (a free lock it took), or the one held for the batch (`changesQueue`).
  let release = lock.map(|l| l.grant.clone()).or(held);
  let refusal = match (&release, engine::start()) {
    (_, Err(e)) => Some(e),
    (None, _) if !calls.is_empty() || !riders.is_empty() => Some(error::Error::io(
      std::io::Error::other("the batch's lock is not held"),
      "flock",
      Path::new(&path),
    )),
    _ => None,
  };
  if let Some(e) = refusal {
    let text = e.to_json();
    for r in riders {
      let (_, _, answer) = r.into_parts();
      answer.send(batch::Reply::Done(Some(text.clone()), 0));
    }
    return Err(e.into());
  }
  let mut job = ChangesJob::new(path, calls, indent, fsync);
  job.release = release;
  job.calls.extend(riders.into_iter().map(|r| {
    let (seq, text, answer) = r.into_parts();
    (seq, text, Destination::Rider(answer))
  }));
  changes_promise(env, job)
}

/// `applyChanges` on the calling thread (the engine still on a thread of its own).
#[napi]
pub fn apply_changes_sync(
  path: String,
  calls: Vec<ChangeCall>,
  indent: String,
  fsync: bool,
) -> Result<ChangesDone> {
  engine::start()?;
  let job = ChangesJob::new(path, calls, indent, fsync);
  Ok(engine::run_then(move || job.run()))
}

/// The next number in the process-wide order of change calls.
#[napi]
pub fn change_seq() -> i64 {
  batch::seq() as i64
}

/// Registers a batch this thread is about to request the lock of `key` for (`changesTryLock`,
/// else `changesQueue`); calls of other threads with the same file and write options may ride
/// with it from then until it runs. Returns its id, for those, `applyChangesRelease` and
/// `changesAbandon`.
#[napi]
pub fn changes_open(
  env: &Env,
  key: String,
  io: String,
  indent: String,
  fsync: bool,
) -> Result<i64> {
  watch_thread_end(env)?;
  Ok(batch::open(key, (io, indent, fsync)) as i64)
}

/// The batch `batchId`'s lock of `key` if free now (as `tryLock`), held for the batch
/// (`applyChangesRelease` takes it): true if taken.
#[napi]
pub fn changes_try_lock(key: String, batch_id: i64) -> Result<bool> {
  let id = batch_id as u64;
  let taken = registry::try_enter(Path::new(&key), Mode::Exclusive);
  batch::close(&key, Some(id));
  let Some(grant) = taken? else {
    return Ok(false);
  };
  batch::hold(id, grant);
  // Its riders may have to be run by the engine without this thread.
  if engine::start().is_ok() {
    batch::arm(id);
  }
  Ok(true)
}

/// The batch `id` will not run (its calls all left, or its wait failed). Riders go home if
/// `force`; else a batch with riders is kept, to run for them (false).
#[napi]
pub fn changes_abandon(id: i64, force: bool) -> bool {
  batch::abandon(id as u64, force)
}

/// How a rider's call ended: `done` (with `outcome`: null, or the error as JSON), `retry` (its
/// batch was given up: queue it yourself) or `left` (withdrawn by `changesLeave`).
#[napi(object)]
pub struct ChangeReply {
  #[napi(ts_type = "'done' | 'retry' | 'left'")]
  pub state: String,
  pub outcome: Option<String>,
  /// Calls the batch carried in all (`done` only).
  pub size: u32,
}

/// Queues the exclusive request `waitId` of the batch `batchId` (`changesOpen`) for `key`. The
/// grant is held for the batch (`applyChangesRelease` takes it): the promise resolves with true
/// once it is. If the batch's thread has ended by then, the grant runs the batch for its riders
/// from other threads instead, in its place in the queue.
#[napi(ts_return_type = "Promise<boolean>")]
pub fn changes_queue(env: &Env, key: String, wait_id: i64, batch_id: i64) -> Result<Object<'_>> {
  let id = batch_id as u64;
  let (deferred, promise) = env.create_deferred::<bool, Box<dyn FnOnce(Env) -> Result<bool>>>()?;
  batch::set_wait(id, wait_id as u64);
  registry::enter(
    Path::new(&key),
    Mode::Exclusive,
    wait_id as u64,
    Box::new(move |outcome| match outcome {
      Ok(grant) => match batch::granted(wait_id as u64, grant) {
        batch::Granted::Kept => deferred.resolve(Box::new(|_| Ok(true))),
        batch::Granted::Orphan(orphan, grant) => run_orphan(orphan, grant),
      },
      Err(e) => {
        batch::failed(wait_id as u64);
        deferred.reject(e.into())
      }
    }),
  );
  batch::close(&key, Some(id));
  if engine::start().is_ok() {
    batch::arm(id);
  }
  Ok(promise)
}

/// Runs an orphaned batch (see `batch::granted`) for its riders with the lock `grant`, released
/// once written (or, if the write fails, when the job ends).
fn run_orphan(orphan: batch::Orphan, grant: Arc<Grant>) {
  let calls = orphan
    .riders
    .into_iter()
    .map(|r| {
      let (seq, text, answer) = r.into_parts();
      (seq, text, Destination::Rider(answer))
    })
    .collect();
  let job = ChangesJob {
    path: orphan.io,
    calls,
    indent: orphan.indent,
    fsync: orphan.fsync,
    release: Some(grant),
  };
  engine::submit(move || {
    let (_, leftover) = job.run();
    drop(leftover);
  });
}

type ReplyResolver = Box<dyn FnOnce(Env) -> Result<ChangeReply>>;

/// Joins the batch another thread of the process queued for `key` with the same file and write
/// options; null when there is none to join. `ticket` (`nextWaitId`) is the caller's to leave
/// with; the promise settles with how the call ended.
#[napi(ts_return_type = "Promise<ChangeReply> | null")]
pub fn changes_join<'e>(
  env: &'e Env,
  key: String,
  io: String,
  indent: String,
  fsync: bool,
  ticket: i64,
  call: ChangeCall,
) -> Result<Option<Object<'e>>> {
  watch_thread_end(env)?;
  // The promise is made only for a call that rides: an unsettled one would keep the event loop
  // of its thread alive.
  let mut made = None;
  let reply = || -> batch::Answer {
    let (deferred, promise) = match env.create_deferred::<ChangeReply, ReplyResolver>() {
      Ok(pair) => pair,
      Err(e) => {
        made = Some(Err(e));
        return batch::Answer::new(|_| {});
      }
    };
    made = Some(Ok(promise));
    batch::Answer::new(move |reply| {
      let (state, outcome, size) = match reply {
        batch::Reply::Done(o, size) => ("done", o, size),
        batch::Reply::Retry => ("retry", None, 0),
        batch::Reply::Left => ("left", None, 0),
      };
      deferred.resolve(Box::new(move |_| {
        Ok(ChangeReply {
          state: state.into(),
          outcome,
          size,
        })
      }))
    })
  };
  batch::join(
    &key,
    (&io, &indent, fsync),
    ticket as u64,
    call.into(),
    reply,
  );
  if matches!(made, Some(Err(_))) {
    batch::leave(ticket as u64);
  }
  made.transpose()
}

/// Withdraws a rider whose batch has not run yet (its promise settles `left`); false when the
/// batch has taken it (its outcome follows).
#[napi]
pub fn changes_leave(ticket: i64) -> bool {
  batch::leave(ticket as u64)
}

/// When this JS thread's environment ends (a worker terminated), its waiting batches will never
/// run: their riders are handed back; and its own calls riding elsewhere are withdrawn.
fn watch_thread_end(env: &Env) -> Result<()> {
  thread_local! {
    static WATCHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
  }
  if !WATCHED.get() {
    env.add_env_cleanup_hook(std::thread::current().id(), |owner| {
      for (orphan, grant) in batch::abandon_thread(owner) {
        run_orphan(orphan, grant);
      }
    })?;
    WATCHED.set(true);
  }
  Ok(())
}

/// Checks a change's text at the call: a malformed patch or merge patch is an argument error
/// (`ERR_INVALID_ARG_VALUE`), thrown before anything is queued. A shallow change (the usual
/// one) is parsed here, on the calling thread, whose stack just held JSON.stringify of it; only
/// a deeply nested one needs an engine thread.
#[napi]
pub fn check_change(kind: String, change: String) -> Result<()> {
  if json::nesting(&change) <= changes::SHALLOW {
    changes::parse_change(&kind, &change)?;
    return Ok(());
  }
  engine::start()?;
  engine::run_then(move || (changes::parse_change(&kind, &change).map(|_| ()), ()))?;
  Ok(())
}

/// Checks an RFC 6901 pointer's syntax.
#[napi]
pub fn check_pointer(pointer: String) -> Result<()> {
  changes::parse_pointer(&pointer)?;
  Ok(())
}

/// What `readPointer` found: `value` (with its JSON `text`), `absent` (nothing at the pointer),
/// `missing` (no file) or `empty` (a blank file).
#[napi(object)]
pub struct PointerRead {
  #[napi(ts_type = "'value' | 'absent' | 'missing' | 'empty'")]
  pub state: String,
  pub text: Option<String>,
}

fn pointer_read(path: &str, pointer: &str) -> error::Result<PointerRead> {
  let pointer = changes::parse_pointer(pointer)?;
  let (state, text) = match changes::find(Path::new(path), &pointer)? {
    changes::Found::Text(t) => ("value", Some(t)),
    changes::Found::Absent => ("absent", None),
    changes::Found::Missing => ("missing", None),
    changes::Found::Blank => ("empty", None),
  };
  Ok(PointerRead {
    state: state.into(),
    text,
  })
}

/// The value at `pointer` in the JSON file `path`, found natively on an engine thread: one entry
/// of a big index without a JS object of the whole file.
#[napi(ts_return_type = "Promise<PointerRead>")]
pub fn read_pointer(env: &Env, path: String, pointer: String) -> Result<Object<'_>> {
  engine_promise(env, move || (pointer_read(&path, &pointer), ()))
}

/// `readPointer` on the calling thread (the engine on a thread of its own).
#[napi]
pub fn read_pointer_sync(path: String, pointer: String) -> Result<PointerRead> {
  engine::start()?;
  Ok(engine::run(move || pointer_read(&path, &pointer))?)
}

/// `atomicWrite` on the calling thread.
#[napi]
pub fn atomic_write_sync(
  path: String,
  data: Either<String, Uint8Array>,
  fsync: bool,
  mode: Option<u32>,
  pinned: Option<bool>,
) -> Result<()> {
  Ok(atomic::write(
    &path,
    bytes_of(&data),
    fsync,
    mode,
    pinned.unwrap_or(false),
  )?)
}

/// `readFile` on the calling thread.
#[napi]
pub fn read_file_sync(path: String, pinned: Option<bool>) -> Result<Option<Buffer>> {
  Ok(atomic::read(&path, pinned.unwrap_or(false))?.map(Buffer::from))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn every_spelling_of_a_file_on_a_case_insensitive_volume_has_one_lock_key() {
    let d = std::fs::canonicalize(crate::testdir::fresh("key")).unwrap();
    let spell = |name: &str| d.join(name).to_string_lossy().into_owned();
    let insensitive = cfg!(windows);
    sys::force_fold_for_test(true);
    let keys: Vec<String> = ["Index.json", "index.JSON", "INDEX.json"]
      .iter()
      .map(|n| resolve_path(spell(n)).unwrap())
      .collect();
    sys::force_fold_for_test(false);
    assert!(keys.iter().all(|k| k == &keys[0]), "{keys:?}");
    assert!(keys[0].ends_with("index.json"), "{}", keys[0]);
    // The key names the sidecar too: one sidecar name for every spelling.
    assert!(sidecar_path(keys[0].clone()).ends_with("index.json.lock"));
    // Unforced, a case-sensitive volume keeps each spelling its own key.
    let plain = resolve_path(spell("Index.json")).unwrap();
    assert_eq!(plain == keys[0], insensitive, "{plain} vs {}", keys[0]);
    std::fs::remove_dir_all(&d).unwrap();
  }
}
