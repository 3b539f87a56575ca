//! The JSON tree: values that keep their source text, objects that keep their member order.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use super::parse::parse_known_valid;
use super::text::{decode, escape, raw_equals};

/// A JSON value that keeps the file's own text where it can: numbers as written (never
/// re-formatted: big integers and `1e+21` stay exactly as written), strings as their raw escaped
/// text between the quotes (so output reproduces the input byte for byte), objects in member order.
#[derive(Debug, Clone)]
pub enum Value {
  Null,
  Bool(bool),
  /// The number's text as written.
  Number(Box<str>),
  /// The raw text between the quotes, escapes still in place.
  String(Box<str>),
  Array(Vec<Value>),
  Object(Object),
  /// An array or object of a big document still as its text: see `Lazy`.
  Lazy(Lazy),
}

/// A container's checked text, parsed when something looks inside it. A big document is held
/// as a tree of its big containers whose small ones stay text, sharing the file's one buffer:
/// a tree of every string and number costs several times the file, and a patch touches few
/// members. Reads through `&Value` see the parsed form (cached here); changes parse it in
/// place (`resolve_mut`); writing and comparing parse it for the moment only, so that a whole
/// document is never held parsed twice.
#[derive(Clone)]
pub struct Lazy {
  source: Arc<String>,
  start: usize,
  end: usize,
  parsed: OnceLock<Box<Value>>,
}

impl Lazy {
  pub(crate) fn new(source: Arc<String>, start: usize, end: usize) -> Lazy {
    Lazy {
      source,
      start,
      end,
      parsed: OnceLock::new(),
    }
  }

  /// The text as written: one valid JSON array or object.
  pub fn raw(&self) -> &str {
    &self.source[self.start..self.end]
  }

  fn parse(&self) -> Value {
    parse_known_valid(self.raw())
  }

  /// The parsed value, kept for later reads.
  pub fn get(&self) -> &Value {
    self.parsed.get_or_init(|| Box::new(self.parse()))
  }

  /// The parsed value without keeping it (unless it was kept already).
  pub fn value(&self) -> Cow<'_, Value> {
    match self.parsed.get() {
      Some(v) => Cow::Borrowed(v),
      None => Cow::Owned(self.parse()),
    }
  }

  fn take(&mut self) -> Value {
    match self.parsed.take() {
      Some(v) => *v,
      None => self.parse(),
    }
  }
}

impl fmt::Debug for Lazy {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_tuple("Lazy").field(&self.raw()).finish()
  }
}

impl Value {
  /// A string value holding `s`, escaped as JSON.stringify escapes it.
  pub fn string(s: &str) -> Value {
    Value::String(escape(s).into_boxed_str())
  }

  /// This value, parsed if it is `Lazy` (kept parsed there): never `Lazy` itself.
  pub fn resolved(&self) -> &Value {
    match self {
      Value::Lazy(lazy) => lazy.get(),
      v => v,
    }
  }

  /// This value, parsed if it is `Lazy`.
  pub fn into_resolved(mut self) -> Value {
    self.resolve_mut();
    self
  }

  /// This value, made parsed in place if it is `Lazy`: never `Lazy` itself.
  pub fn resolve_mut(&mut self) -> &mut Value {
    if let Value::Lazy(lazy) = self {
      *self = lazy.take();
    }
    self
  }

  pub fn as_object(&self) -> Option<&Object> {
    match self.resolved() {
      Value::Object(o) => Some(o),
      _ => None,
    }
  }

  pub fn as_object_mut(&mut self) -> Option<&mut Object> {
    match self.resolve_mut() {
      Value::Object(o) => Some(o),
      _ => None,
    }
  }

  pub fn as_array(&self) -> Option<&Vec<Value>> {
    match self.resolved() {
      Value::Array(a) => Some(a),
      _ => None,
    }
  }

  pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
    match self.resolve_mut() {
      Value::Array(a) => Some(a),
      _ => None,
    }
  }

  /// The decoded content of a string value; a lone surrogate escape becomes U+FFFD.
  pub fn as_string(&self) -> Option<String> {
    match self {
      Value::String(raw) => Some(String::from_utf8_lossy(&decode(raw)).into_owned()),
      _ => None,
    }
  }

  /// How many levels of arrays and objects this value nests (a scalar 0, `[]` 1), as the
  /// parser counts them against `MAX_DEPTH`. Iterative: it must not recurse as deep as it
  /// measures.
  pub fn nesting(&self) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(self, 0usize)];
    while let Some((v, above)) = stack.pop() {
      match v {
        Value::Array(a) => {
          deepest = deepest.max(above + 1);
          stack.extend(a.iter().map(|x| (x, above + 1)));
        }
        Value::Object(o) => {
          deepest = deepest.max(above + 1);
          stack.extend(o.iter().map(|(_, x)| (x, above + 1)));
        }
        Value::Lazy(lazy) => deepest = deepest.max(above + super::text::nesting(lazy.raw())),
        _ => deepest = deepest.max(above),
      }
    }
    deepest
  }

  /// The JSON type name, for messages: "null", "boolean", "number", "string", "array", "object".
  pub fn kind(&self) -> &'static str {
    match self {
      Value::Null => "null",
      Value::Bool(_) => "boolean",
      Value::Number(_) => "number",
      Value::String(_) => "string",
      Value::Array(_) => "array",
      Value::Object(_) => "object",
      Value::Lazy(lazy) if lazy.raw().starts_with('[') => "array",
      Value::Lazy(_) => "object",
    }
  }
}

pub(crate) struct Member {
  /// Raw key text between the quotes, escapes still in place.
  pub(crate) key: Box<str>,
  pub(crate) value: Value,
}

/// Decoded key (WTF-8, see `text::decode`) to slot.
type Index = HashMap<Box<[u8]>, usize>;

/// Below this many slots a lookup scans: building a hash index would cost more than it saves.
const INDEX_MIN: usize = 16;

/// An object's members in order, looked up by decoded key.
///
/// Removing a member leaves an empty slot instead of shifting the rest, so that a removal is
/// O(1) and the index (decoded key to slot) stays valid; `remove` returns the slot and
/// `insert_at` fills it again, which is how a failed patch is undone. Slots are renumbered only
/// by `compact` (and `insert_at` into an occupied slot); positions returned before that are void.
/// `apply_patch` and `apply_merge` compact once holes outnumber members; a caller that removes
/// through this API directly can call `compact_if_sparse` for the same effect.
#[derive(Default)]
pub struct Object {
  slots: Vec<Option<Member>>,
  live: usize,
  /// Built on the first lookup in a big object, then kept up to date by every change.
  index: OnceLock<Box<Index>>,
}

impl Object {
  pub fn new() -> Object {
    Object::default()
  }

  /// The parser's members (all `Some`) in order, duplicates resolved as JSON.parse does: the
  /// last value wins, at the position of the first occurrence.
  pub(crate) fn from_members(mut slots: Vec<Option<Member>>) -> Object {
    let duplicates = duplicates(&slots);
    if !duplicates.is_empty() {
      for (later, first) in duplicates {
        let value = slots[later].take().map(|m| m.value);
        if let (Some(Some(m)), Some(value)) = (slots.get_mut(first), value) {
          m.value = value;
        }
      }
      slots.retain(Option::is_some);
    }
    Object {
      live: slots.len(),
      slots,
      index: OnceLock::new(),
    }
  }

  pub fn len(&self) -> usize {
    self.live
  }

  pub fn is_empty(&self) -> bool {
    self.live == 0
  }

  /// Members in order: raw key text and value.
  pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
    self.slots.iter().flatten().map(|m| (&*m.key, &m.value))
  }

  pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Value)> {
    self
      .slots
      .iter_mut()
      .flatten()
      .map(|m| (&*m.key, &mut m.value))
  }

  pub fn get(&self, key: &str) -> Option<&Value> {
    self.get_decoded(key.as_bytes())
  }

  pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
    let slot = self.find(key.as_bytes())?;
    self.value_at_mut(slot)
  }

  pub fn contains_key(&self, key: &str) -> bool {
    self.find(key.as_bytes()).is_some()
  }

  /// Lookup by decoded key bytes (WTF-8), which also reaches keys holding a lone surrogate.
  pub(crate) fn get_decoded(&self, key: &[u8]) -> Option<&Value> {
    let slot = self.find(key)?;
    self.slots[slot].as_ref().map(|m| &m.value)
  }

  /// The slot holding the decoded key `key`.
  pub(crate) fn find(&self, key: &[u8]) -> Option<usize> {
    if self.slots.len() < INDEX_MIN && self.index.get().is_none() {
      return self
        .slots
        .iter()
        .position(|m| m.as_ref().is_some_and(|m| raw_equals(&m.key, key)));
    }
    let index = self.index.get_or_init(|| Box::new(self.build_index()));
    index.get(key).copied()
  }

  fn build_index(&self) -> Index {
    let mut index = Index::with_capacity(self.live);
    for (slot, m) in self.slots.iter().enumerate() {
      if let Some(m) = m {
        index.insert(decode(&m.key).into(), slot);
      }
    }
    index
  }

  /// Sets the member with decoded key `key`: an existing one keeps its position (and its raw
  /// key text) and the old value is returned; a new one goes last, its key escaped as
  /// JSON.stringify would write it.
  pub fn insert(&mut self, key: &str, value: Value) -> Option<Value> {
    if let Some(slot) = self.find(key.as_bytes()) {
      return self.replace_at(slot, value);
    }
    self.push(escape(key).into_boxed_str(), value);
    None
  }

  /// As `insert`, with the key given as raw (escaped) JSON text.
  pub fn insert_raw(&mut self, raw_key: Box<str>, value: Value) -> Option<Value> {
    if let Some(slot) = self.find(&decode(&raw_key)) {
      return self.replace_at(slot, value);
    }
    self.push(raw_key, value);
    None
  }

  fn replace_at(&mut self, slot: usize, value: Value) -> Option<Value> {
    let m = self.slots[slot].as_mut()?;
    Some(std::mem::replace(&mut m.value, value))
  }

  fn push(&mut self, key: Box<str>, value: Value) {
    let slot = self.slots.len();
    if let Some(index) = self.index.get_mut() {
      index.insert(decode(&key).into(), slot);
    }
    self.slots.push(Some(Member { key, value }));
    self.live += 1;
  }

  /// Removes the member with decoded key `key`: its position (for `insert_at`), raw key, value.
  pub fn remove(&mut self, key: &str) -> Option<(usize, Box<str>, Value)> {
    let slot = self.find(key.as_bytes())?;
    self.remove_slot(slot)
  }

  pub(crate) fn value_at_mut(&mut self, slot: usize) -> Option<&mut Value> {
    self.slots.get_mut(slot)?.as_mut().map(|m| &mut m.value)
  }

  pub(crate) fn remove_slot(&mut self, slot: usize) -> Option<(usize, Box<str>, Value)> {
    let m = self.slots.get_mut(slot)?.take()?;
    self.live -= 1;
    if let Some(index) = self.index.get_mut() {
      index.remove(&*decode(&m.key));
    }
    // The last slot goes away entirely, so that add-then-undo leaves no trace.
    if slot + 1 == self.slots.len() {
      self.slots.pop();
    }
    Some((slot, m.key, m.value))
  }

  /// Puts a member at `position` as returned by `remove` (undo); the key must not be present.
  /// A position taken by another member shifts it and those after it.
  pub fn insert_at(&mut self, position: usize, raw_key: Box<str>, value: Value) {
    debug_assert!(self.find(&decode(&raw_key)).is_none(), "duplicate key");
    if position >= self.slots.len() {
      self.slots.resize_with(position, || None);
      self.push(raw_key, value);
      return;
    }
    if self.slots[position].is_none() {
      if let Some(index) = self.index.get_mut() {
        index.insert(decode(&raw_key).into(), position);
      }
      self.slots[position] = Some(Member {
        key: raw_key,
        value,
      });
    } else {
      self.slots.insert(
        position,
        Some(Member {
          key: raw_key,
          value,
        }),
      );
      self.index = OnceLock::new();
    }
    self.live += 1;
  }

  /// Drops the empty slots removals left; positions returned by `remove` become void.
  pub fn compact(&mut self) {
    if self.slots.len() != self.live {
      self.slots.retain(Option::is_some);
      self.index = OnceLock::new();
    }
  }

  /// `compact` once empty slots outnumber members, so repeated removals cost O(1) amortised.
  pub fn compact_if_sparse(&mut self) {
    let holes = self.slots.len() - self.live;
    if holes > INDEX_MIN && holes > self.live {
      self.compact();
    }
  }
}

/// Pairs (later, first) of slots whose keys decode alike, in order of the later one.
fn duplicates(slots: &[Option<Member>]) -> Vec<(usize, usize)> {
  let keys = slots.iter().map(|m| m.as_ref().map_or("", |m| &m.key));
  let mut found = Vec::new();
  if slots.len() <= 16 {
    // Small objects, the common case: pairwise beats hashing.
    let keys: Vec<&str> = keys.collect();
    for later in 1..keys.len() {
      let decoded = decode(keys[later]);
      if let Some(first) = (0..later).find(|&k| raw_equals(keys[k], &decoded)) {
        found.push((later, first));
      }
    }
    return found;
  }
  let mut seen = HashMap::with_capacity(slots.len());
  for (later, key) in keys.enumerate() {
    match seen.entry(decode(key)) {
      Entry::Occupied(e) => found.push((later, *e.get())),
      Entry::Vacant(e) => {
        e.insert(later);
      }
    }
  }
  found
}

impl Clone for Object {
  /// A copy without empty slots or index: the copy is compact and builds its own index.
  fn clone(&self) -> Object {
    let slots: Vec<Option<Member>> = self
      .iter()
      .map(|(key, value)| {
        Some(Member {
          key: key.into(),
          value: value.clone(),
        })
      })
      .collect();
    Object {
      live: slots.len(),
      slots,
      index: OnceLock::new(),
    }
  }
}

impl fmt::Debug for Object {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_map().entries(self.iter()).finish()
  }
}

impl<K: AsRef<str>> FromIterator<(K, Value)> for Object {
  /// Members from decoded keys, as `insert` would add them one by one.
  fn from_iter<T: IntoIterator<Item = (K, Value)>>(iter: T) -> Object {
    let mut object = Object::new();
    for (key, value) in iter {
      object.insert(key.as_ref(), value);
    }
    object
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn num(n: usize) -> Value {
    Value::Number(n.to_string().into())
  }

  fn keys(o: &Object) -> Vec<&str> {
    o.iter().map(|(k, _)| k).collect()
  }

  #[test]
  fn insert_keeps_positions_and_appends_new_keys() {
    let mut o: Object = [("a", num(1)), ("b", num(2))].into_iter().collect();
    assert!(o.insert("a", num(3)).is_some());
    assert!(o.insert("c", num(4)).is_none());
    assert_eq!(keys(&o), ["a", "b", "c"]);
    assert!(matches!(o.get("a"), Some(Value::Number(n)) if &**n == "3"));
    assert_eq!(o.len(), 3);
  }

  #[test]
  fn new_keys_are_escaped_and_found_by_decoded_text() {
    let mut o = Object::new();
    o.insert("a\"b\n", Value::Null);
    assert_eq!(keys(&o), ["a\\\"b\\n"]);
    assert!(o.get("a\"b\n").is_some());
    o.insert_raw(r"\u0063".into(), Value::Null);
    assert!(o.get("c").is_some());
    // An existing key keeps its own spelling.
    o.insert("c", Value::Bool(true));
    assert_eq!(keys(&o), ["a\\\"b\\n", "\\u0063"]);
  }

  #[test]
  fn remove_and_insert_at_restore_the_order() {
    for size in [5, 100] {
      let mut o: Object = (0..size).map(|i| (format!("k{i}"), num(i))).collect();
      let before: Vec<String> = keys(&o).iter().map(|k| k.to_string()).collect();
      let (p1, k1, v1) = o.remove("k2").unwrap();
      let (p2, k2, v2) = o.remove(&format!("k{}", size - 1)).unwrap();
      assert_eq!(o.len(), size - 2);
      assert!(o.get("k2").is_none());
      o.insert("new", Value::Null);
      o.remove("new");
      o.insert_at(p2, k2, v2);
      o.insert_at(p1, k1, v1);
      assert_eq!(keys(&o), before);
      assert!(matches!(o.get("k2"), Some(Value::Number(n)) if &**n == "2"));
    }
  }

  #[test]
  fn insert_at_an_occupied_position_shifts_the_rest() {
    let mut o: Object = (0..20).map(|i| (format!("k{i}"), num(i))).collect();
    assert!(o.get("k19").is_some()); // builds the index
    o.insert_at(0, "first".into(), Value::Null);
    assert_eq!(keys(&o)[..2], ["first", "k0"]);
    assert!(matches!(o.get("k19"), Some(Value::Number(n)) if &**n == "19"));
    assert_eq!(o.len(), 21);
  }

  #[test]
  fn compaction_drops_holes_and_keeps_lookups_right() {
    let mut o: Object = (0..100).map(|i| (format!("k{i}"), num(i))).collect();
    for i in (0..100).step_by(2) {
      o.remove(&format!("k{i}"));
    }
    o.compact_if_sparse();
    assert_eq!(o.slots.len(), 100); // 50 holes, 50 members: not yet sparse
    o.remove("k1");
    o.compact_if_sparse();
    assert_eq!(o.slots.len(), 49);
    assert!(matches!(o.get("k99"), Some(Value::Number(n)) if &**n == "99"));
    assert!(o.get("k98").is_none());
  }

  #[test]
  fn a_clone_is_compact_and_equal() {
    let mut o: Object = (0..30).map(|i| (format!("k{i}"), num(i))).collect();
    o.remove("k3");
    let c = o.clone();
    assert_eq!(c.slots.len(), 29);
    assert_eq!(keys(&c), keys(&o));
    assert!(c.get("k29").is_some());
  }

  #[test]
  fn value_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Value>();
  }
}
