//! JSON changes (RFC 6902 patches, RFC 7396 merge patches) applied to one file under its lock:
//! one read and parse, every call's change in call order, one atomic write.

use std::path::Path;
use std::sync::Arc;

use crate::atomic;
use crate::error::{Error, Result};
use crate::json::{self, Operation, ParseError, Pointer, Value};
use crate::registry::Grant;

/// One caller's change.
pub enum Change {
  Patch(Vec<Operation>),
  Merge(Value),
}

/// One caller's request: its change and its `default` (for a missing or blank file).
pub struct Call {
  pub change: Change,
  pub default: Option<Value>,
}

/// How each call ended: `None` done, else its error as the JS layer decodes it.
pub type Outcomes = Vec<Option<String>>;

/// A change's text checked the way the JS argument checks want it: a malformed patch (not an
/// array, an unknown `op`, a bad pointer) or a merge patch that is not JSON is an argument error.
pub fn parse_change(kind: &str, text: &str) -> Result<Change> {
  match kind {
    "patch" => json::parse_patch(text)
      .map(Change::Patch)
      .map_err(|e| Error::InvalidArgValue {
        name: "operations",
        reason: match e.index {
          Some(i) => format!("is not a valid JSON Patch: operation {i}: {}", e.reason),
          None => format!("is not a valid JSON Patch: {}", e.reason),
        },
      }),
    _ => parse_value(text, "mergePatch").map(Change::Merge),
  }
}

/// A value passed from JS as JSON text (`JSON.stringify` of it).
pub fn parse_value(text: &str, name: &'static str) -> Result<Value> {
  json::parse(text.as_bytes()).map_err(|e| Error::InvalidArgValue {
    name,
    reason: match e {
      ParseError::TooDeep { depth } => format!("is nested deeper than {depth} levels"),
      _ => "is not a JSON value".into(),
    },
  })
}

/// Nesting a change may have to be parsed on the calling thread: its stack has just held
/// `JSON.stringify` of the same value, which recurses as deep, and 256 levels of the engine's
/// parser fit in far less than any thread's stack.
pub const SHALLOW: usize = 256;

/// A pointer argument, checked (RFC 6901 syntax).
pub fn parse_pointer(text: &str) -> Result<Pointer> {
  Pointer::parse(text).map_err(|reason| Error::InvalidArgValue {
    name: "options.pointer",
    reason: format!("is not a JSON Pointer ({reason})"),
  })
}

/// The file's state: its document, or why there is none.
enum State {
  Doc(Value),
  Missing,
  Blank,
}

/// True for a file `readJson` reads as empty: JSON whitespace only, after an optional BOM.
fn blank(bytes: &[u8]) -> bool {
  let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
  body
    .iter()
    .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Reads and parses `io` (pinned: the file the caller locked, never a symlink planted since).
fn read_state(io: &Path) -> Result<State> {
  let Some(bytes) = atomic::read(&io.to_string_lossy(), true)? else {
    return Ok(State::Missing);
  };
  if blank(&bytes) {
    return Ok(State::Blank);
  }
  // Owned: a big document's unparsed parts share the buffer instead of a copy of it.
  json::parse_owned(bytes)
    .map(State::Doc)
    .map_err(|(e, bytes)| corrupt(io, &bytes, e))
}

/// The error of a file that is not one JSON text, where `readJson` would say it is.
fn corrupt(io: &Path, bytes: &[u8], e: ParseError) -> Error {
  match e {
    ParseError::TooDeep { depth } => Error::TooDeep {
      path: io.to_path_buf(),
      depth,
    },
    _ => match json::error_position(bytes) {
      Some(at) => Error::Corrupt {
        path: io.to_path_buf(),
        line: at.line,
        column: at.column,
        offset: at.offset,
        reason: at.reason,
      },
      None => Error::Corrupt {
        path: io.to_path_buf(),
        line: 0,
        column: 0,
        offset: 0,
        reason: "not valid JSON".into(),
      },
    },
  }
}

/// Applies `call` to `state`; on failure `state` is as it was.
fn apply(io: &Path, state: &mut State, call: &Call) -> Result<()> {
  if let State::Doc(doc) = state {
    return change(doc, &call.change);
  }
  let Some(default) = &call.default else {
    return Err(match state {
      State::Missing => Error::errno(crate::sys::errno::ENOENT, "open", io),
      _ => Error::Corrupt {
        path: io.to_path_buf(),
        line: 0,
        column: 0,
        offset: 0,
        reason: "the file is empty".into(),
      },
    });
  };
  let mut fresh = default.clone();
  change(&mut fresh, &call.change)?;
  *state = State::Doc(fresh);
  Ok(())
}

fn change(doc: &mut Value, change: &Change) -> Result<()> {
  match change {
    Change::Patch(ops) => json::apply_patch(doc, ops).map_err(|f| Error::Patch {
      index: f.index,
      op: f.op,
      reason: f.reason,
    }),
    Change::Merge(patch) => {
      json::apply_merge(doc, patch);
      Ok(())
    }
  }
}

fn write(io: &Path, doc: &Value, indent: &str, durable: bool) -> Result<()> {
  // Streamed: the new text is never held whole beside the document.
  atomic::write_with(
    &io.to_string_lossy(),
    &mut |file| json::format_to(doc, indent, file),
    durable,
    None,
    true,
  )
}

fn renamed(e: &Error) -> bool {
  matches!(e, Error::Renamed(_))
}

/// Applies `calls` to the file `io` in call order and writes the result once; each call ends as
/// it would have alone, one after another (a failed change leaves the state as it was for the
/// next; a failed write is retried call by call on the state actually on disk; a write that
/// failed after its rename did reach the file and is never retried with an older state).
/// `grant`, if any, is released the moment the write has succeeded: the next holder does not
/// wait for the hop back to the JS thread. A failed write keeps it.
///
/// The document comes back beside the outcomes: freeing a big tree takes milliseconds, which
/// the caller spends after it has answered, not before.
pub fn run(
  io: &Path,
  calls: &[Call],
  indent: &str,
  durable: bool,
  grant: Option<Arc<Grant>>,
) -> (Outcomes, Leftover) {
  let mut state = match read_state(io) {
    Ok(s) => s,
    Err(e) => return (vec![Some(e.to_json()); calls.len()], Leftover(None)),
  };
  let outcomes = commit(io, calls, indent, durable, grant, &mut state);
  (outcomes, Leftover(Some(state)))
}

/// What a batch leaves to be freed: drop it once the callers have their outcomes.
#[derive(Default)]
pub struct Leftover(#[allow(dead_code)] Option<State>);

fn commit(
  io: &Path,
  calls: &[Call],
  indent: &str,
  durable: bool,
  grant: Option<Arc<Grant>>,
  state: &mut State,
) -> Outcomes {
  let mut outcomes: Outcomes = Vec::with_capacity(calls.len());
  let mut changed = false;
  for call in calls {
    match apply(io, state, call) {
      Ok(()) => {
        changed = true;
        outcomes.push(None);
      }
      Err(e) => outcomes.push(Some(e.to_json())),
    }
  }
  let State::Doc(doc) = &*state else {
    return outcomes;
  };
  if !changed {
    if let Some(g) = grant {
      g.release();
    }
    return outcomes;
  }
  let failure = match write(io, doc, indent, durable) {
    Ok(()) => {
      if let Some(g) = grant {
        g.release();
      }
      return outcomes;
    }
    Err(e) => e,
  };
  if renamed(&failure) || calls.len() == 1 {
    // The file holds the batch's state (renamed) or nothing changed (one call): each call that
    // led there ends with the error, as alone.
    let text = failure.to_json();
    for o in outcomes.iter_mut().filter(|o| o.is_none()) {
      *o = Some(text.clone());
    }
    return outcomes;
  }
  sequential(io, calls, indent, durable)
}

/// The calls one after another, each written alone, from the state on disk.
fn sequential(io: &Path, calls: &[Call], indent: &str, durable: bool) -> Outcomes {
  let mut outcomes = Outcomes::with_capacity(calls.len());
  let mut state = read_state(io);
  for call in calls {
    let current = match &mut state {
      Ok(s) => s,
      Err(e) => {
        outcomes.push(Some(e.to_json()));
        continue;
      }
    };
    if let Err(e) = apply(io, current, call) {
      outcomes.push(Some(e.to_json()));
      continue;
    }
    let State::Doc(doc) = &*current else {
      unreachable!("a change that succeeded leaves a document")
    };
    match write(io, doc, indent, durable) {
      Ok(()) => outcomes.push(None),
      Err(e) => {
        outcomes.push(Some(e.to_json()));
        // Renamed: the file holds this state after all. Else it holds what it held.
        if !renamed(&e) {
          state = read_state(io);
        }
      }
    }
  }
  outcomes
}

/// What a pointer finds in the file `path`: the value's JSON text, `absent` when nothing is
/// there, `missing`/`empty` when there is no document.
pub enum Found {
  Text(String),
  Absent,
  Missing,
  Blank,
}

pub fn find(path: &Path, pointer: &Pointer) -> Result<Found> {
  let bytes = match atomic::read(&path.to_string_lossy(), false)? {
    None => return Ok(Found::Missing),
    Some(b) => b,
  };
  if blank(&bytes) {
    return Ok(Found::Blank);
  }
  // The value's text as written (JS parses it) from a scan that checks the whole file but builds
  // no tree: a tree of a big index costs several times the file and most of the time.
  let range = json::find_raw(&bytes, pointer).map_err(|e| corrupt(path, &bytes, e))?;
  Ok(match range {
    Some(r) => Found::Text(String::from_utf8_lossy(&bytes[r]).into_owned()),
    None => Found::Absent,
  })
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn nesting_counts_brackets_outside_strings_only() {
    assert_eq!(json::nesting("1"), 0);
    assert_eq!(
      json::nesting(r#"[{"op":"add","path":"/a","value":[[1]]}]"#),
      4
    );
    assert_eq!(json::nesting(r#"["[[[[", "\"{{{", {"a\\":"]]]]"}]"#), 2);
    let deep = format!("{}{}", "[".repeat(SHALLOW + 1), "]".repeat(SHALLOW + 1));
    assert_eq!(json::nesting(&deep), SHALLOW + 1);
  }
}
