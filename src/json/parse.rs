//! The parser: one JSON text into a `Value`, exactly the grammar JSON.parse accepts.

use std::sync::Arc;

use super::cursor::Cursor;
use super::scan::skip_container;
use super::value::{Lazy, Member, Object, Value};

/// Deepest nesting `parse` accepts; the tree's recursive walks need a stack sized for it.
pub const MAX_DEPTH: usize = 100_000;

/// From this size on, a document keeps its small containers as text (`Value::Lazy`): a tree of
/// every member of a big index costs several times the file. Smaller ones (most files, every
/// patch and argument) are parsed whole, as the copy of the text would cost more than it saves.
const LAZY_DOC_MIN: usize = 64 << 10;

/// The biggest container text a big document keeps unparsed: an index entry or a record, not a
/// collection of them (the members of a collection are what patches look up).
const LAZY_MAX: usize = 4 << 10;

/// Why a text is not one JSON value. Offsets count bytes from the start of the data (a BOM
/// included); `error_position` gives the message and line/column for the file's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
  Utf8 { offset: usize },
  Syntax { offset: usize },
  TooDeep { depth: usize },
}

/// Parses one JSON text: UTF-8 checked, an optional leading BOM skipped, whitespace = space/tab/
/// CR/LF, exactly ECMA-404 (what JSON.parse accepts). Lone surrogate escapes like "\ud800" are
/// accepted, as JSON.parse does; they stay raw in the string text.
///
/// A big document's small containers come back as `Value::Lazy` over a copy of the text; see
/// `parse_owned` to spare the copy.
pub fn parse(data: &[u8]) -> Result<Value, ParseError> {
  let text = std::str::from_utf8(data).map_err(|e| ParseError::Utf8 {
    offset: e.valid_up_to(),
  })?;
  if data.len() < LAZY_DOC_MIN {
    return parse_text(text, None);
  }
  parse_shared(&Arc::new(text.to_owned()), LAZY_MAX)
}

/// `parse` of a buffer it takes: a big document's unparsed containers share it rather than a
/// copy. On error the buffer comes back with the error, for `error_position`.
pub fn parse_owned(data: Vec<u8>) -> Result<Value, (ParseError, Vec<u8>)> {
  if data.len() < LAZY_DOC_MIN {
    return parse(&data).map_err(|e| (e, data));
  }
  let text = String::from_utf8(data).map_err(|e| {
    let offset = e.utf8_error().valid_up_to();
    (ParseError::Utf8 { offset }, e.into_bytes())
  })?;
  let source = Arc::new(text);
  parse_shared(&source, LAZY_MAX).map_err(|e| {
    // The partial tree is gone, and its references to the text with it.
    let bytes = Arc::try_unwrap(source)
      .map(String::into_bytes)
      .unwrap_or_else(|shared| shared.as_bytes().to_vec());
    (e, bytes)
  })
}

/// `parse` keeping containers of up to `budget` bytes (other than the root) as text.
pub(crate) fn parse_shared(source: &Arc<String>, budget: usize) -> Result<Value, ParseError> {
  let laziness = Laziness {
    source: Arc::clone(source),
    budget,
  };
  parse_text(source, Some(laziness))
}

/// `parse` building the whole tree, however big the document: what `parse` did before `Lazy`.
#[cfg(test)]
pub(crate) fn parse_eagerly(data: &[u8]) -> Result<Value, ParseError> {
  let text = std::str::from_utf8(data).map_err(|e| ParseError::Utf8 {
    offset: e.valid_up_to(),
  })?;
  parse_text(text, None)
}

/// The value of text known to be one valid JSON text without a BOM: a `Lazy`'s.
pub(crate) fn parse_known_valid(text: &str) -> Value {
  parse_text(text, None).expect("a Lazy holds checked JSON text")
}

fn parse_text(text: &str, lazy: Option<Laziness>) -> Result<Value, ParseError> {
  let start = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
  let mut p = Parser {
    text,
    c: Cursor {
      data: text.as_bytes(),
      i: start,
    },
    items: Vec::new(),
    members: Vec::new(),
    lazy,
  };
  let value = p.value(0)?;
  p.skip_whitespace();
  if p.c.i != text.len() {
    return p.syntax();
  }
  Ok(value)
}

struct Laziness {
  /// The text being parsed, shared by the `Lazy` values made from it.
  source: Arc<String>,
  budget: usize,
}

struct Parser<'a> {
  text: &'a str,
  /// The position, and the lexer of the grammar's leaves the scans use too.
  c: Cursor<'a>,
  /// Scratch stacks the open containers collect into, each its own top part: the finished
  /// container then gets one exact-size allocation instead of a growing vector's several.
  items: Vec<Value>,
  members: Vec<Option<Member>>,
  lazy: Option<Laziness>,
}

impl<'a> Parser<'a> {
  fn peek(&self) -> Option<u8> {
    self.c.peek()
  }

  fn syntax<T>(&self) -> Result<T, ParseError> {
    self.c.syntax()
  }

  fn skip_whitespace(&mut self) {
    self.c.skip_whitespace()
  }

  /// A value after optional whitespace; `depth` counts the containers around it.
  fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
    self.skip_whitespace();
    match self.peek() {
      Some(b'{' | b'[') if depth == MAX_DEPTH => Err(ParseError::TooDeep { depth: depth + 1 }),
      Some(open @ (b'{' | b'[')) => {
        if let Some(lazy) = self.lazy_container(depth)? {
          return Ok(lazy);
        }
        if open == b'{' {
          self.object(depth + 1)
        } else {
          self.array(depth + 1)
        }
      }
      Some(b'"') => Ok(Value::String(self.string()?.into())),
      Some(b'-' | b'0'..=b'9') => Ok(Value::Number(self.number()?.into())),
      Some(b't') => self.literal("true", Value::Bool(true)),
      Some(b'f') => self.literal("false", Value::Bool(false)),
      Some(b'n') => self.literal("null", Value::Null),
      _ => self.syntax(),
    }
  }

  /// The container at `i` as a `Lazy`, when this parse keeps containers as text and this one
  /// is small and not the root; `None` to parse it.
  fn lazy_container(&mut self, depth: usize) -> Result<Option<Value>, ParseError> {
    let Some(lazy) = &self.lazy else {
      return Ok(None);
    };
    if depth == 0 {
      return Ok(None);
    }
    let start = self.c.i;
    let Some(end) = skip_container(self.text.as_bytes(), start, depth, lazy.budget)? else {
      return Ok(None);
    };
    if end - start == 2 {
      // `{}` or `[]`: as cheap parsed, and never parsed again.
      return Ok(None);
    }
    self.c.i = end;
    let source = Arc::clone(&lazy.source);
    Ok(Some(Value::Lazy(Lazy::new(source, start, end))))
  }

  fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
    self.c.i += 1;
    self.skip_whitespace();
    if self.peek() == Some(b']') {
      self.c.i += 1;
      return Ok(Value::Array(Vec::new()));
    }
    let base = self.items.len();
    loop {
      let item = self.value(depth)?;
      self.items.push(item);
      self.skip_whitespace();
      match self.peek() {
        Some(b',') => self.c.i += 1,
        Some(b']') => {
          self.c.i += 1;
          return Ok(Value::Array(take_top(&mut self.items, base)));
        }
        _ => return self.syntax(),
      }
    }
  }

  fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
    self.c.i += 1;
    self.skip_whitespace();
    if self.peek() == Some(b'}') {
      self.c.i += 1;
      return Ok(Value::Object(Object::new()));
    }
    let base = self.members.len();
    loop {
      if self.peek() != Some(b'"') {
        return self.syntax();
      }
      let key = self.string()?.into();
      self.skip_whitespace();
      if self.peek() != Some(b':') {
        return self.syntax();
      }
      self.c.i += 1;
      let value = self.value(depth)?;
      self.members.push(Some(Member { key, value }));
      self.skip_whitespace();
      match self.peek() {
        Some(b',') => {
          self.c.i += 1;
          self.skip_whitespace();
        }
        Some(b'}') => {
          self.c.i += 1;
          let slots = take_top(&mut self.members, base);
          return Ok(Value::Object(Object::from_members(slots)));
        }
        _ => return self.syntax(),
      }
    }
  }

  /// The raw text between the quotes; `i` is at the opening quote.
  fn string(&mut self) -> Result<&'a str, ParseError> {
    let start = self.c.i + 1;
    self.c.string()?;
    Ok(&self.text[start..self.c.i - 1])
  }

  /// The number's text as written, checked against the grammar.
  fn number(&mut self) -> Result<&'a str, ParseError> {
    let start = self.c.i;
    self.c.number()?;
    Ok(&self.text[start..self.c.i])
  }

  fn literal(&mut self, word: &str, value: Value) -> Result<Value, ParseError> {
    self.c.literal(word.as_bytes())?;
    Ok(value)
  }
}

/// Scratch stacks at least this long are handed over whole instead of copied.
const HAND_OVER_MIN: usize = 4096;

/// The top part of a scratch stack, from `base`, as an exact-size vector. A big container that is
/// the whole stack takes the stack itself, shrunk in place: a copy would hold it twice at once
/// (megabytes for the entries of a big index) until the parse ends.
fn take_top<T>(stack: &mut Vec<T>, base: usize) -> Vec<T> {
  if base == 0 && stack.len() >= HAND_OVER_MIN {
    let mut all = std::mem::take(stack);
    all.shrink_to_fit();
    return all;
  }
  stack.drain(base..).collect()
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::json::{self, error_position};

  fn number(text: &str) -> String {
    match parse(text.as_bytes()) {
      Ok(Value::Number(n)) => n.into(),
      other => panic!("{text}: {other:?}"),
    }
  }

  #[test]
  fn scalars_keep_their_text() {
    for n in [
      "0",
      "-0",
      "9223372036854775807",
      "18446744073709551616",
      "1e+21",
      "1E400",
      "1.7976931348623157e308",
      "5e-324",
      "-0.0e-0",
      "123456789012345678901234567890.5",
    ] {
      assert_eq!(number(n), n);
    }
    assert!(matches!(parse(br#" "a\u00e9\n" "#), Ok(Value::String(s)) if &*s == r"a\u00e9\n"));
    assert!(matches!(parse(b"true"), Ok(Value::Bool(true))));
    assert!(matches!(parse(b"false"), Ok(Value::Bool(false))));
    assert!(matches!(parse(b"null"), Ok(Value::Null)));
  }

  #[test]
  fn lone_surrogates_and_a_bom_are_accepted() {
    assert!(matches!(parse(br#""\ud800""#), Ok(Value::String(s)) if &*s == r"\ud800"));
    assert!(parse(b"\xEF\xBB\xBF{\"a\":[]}").is_ok());
    assert!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBF{}").is_err());
  }

  #[test]
  fn duplicate_keys_resolve_as_json_parse_does() {
    // JSON.parse('{"a":1,"b":2,"a":3}') is {a: 3, b: 2}: last value, first position.
    let Ok(Value::Object(o)) = parse(br#"{"a":1,"b":2,"a":3,"\u0062":4,"c":5}"#) else {
      panic!()
    };
    let members: Vec<(&str, String)> = o.iter().map(|(k, v)| (k, format!("{v:?}"))).collect();
    assert_eq!(
      members,
      [
        ("a", "Number(\"3\")".into()),
        ("b", "Number(\"4\")".into()),
        ("c", "Number(\"5\")".into())
      ]
    );
    // Same in an object big enough to dedupe by hashing.
    let mut big = String::from("{");
    for i in 0..20 {
      big.push_str(&format!("\"k{i}\":{i},"));
    }
    big.push_str("\"k3\":\"last\"}");
    let Ok(Value::Object(o)) = parse(big.as_bytes()) else {
      panic!()
    };
    assert_eq!(o.len(), 20);
    assert_eq!(o.iter().nth(3).map(|(k, _)| k), Some("k3"));
    assert!(matches!(o.get("k3"), Some(Value::String(s)) if &**s == "last"));
  }

  #[test]
  fn errors_agree_with_error_position() {
    for text in [
      &b"{\"a\": }"[..],
      b"[1,]",
      b"01",
      b"-",
      b"1.",
      b"1e",
      b"\"\\x\"",
      b"\"\\u12G4\"",
      b"\"abc",
      b"\"a\x01\"",
      b"{\"a\" 1}",
      b"{1:2}",
      b"1 2",
      b"{\"a\":1,}",
      b"",
      b"  ",
      b"[",
      b"tru",
      b"nul",
      b"\xC2\xA0",
      b"{\"a\":1}x",
    ] {
      let expected = error_position(text).expect("invalid").offset;
      assert_eq!(
        parse(text).err(),
        Some(ParseError::Syntax { offset: expected }),
        "{}",
        String::from_utf8_lossy(text)
      );
    }
    assert_eq!(
      parse(b"[\"caf\xE9\"]").err(),
      Some(ParseError::Utf8 { offset: 5 })
    );
  }

  #[test]
  fn nesting_up_to_max_depth_parses_and_one_more_is_too_deep() {
    std::thread::Builder::new()
      .stack_size(512 << 20)
      .spawn(|| {
        let nest = |n: usize, open: &str, close: &str| {
          let mut s = open.repeat(n);
          s.push_str(&close.repeat(n));
          s
        };
        let at_max = nest(MAX_DEPTH, "[", "]");
        let value = parse(at_max.as_bytes()).expect("MAX_DEPTH parses");
        assert_eq!(json::format(&value, ""), format!("{at_max}\n").into_bytes());
        drop(value);
        // Every recursive walk copes with a document this deep on the integrator's big stack,
        // which is what this thread has.
        let objects = nest(MAX_DEPTH, "{\"a\":", "}").replace("{\"a\":}", "{}");
        let mut value = parse(objects.as_bytes()).expect("MAX_DEPTH parses");
        let copy = value.clone();
        assert!(json::equal(&value, &copy));
        json::apply_merge(&mut value, &copy);
        let ops = r#"[{"op":"add","path":"/a/a/b","value":1},{"op":"test","path":"","value":0}]"#;
        let ops = json::parse_patch(ops).unwrap();
        assert!(json::apply_patch(&mut value, &ops).is_err());
        assert!(json::equal(&value, &copy));
        drop((value, copy));
        let over = nest(MAX_DEPTH + 1, "[", "]");
        assert_eq!(
          parse(over.as_bytes()).err(),
          Some(ParseError::TooDeep {
            depth: MAX_DEPTH + 1
          })
        );
      })
      .unwrap()
      .join()
      .unwrap();
  }
}
