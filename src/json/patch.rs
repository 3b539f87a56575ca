//! RFC 6902 JSON Patch: checking a patch's shape, then applying it all or nothing.

use std::fmt;

use super::equal::equal;
use super::parse::{parse, ParseError, MAX_DEPTH};
use super::pointer::{array_index, resolve, resolve_mut, text_of, Pointer};
use super::position::error_position;
use super::text::decode;
use super::value::{Object, Value};

#[derive(Debug, Clone)]
pub enum Operation {
  Add { path: Pointer, value: Value },
  Remove { path: Pointer },
  Replace { path: Pointer, value: Value },
  Move { from: Pointer, path: Pointer },
  Copy { from: Pointer, path: Pointer },
  Test { path: Pointer, value: Value },
}

impl Operation {
  /// The "op" member's text.
  pub fn name(&self) -> &'static str {
    match self {
      Operation::Add { .. } => "add",
      Operation::Remove { .. } => "remove",
      Operation::Replace { .. } => "replace",
      Operation::Move { .. } => "move",
      Operation::Copy { .. } => "copy",
      Operation::Test { .. } => "test",
    }
  }

  pub fn path(&self) -> &Pointer {
    match self {
      Operation::Add { path, .. }
      | Operation::Remove { path }
      | Operation::Replace { path, .. }
      | Operation::Move { path, .. }
      | Operation::Copy { path, .. }
      | Operation::Test { path, .. } => path,
    }
  }
}

/// A patch that is no list of operations. `index` is the operation at fault; `None` when the
/// patch is not JSON or not an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchShapeError {
  pub index: Option<usize>,
  pub reason: String,
}

impl fmt::Display for PatchShapeError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self.index {
      Some(index) => write!(f, "operation {index}: {}", self.reason),
      None => f.write_str(&self.reason),
    }
  }
}

/// The operations of the patch text `text` (JS passes `JSON.stringify(ops)`): an array of
/// objects, each with a known "op", a "path" pointer, "from" for move/copy and "value" for
/// add/replace/test. Other members are ignored, as RFC 6902 asks.
pub fn parse_patch(text: &str) -> Result<Vec<Operation>, PatchShapeError> {
  let shape = |index, reason| PatchShapeError { index, reason };
  let items = match parse(text.as_bytes()) {
    Ok(Value::Array(items)) => items,
    Ok(other) => {
      return Err(shape(
        None,
        format!(
          "a patch must be an array of operations, not {}",
          other.kind()
        ),
      ))
    }
    Err(ParseError::TooDeep { depth }) => {
      return Err(shape(
        None,
        format!("the patch is nested deeper than {} levels", depth - 1),
      ))
    }
    Err(_) => {
      let reason = match error_position(text.as_bytes()) {
        Some(e) => format!(
          "the patch is not valid JSON: {} at line {}, column {}",
          e.reason, e.line, e.column
        ),
        None => "the patch is not valid JSON".into(),
      };
      return Err(shape(None, reason));
    }
  };
  items
    .into_iter()
    .enumerate()
    .map(|(index, item)| operation(item).map_err(|reason| shape(Some(index), reason)))
    .collect()
}

fn operation(item: Value) -> Result<Operation, String> {
  let item = item.into_resolved();
  let Value::Object(mut member) = item else {
    return Err(format!(
      "an operation must be an object, not {}",
      item.kind()
    ));
  };
  let op = match member.get("op") {
    Some(Value::String(raw)) => String::from_utf8_lossy(&decode(raw)).into_owned(),
    Some(other) => return Err(format!("\"op\" must be a string, not {}", other.kind())),
    None => return Err("missing \"op\"".into()),
  };
  if !matches!(
    op.as_str(),
    "add" | "remove" | "replace" | "move" | "copy" | "test"
  ) {
    return Err(format!(
      "unknown op {op:?}: expected add, remove, replace, move, copy or test"
    ));
  }
  let path = pointer_member(&member, "path")?;
  let from = || pointer_member(&member, "from");
  Ok(match op.as_str() {
    "remove" => Operation::Remove { path },
    "move" => Operation::Move {
      from: from()?,
      path,
    },
    "copy" => Operation::Copy {
      from: from()?,
      path,
    },
    _ => {
      let value = match member.remove("value") {
        Some((_, _, value)) => value,
        None => return Err("missing \"value\"".into()),
      };
      match op.as_str() {
        "add" => Operation::Add { path, value },
        "replace" => Operation::Replace { path, value },
        _ => Operation::Test { path, value },
      }
    }
  })
}

fn pointer_member(operation: &Object, name: &str) -> Result<Pointer, String> {
  match operation.get(name) {
    Some(Value::String(raw)) => {
      // A lone surrogate escape decodes to no UTF-8: matched as U+FFFD it would name another key.
      let decoded = decode(raw);
      let text = std::str::from_utf8(&decoded).map_err(|_| {
        format!("\"{name}\" must not contain a lone surrogate (use updateJson for such a key)")
      })?;
      Pointer::parse(text).map_err(|e| format!("\"{name}\": {e}"))
    }
    Some(other) => Err(format!("\"{name}\" must be a string, not {}", other.kind())),
    None => Err(format!("missing \"{name}\"")),
  }
}

/// The operation that failed (0-based) and why; the document was left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchFailure {
  pub index: usize,
  pub op: &'static str,
  pub reason: String,
}

impl fmt::Display for PatchFailure {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "operation {} ({}): {}", self.index, self.op, self.reason)
  }
}

/// Applies every operation in order, atomically: when one fails, `doc` is put back exactly as it
/// was (member order and raw texts included) and the failure names the operation.
///
/// Rolling back replays an undo log of the primitive changes rather than restoring a copy:
/// documents run to tens of megabytes and patches are small.
pub fn apply_patch(doc: &mut Value, ops: &[Operation]) -> Result<(), PatchFailure> {
  let mut log = UndoLog::default();
  for (index, op) in ops.iter().enumerate() {
    if let Err(reason) = log.apply(doc, op) {
      log.undo(doc);
      return Err(PatchFailure {
        index,
        op: op.name(),
        reason,
      });
    }
  }
  log.settle(doc);
  Ok(())
}

/// Where an added value went in its container.
enum Place<'p> {
  Key(&'p str),
  Index(usize),
}

/// One primitive change. Containers are named by their pointer tokens, found again on undo:
/// undoing in reverse order brings back the exact state each entry was made in.
enum Undo<'p> {
  /// The whole document was replaced; this is the old one.
  Root(Value),
  /// The value at `path` was replaced; this is the old one.
  Replaced { path: &'p [String], old: Value },
  /// A value was added to the container at `parent`.
  Added {
    parent: &'p [String],
    place: Place<'p>,
  },
  /// A member was taken out of the object at `parent`. The value itself is not kept here: the
  /// entry after this one holds it (it was added elsewhere, or dropped).
  TookMember {
    parent: &'p [String],
    slot: usize,
    key: Box<str>,
  },
  /// An element was taken out of the array at `parent`; the value as for `TookMember`.
  TookElement { parent: &'p [String], index: usize },
  /// A taken value that went nowhere (a remove, or a move whose add failed).
  Dropped(Value),
}

#[derive(Default)]
struct UndoLog<'p> {
  entries: Vec<Undo<'p>>,
}

const OUT_OF_STEP: &str = "a JSON patch undo log out of step with its document";

impl<'p> UndoLog<'p> {
  fn apply(&mut self, doc: &mut Value, op: &'p Operation) -> Result<(), String> {
    match op {
      Operation::Add { path, value } => self.add(doc, path, value.clone()).map_err(|(r, _)| r),
      Operation::Remove { path } => {
        let value = self.take(doc, path)?;
        self.entries.push(Undo::Dropped(value));
        Ok(())
      }
      Operation::Replace { path, value } => self.replace(doc, path, value.clone()),
      Operation::Move { from, path } => {
        if from.tokens() == path.tokens() {
          return resolve(doc, from.tokens())
            .map(|_| ())
            .ok_or_else(|| missing(doc, from.tokens()));
        }
        if path.tokens().starts_with(from.tokens()) {
          return Err(format!("cannot move '{from}' into its own child '{path}'"));
        }
        let value = self.take(doc, from)?;
        self.add(doc, path, value).map_err(|(reason, value)| {
          self.entries.push(Undo::Dropped(value));
          reason
        })
      }
      Operation::Copy { from, path } => {
        let value = resolve(doc, from.tokens())
          .ok_or_else(|| missing(doc, from.tokens()))?
          .clone();
        self.add(doc, path, value).map_err(|(r, _)| r)
      }
      Operation::Test { path, value } => {
        let target = resolve(doc, path.tokens()).ok_or_else(|| missing(doc, path.tokens()))?;
        if equal(target, value) {
          Ok(())
        } else {
          Err(format!("test failed at '{path}'"))
        }
      }
    }
  }

  /// RFC 6902 add; on failure the value comes back, so that a move can put it back.
  fn add(
    &mut self,
    doc: &mut Value,
    path: &'p Pointer,
    value: Value,
  ) -> Result<(), (String, Value)> {
    if let Err(reason) = fits(path, &value) {
      return Err((reason, value));
    }
    let Some((last, parent)) = path.tokens().split_last() else {
      self.entries.push(Undo::Root(std::mem::replace(doc, value)));
      return Ok(());
    };
    match resolve_mut(doc, parent) {
      Some(Value::Object(o)) => {
        let entry = match o.insert(last, value) {
          Some(old) => Undo::Replaced {
            path: path.tokens(),
            old,
          },
          None => Undo::Added {
            parent,
            place: Place::Key(last),
          },
        };
        self.entries.push(entry);
        Ok(())
      }
      Some(Value::Array(a)) => {
        let index = match array_index(last) {
          _ if last == "-" => a.len(),
          Some(i) if i <= a.len() => i,
          Some(_) => return Err((out_of_range(last, a.len()), value)),
          None => return Err((format!("invalid array index '{last}' in '{path}'"), value)),
        };
        a.insert(index, value);
        self.entries.push(Undo::Added {
          parent,
          place: Place::Index(index),
        });
        Ok(())
      }
      Some(other) => {
        let reason = format!(
          "cannot add '{path}': '{}' is {}, not an object or array",
          text_of(parent),
          other.kind()
        );
        Err((reason, value))
      }
      None => Err((missing(doc, parent), value)),
    }
  }

  /// Takes the value at `path` out of its container (remove, and the first half of move).
  fn take(&mut self, doc: &mut Value, path: &'p Pointer) -> Result<Value, String> {
    let Some((last, parent)) = path.tokens().split_last() else {
      return Err("cannot remove the root".into());
    };
    let (entry, value) = match resolve_mut(doc, parent) {
      Some(Value::Object(o)) => match o.remove(last) {
        Some((slot, key, value)) => (Undo::TookMember { parent, slot, key }, value),
        None => return Err(missing(doc, path.tokens())),
      },
      Some(Value::Array(a)) => match array_index(last) {
        Some(index) if index < a.len() => (Undo::TookElement { parent, index }, a.remove(index)),
        _ => return Err(missing(doc, path.tokens())),
      },
      _ => return Err(missing(doc, path.tokens())),
    };
    self.entries.push(entry);
    Ok(value)
  }

  fn replace(&mut self, doc: &mut Value, path: &'p Pointer, value: Value) -> Result<(), String> {
    fits(path, &value)?;
    if path.is_root() {
      self.entries.push(Undo::Root(std::mem::replace(doc, value)));
      return Ok(());
    }
    let Some(target) = resolve_mut(doc, path.tokens()) else {
      return Err(missing(doc, path.tokens()));
    };
    let old = std::mem::replace(target, value);
    self.entries.push(Undo::Replaced {
      path: path.tokens(),
      old,
    });
    Ok(())
  }

  /// Reverts every change, newest first.
  fn undo(self, doc: &mut Value) {
    // The value the entry just undone took out of the document, for a `Took*` entry to restore.
    let mut carry: Option<Value> = None;
    for entry in self.entries.into_iter().rev() {
      match entry {
        Undo::Root(old) => carry = Some(std::mem::replace(doc, old)),
        Undo::Replaced { path, old } => {
          let target = resolve_mut(doc, path).expect(OUT_OF_STEP);
          carry = Some(std::mem::replace(target, old));
        }
        Undo::Added { parent, place } => {
          carry = match (resolve_mut(doc, parent), place) {
            (Some(Value::Object(o)), Place::Key(key)) => o.remove(key).map(|(_, _, v)| v),
            (Some(Value::Array(a)), Place::Index(index)) => Some(a.remove(index)),
            _ => None,
          };
          assert!(carry.is_some(), "{OUT_OF_STEP}");
        }
        Undo::TookMember { parent, slot, key } => {
          let value = carry.take().expect(OUT_OF_STEP);
          match resolve_mut(doc, parent) {
            Some(Value::Object(o)) => o.insert_at(slot, key, value),
            _ => panic!("{OUT_OF_STEP}"),
          }
        }
        Undo::TookElement { parent, index } => {
          let value = carry.take().expect(OUT_OF_STEP);
          match resolve_mut(doc, parent) {
            Some(Value::Array(a)) => a.insert(index, value),
            _ => panic!("{OUT_OF_STEP}"),
          }
        }
        Undo::Dropped(value) => carry = Some(value),
      }
    }
  }

  /// After success: objects that lost members drop their empty slots once they are mostly holes
  /// (never during the patch, as undo relies on slot positions).
  fn settle(self, doc: &mut Value) {
    for entry in &self.entries {
      if let Undo::TookMember { parent, .. } = entry {
        if let Some(Value::Object(o)) = resolve_mut(doc, parent) {
          o.compact_if_sparse();
        }
      }
    }
  }
}

/// Why `tokens` names nothing in `doc`: the first prefix that does not exist, or, for the last
/// token, an array index past the end.
/// Refuses to put `value` at `path` where the document would nest deeper than `MAX_DEPTH`: a
/// file the engine (and V8) could not read back, and, copied into itself a few times, a tree
/// whose depth doubles with each copy until the engine's stack overflows.
fn fits(path: &Pointer, value: &Value) -> Result<(), String> {
  let depth = path.tokens().len() + value.nesting();
  if depth > MAX_DEPTH {
    return Err(format!(
      "the value at '{path}' would nest {depth} levels deep, more than the {MAX_DEPTH} a JSON file may"
    ));
  }
  Ok(())
}

fn missing(doc: &Value, tokens: &[String]) -> String {
  let mut at = doc;
  for (k, token) in tokens.iter().enumerate() {
    let next = match at.resolved() {
      Value::Object(o) => o.get(token),
      Value::Array(a) => match array_index(token) {
        Some(i) if i >= a.len() && k + 1 == tokens.len() => return out_of_range(token, a.len()),
        index => index.and_then(|i| a.get(i)),
      },
      _ => None,
    };
    match next {
      Some(value) => at = value,
      None => return format!("path '{}' does not exist", text_of(&tokens[..=k])),
    }
  }
  format!("path '{}' does not exist", text_of(tokens))
}

fn out_of_range(token: &str, len: usize) -> String {
  format!("array index {token} out of range (length {len})")
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::json::format;

  fn doc(text: &str) -> Value {
    parse(text.as_bytes()).unwrap()
  }

  fn compact(value: &Value) -> String {
    String::from_utf8(format(value, ""))
      .unwrap()
      .trim_end()
      .to_string()
  }

  /// Applies `patch` to `target`: the result, or the failure (and then the document must be
  /// unchanged).
  fn patched(target: &str, patch: &str) -> Result<String, PatchFailure> {
    let mut value = doc(target);
    let before = format(&value, "  ");
    let ops = parse_patch(patch).unwrap();
    match apply_patch(&mut value, &ops) {
      Ok(()) => Ok(compact(&value)),
      Err(failure) => {
        assert_eq!(format(&value, "  "), before, "rolled back");
        Err(failure)
      }
    }
  }

  fn ok(target: &str, patch: &str, result: &str) {
    assert_eq!(patched(target, patch).as_deref(), Ok(result), "{patch}");
  }

  fn fails(target: &str, patch: &str) -> String {
    patched(target, patch).expect_err(patch).reason
  }

  // RFC 6902 Appendix A, in order. Members the RFC shows in another order come out in ours:
  // new members go last.

  #[test]
  fn a1_adding_an_object_member() {
    ok(
      r#"{"foo":"bar"}"#,
      r#"[{"op":"add","path":"/baz","value":"qux"}]"#,
      r#"{"foo":"bar","baz":"qux"}"#,
    );
  }

  #[test]
  fn a2_adding_an_array_element() {
    ok(
      r#"{"foo":["bar","baz"]}"#,
      r#"[{"op":"add","path":"/foo/1","value":"qux"}]"#,
      r#"{"foo":["bar","qux","baz"]}"#,
    );
  }

  #[test]
  fn a3_removing_an_object_member() {
    ok(
      r#"{"baz":"qux","foo":"bar"}"#,
      r#"[{"op":"remove","path":"/baz"}]"#,
      r#"{"foo":"bar"}"#,
    );
  }

  #[test]
  fn a4_removing_an_array_element() {
    ok(
      r#"{"foo":["bar","qux","baz"]}"#,
      r#"[{"op":"remove","path":"/foo/1"}]"#,
      r#"{"foo":["bar","baz"]}"#,
    );
  }

  #[test]
  fn a5_replacing_a_value() {
    ok(
      r#"{"baz":"qux","foo":"bar"}"#,
      r#"[{"op":"replace","path":"/baz","value":"boo"}]"#,
      r#"{"baz":"boo","foo":"bar"}"#,
    );
  }

  #[test]
  fn a6_moving_a_value() {
    ok(
      r#"{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}"#,
      r#"[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]"#,
      r#"{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}"#,
    );
  }

  #[test]
  fn a7_moving_an_array_element() {
    ok(
      r#"{"foo":["all","grass","cows","eat"]}"#,
      r#"[{"op":"move","from":"/foo/1","path":"/foo/3"}]"#,
      r#"{"foo":["all","cows","eat","grass"]}"#,
    );
  }

  #[test]
  fn a8_testing_a_value_success() {
    ok(
      r#"{"baz":"qux","foo":["a",2,"c"]}"#,
      r#"[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]"#,
      r#"{"baz":"qux","foo":["a",2,"c"]}"#,
    );
  }

  #[test]
  fn a9_testing_a_value_error() {
    let failure = patched(
      r#"{"baz":"qux"}"#,
      r#"[{"op":"test","path":"/baz","value":"bar"}]"#,
    )
    .unwrap_err();
    assert_eq!(
      failure,
      PatchFailure {
        index: 0,
        op: "test",
        reason: "test failed at '/baz'".into()
      }
    );
  }

  #[test]
  fn a10_adding_a_nested_member_object() {
    ok(
      r#"{"foo":"bar"}"#,
      r#"[{"op":"add","path":"/child","value":{"grandchild":{}}}]"#,
      r#"{"foo":"bar","child":{"grandchild":{}}}"#,
    );
  }

  #[test]
  fn a11_ignoring_unrecognized_elements() {
    ok(
      r#"{"foo":"bar"}"#,
      r#"[{"op":"add","path":"/baz","value":"qux","xyz":123}]"#,
      r#"{"foo":"bar","baz":"qux"}"#,
    );
  }

  #[test]
  fn a12_adding_to_a_nonexistent_target() {
    assert_eq!(
      fails(
        r#"{"foo":"bar"}"#,
        r#"[{"op":"add","path":"/baz/bat","value":"qux"}]"#
      ),
      "path '/baz' does not exist"
    );
  }

  #[test]
  fn a13_a_duplicate_op_member_reads_as_json_parse_reads_it() {
    // The RFC calls this patch invalid; JSON.parse keeps the last "op", and so do we. (JS passes
    // JSON.stringify(ops), which never has duplicates.)
    ok(
      r#"{"baz":1,"foo":2}"#,
      r#"[{"op":"add","path":"/baz","value":"qux","op":"remove"}]"#,
      r#"{"foo":2}"#,
    );
  }

  #[test]
  fn a14_tilde_escape_ordering() {
    ok(
      r#"{"/":9,"~1":10}"#,
      r#"[{"op":"test","path":"/~01","value":10}]"#,
      r#"{"/":9,"~1":10}"#,
    );
  }

  #[test]
  fn a15_comparing_strings_and_numbers() {
    assert_eq!(
      fails(
        r#"{"/":9,"~1":10}"#,
        r#"[{"op":"test","path":"/~01","value":"10"}]"#
      ),
      "test failed at '/~01'"
    );
  }

  #[test]
  fn a16_adding_an_array_value() {
    ok(
      r#"{"foo":["bar"]}"#,
      r#"[{"op":"add","path":"/foo/-","value":["abc","def"]}]"#,
      r#"{"foo":["bar",["abc","def"]]}"#,
    );
  }

  #[test]
  fn the_root() {
    ok(
      r#"{"a":1}"#,
      r#"[{"op":"add","path":"","value":[1]}]"#,
      "[1]",
    );
    ok(
      r#"{"a":1}"#,
      r#"[{"op":"replace","path":"","value":null}]"#,
      "null",
    );
    ok(
      r#"{"a":1}"#,
      r#"[{"op":"test","path":"","value":{"a":1.0}}]"#,
      r#"{"a":1}"#,
    );
    ok(
      r#"{"a":1}"#,
      r#"[{"op":"copy","from":"","path":"/b"}]"#,
      r#"{"a":1,"b":{"a":1}}"#,
    );
    ok(
      r#"{"a":{"b":2}}"#,
      r#"[{"op":"move","from":"/a","path":""}]"#,
      r#"{"b":2}"#,
    );
    ok(
      r#"{"a":1}"#,
      r#"[{"op":"move","from":"","path":""}]"#,
      r#"{"a":1}"#,
    );
    assert_eq!(
      fails(r#"{"a":1}"#, r#"[{"op":"remove","path":""}]"#),
      "cannot remove the root"
    );
    assert_eq!(
      fails(r#"{"a":1}"#, r#"[{"op":"move","from":"","path":"/b"}]"#),
      "cannot move '' into its own child '/b'"
    );
  }

  #[test]
  fn escaped_tokens_and_keys() {
    ok(
      r#"{"a/b":{"m~n":1}}"#,
      r#"[{"op":"replace","path":"/a~1b/m~0n","value":2},{"op":"add","path":"/x~1y~0","value":"\n"}]"#,
      r#"{"a/b":{"m~n":2},"x/y~":"\n"}"#,
    );
    // Keys compare by decoded text, and keep their spelling when replaced.
    ok(
      r#"{"\u0061":1}"#,
      r#"[{"op":"replace","path":"/a","value":2},{"op":"add","path":"/a","value":3}]"#,
      r#"{"\u0061":3}"#,
    );
    // A new key is written as JSON.stringify would.
    ok(
      "{}",
      r#"[{"op":"add","path":"/q\"\u0001é","value":0}]"#,
      r#"{"q\"\u0001é":0}"#,
    );
  }

  #[test]
  fn array_indexes() {
    let a = r#"{"a":[1,2,3]}"#;
    ok(
      a,
      r#"[{"op":"add","path":"/a/3","value":4}]"#,
      r#"{"a":[1,2,3,4]}"#,
    );
    ok(
      a,
      r#"[{"op":"add","path":"/a/0","value":0}]"#,
      r#"{"a":[0,1,2,3]}"#,
    );
    ok(
      a,
      r#"[{"op":"add","path":"/a/-","value":4}]"#,
      r#"{"a":[1,2,3,4]}"#,
    );
    ok(
      a,
      r#"[{"op":"replace","path":"/a/2","value":0}]"#,
      r#"{"a":[1,2,0]}"#,
    );
    assert_eq!(
      fails(a, r#"[{"op":"add","path":"/a/5","value":4}]"#),
      "array index 5 out of range (length 3)"
    );
    assert_eq!(
      fails(a, r#"[{"op":"remove","path":"/a/3"}]"#),
      "array index 3 out of range (length 3)"
    );
    assert_eq!(
      fails(a, r#"[{"op":"replace","path":"/a/3","value":0}]"#),
      "array index 3 out of range (length 3)"
    );
    assert_eq!(
      fails(a, r#"[{"op":"add","path":"/a/01","value":4}]"#),
      "invalid array index '01' in '/a/01'"
    );
    assert_eq!(
      fails(a, r#"[{"op":"add","path":"/a/x","value":4}]"#),
      "invalid array index 'x' in '/a/x'"
    );
    assert_eq!(
      fails(a, r#"[{"op":"remove","path":"/a/-"}]"#),
      "path '/a/-' does not exist"
    );
    assert_eq!(
      fails(a, r#"[{"op":"test","path":"/a/-","value":1}]"#),
      "path '/a/-' does not exist"
    );
    assert_eq!(
      fails(a, r#"[{"op":"add","path":"/a/0/x","value":1}]"#),
      "cannot add '/a/0/x': '/a/0' is number, not an object or array"
    );
  }

  #[test]
  fn missing_targets() {
    let d = r#"{"a":{"b":1}}"#;
    assert_eq!(
      fails(d, r#"[{"op":"remove","path":"/a/c"}]"#),
      "path '/a/c' does not exist"
    );
    assert_eq!(
      fails(d, r#"[{"op":"replace","path":"/x/y","value":1}]"#),
      "path '/x' does not exist"
    );
    assert_eq!(
      fails(d, r#"[{"op":"move","from":"/a/x","path":"/b"}]"#),
      "path '/a/x' does not exist"
    );
    assert_eq!(
      fails(d, r#"[{"op":"copy","from":"/a/b/c","path":"/b"}]"#),
      "path '/a/b/c' does not exist"
    );
    assert_eq!(
      fails(d, r#"[{"op":"move","from":"/q","path":"/q"}]"#),
      "path '/q' does not exist"
    );
  }

  #[test]
  fn move_and_copy() {
    let d = r#"{"a":{"b":[1,{"c":2}]},"z":0}"#;
    assert_eq!(
      fails(d, r#"[{"op":"move","from":"/a","path":"/a/b"}]"#),
      "cannot move '/a' into its own child '/a/b'"
    );
    assert_eq!(
      fails(d, r#"[{"op":"move","from":"/a/b","path":"/a/b/1/d"}]"#),
      "cannot move '/a/b' into its own child '/a/b/1/d'"
    );
    // Only token-wise prefixes are children: "/a" is not inside "/ab".
    ok(
      r#"{"a":1,"ab":2}"#,
      r#"[{"op":"move","from":"/a","path":"/abc"}]"#,
      r#"{"ab":2,"abc":1}"#,
    );
    ok(d, r#"[{"op":"move","from":"/a/b","path":"/a/b"}]"#, d);
    ok(
      d,
      r#"[{"op":"move","from":"/a/b/1","path":"/a/b/0"}]"#,
      r#"{"a":{"b":[{"c":2},1]},"z":0}"#,
    );
    ok(
      d,
      r#"[{"op":"move","from":"/z","path":"/a/b/1/c"}]"#,
      r#"{"a":{"b":[1,{"c":0}]}}"#,
    );
    // A copy is deep: changing it leaves the original alone.
    ok(
      d,
      r#"[{"op":"copy","from":"/a/b","path":"/y"},{"op":"replace","path":"/y/1/c","value":9}]"#,
      r#"{"a":{"b":[1,{"c":2}]},"z":0,"y":[1,{"c":9}]}"#,
    );
  }

  #[test]
  fn a_failed_patch_leaves_the_document_byte_identical() {
    let text = "{\n  \"keep\": [1, 2, 3],\n  \"a\": {\"x\": 1, \"y\": 2, \"z\": 3},\n  \"n\": 1.50,\n  \"s\": \"\\u00e9\"\n}";
    let mut value = doc(text);
    for indent in ["", "  "] {
      let before = format(&value, indent);
      // Every kind of change, then a failure at the end.
      let patch = r#"[
        {"op":"remove","path":"/a/y"},
        {"op":"move","from":"/keep/0","path":"/a/moved"},
        {"op":"add","path":"/keep/1","value":{"new":true}},
        {"op":"replace","path":"/n","value":2},
        {"op":"copy","from":"/a","path":"/keep/-"},
        {"op":"move","from":"/s","path":"/a/x"},
        {"op":"add","path":"/a/z","value":0},
        {"op":"remove","path":"/a/moved"},
        {"op":"replace","path":"","value":[]},
        {"op":"move","from":"/0","path":"/nowhere/x"}
      ]"#;
      let failure = apply_patch(&mut value, &parse_patch(patch).unwrap()).unwrap_err();
      assert_eq!((failure.index, failure.op), (9, "move"));
      assert_eq!(format(&value, indent), before);
    }
    // The third op fails: the first two are undone.
    let mut value = doc(text);
    let before = format(&value, "");
    let patch = r#"[{"op":"remove","path":"/keep/1"},{"op":"add","path":"/a/w","value":1},{"op":"remove","path":"/missing"},{"op":"add","path":"/b","value":1}]"#;
    let failure = apply_patch(&mut value, &parse_patch(patch).unwrap()).unwrap_err();
    assert_eq!(
      failure,
      PatchFailure {
        index: 2,
        op: "remove",
        reason: "path '/missing' does not exist".into()
      }
    );
    assert_eq!(format(&value, ""), before);
    // Lookups still work after the undo (the object's index was kept in step).
    assert!(value
      .as_object()
      .unwrap()
      .get("a")
      .unwrap()
      .as_object()
      .unwrap()
      .get("w")
      .is_none());
  }

  #[test]
  fn rollback_in_a_big_object_keeps_order_and_index() {
    let mut text = String::from("{");
    for i in 0..100 {
      text.push_str(&format!("\"k{i}\":{i},"));
    }
    text.push_str("\"end\":0}");
    let mut value = doc(&text);
    let before = format(&value, "");
    let patch = r#"[{"op":"remove","path":"/k5"},{"op":"remove","path":"/end"},{"op":"add","path":"/k5","value":"again"},{"op":"move","from":"/k7","path":"/k8"},{"op":"test","path":"/k9","value":0}]"#;
    assert!(apply_patch(&mut value, &parse_patch(patch).unwrap()).is_err());
    assert_eq!(format(&value, ""), before);
    let o = value.as_object().unwrap();
    for i in 0..100 {
      let n = o.get(&format!("k{i}")).unwrap();
      assert_eq!(compact(n), i.to_string());
    }
  }

  #[test]
  fn a_hundred_thousand_member_object_takes_adds_and_removes_fast() {
    let n = 100_000;
    let mut text = String::from("{\"entries\":{");
    for i in 0..n {
      text.push_str(&format!("\"k{i}\":{{\"n\":{i}}},"));
    }
    text.push_str("\"last\":{}}}");
    let mut value = doc(&text);
    let started = std::time::Instant::now();
    for i in 0..1000 {
      let patch = format!(
        r#"[{{"op":"add","path":"/entries/new{i}","value":{{"n":{i}}}}},{{"op":"remove","path":"/entries/k{}"}},{{"op":"test","path":"/entries/k{}/n","value":{}}}]"#,
        i * 97,
        i * 97 + 1,
        i * 97 + 1
      );
      apply_patch(&mut value, &parse_patch(&patch).unwrap()).unwrap();
    }
    // And 1,000 that fail at the end, so each is rolled back.
    for i in 0..1000 {
      let patch = format!(
        r#"[{{"op":"remove","path":"/entries/k{}"}},{{"op":"add","path":"/entries/x","value":1}},{{"op":"remove","path":"/nope"}}]"#,
        i * 97 + 2
      );
      assert!(apply_patch(&mut value, &parse_patch(&patch).unwrap()).is_err());
    }
    let elapsed = started.elapsed();
    let entries = value
      .as_object()
      .unwrap()
      .get("entries")
      .unwrap()
      .as_object()
      .unwrap();
    assert_eq!(entries.len(), n + 1);
    assert!(
      entries.get("k97").is_none()
        && entries.get("k98").is_some()
        && entries.get("new999").is_some()
    );
    // O(n) per operation would be ~2e8 steps; linear-time work per op shows as seconds here.
    assert!(elapsed.as_secs() < 5, "{elapsed:?}");
  }

  #[test]
  fn patch_shape_errors() {
    let err = |text: &str| parse_patch(text).unwrap_err();
    let at = |index, reason: &str| PatchShapeError {
      index: Some(index),
      reason: reason.into(),
    };
    assert_eq!(
      err("[{\"op\":}]"),
      PatchShapeError {
        index: None,
        reason: "the patch is not valid JSON: unexpected character '}' at line 1, column 8".into()
      }
    );
    assert_eq!(
      err(r#"{"op":"add"}"#).reason,
      "a patch must be an array of operations, not object"
    );
    assert_eq!(
      err("[1]"),
      at(0, "an operation must be an object, not number")
    );
    assert_eq!(
      err(r#"[{"op":"test","path":"","value":1},{"path":"/a"}]"#),
      at(1, "missing \"op\"")
    );
    assert_eq!(
      err(r#"[{"op":1,"path":"/a"}]"#),
      at(0, "\"op\" must be a string, not number")
    );
    assert_eq!(
      err(r#"[{"op":"delete","path":"/a"}]"#),
      at(
        0,
        "unknown op \"delete\": expected add, remove, replace, move, copy or test"
      )
    );
    assert_eq!(err(r#"[{"op":"remove"}]"#), at(0, "missing \"path\""));
    assert_eq!(
      err(r#"[{"op":"remove","path":null}]"#),
      at(0, "\"path\" must be a string, not null")
    );
    assert_eq!(
      err(r#"[{"op":"remove","path":"a"}]"#),
      at(
        0,
        "\"path\": invalid JSON pointer \"a\": it must be empty or start with '/'"
      )
    );
    assert_eq!(
      err(r#"[{"op":"move","path":"/a"}]"#),
      at(0, "missing \"from\"")
    );
    assert_eq!(
      err(r#"[{"op":"copy","path":"/a","from":"/~"}]"#),
      at(
        0,
        "\"from\": invalid JSON pointer \"/~\": '~' must be followed by 0 or 1"
      )
    );
    for op in ["add", "replace", "test"] {
      assert_eq!(
        err(&format!(r#"[{{"op":"{op}","path":"/a"}}]"#)),
        at(0, "missing \"value\"")
      );
    }
    // A null value is a value.
    assert!(parse_patch(r#"[{"op":"add","path":"/a","value":null}]"#).is_ok());
    assert!(parse_patch("[]").unwrap().is_empty());
    let ops = parse_patch(r#"[{"op":"move","from":"/a","path":"/b"}]"#).unwrap();
    assert_eq!(ops[0].name(), "move");
    assert_eq!(ops[0].path().as_str(), "/b");
  }
}
