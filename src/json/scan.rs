//! A pointer lookup over the text itself: the whole document is checked exactly as `parse`
//! checks it, but nothing is built, so reading one entry of a big index costs a scan instead of
//! a tree (allocating and freeing the tree was most of a pointer read's time).

use std::ops::Range;

use super::cursor::Cursor;
use super::parse::{ParseError, MAX_DEPTH};
use super::pointer::{array_index, Pointer};
use super::text::raw_equals;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The byte range in `data` of the value `pointer` names, `None` when it names nothing, or the
/// error `parse(data)` would return: the same grammar, the same offsets, `TooDeep` at the same
/// nesting. Duplicate keys resolve as JSON.parse does (the last one wins, also for what lies
/// below it) and keys compare by decoded content, as `get` on the parsed tree does. The range
/// holds the value as written, inner whitespace and duplicates included: parsing it gives the
/// value `get` would.
///
/// Iterative: the stack of open containers is one byte each, so this needs no big thread stack.
pub fn find_raw(data: &[u8], pointer: &Pointer) -> Result<Option<Range<usize>>, ParseError> {
  let text = std::str::from_utf8(data).map_err(|e| ParseError::Utf8 {
    offset: e.valid_up_to(),
  })?;
  let tokens = pointer.tokens();
  let mut scan = Scan {
    text,
    c: Cursor {
      data,
      i: if data.starts_with(BOM) { BOM.len() } else { 0 },
    },
    tokens,
    indexes: tokens.iter().map(|t| array_index(t)).collect(),
    elements: vec![0; tokens.len()],
    open: Vec::new(),
    path: 0,
  };
  scan.run()
}

/// Deepest nesting a container kept as text (`Value::Lazy`) may have inside: a bound on the
/// work `skip_container` wastes on a deeply nested document, where each level is tried.
pub(crate) const LAZY_DEPTH: usize = 32;

/// The end of the array or object at `start` (a `{` or `[` with `depth` containers around it),
/// checked as `parse` checks it, when it ends within `budget` bytes and nests at most
/// `LAZY_DEPTH` levels inside (and so never reaches `MAX_DEPTH`); `None` when it does not, for
/// the caller to parse it instead. An error is the one `parse` would meet first: the scan reads
/// the text in the same order.
pub(crate) fn skip_container(
  data: &[u8],
  start: usize,
  depth: usize,
  budget: usize,
) -> Result<Option<usize>, ParseError> {
  let mut c = Cursor { data, i: start };
  let limit = start.saturating_add(budget);
  // One bit per open container, innermost lowest: 1 for an object.
  let mut objects: u64 = 0;
  let mut open = 0;
  'value: loop {
    c.skip_whitespace();
    match c.peek() {
      Some(b'{' | b'[') if open == LAZY_DEPTH || depth + open == MAX_DEPTH => return Ok(None),
      Some(b'{') => {
        c.i += 1;
        c.skip_whitespace();
        if c.peek() == Some(b'}') {
          c.i += 1;
        } else {
          if c.peek() != Some(b'"') {
            return c.syntax();
          }
          objects = objects << 1 | 1;
          open += 1;
          c.name_and_colon()?;
          continue 'value;
        }
      }
      Some(b'[') => {
        c.i += 1;
        c.skip_whitespace();
        if c.peek() == Some(b']') {
          c.i += 1;
        } else {
          objects <<= 1;
          open += 1;
          continue 'value;
        }
      }
      _ => c.scalar()?,
    }
    loop {
      if open == 0 {
        return Ok(Some(c.i));
      }
      if c.i > limit {
        return Ok(None);
      }
      c.skip_whitespace();
      let object = objects & 1 == 1;
      match c.peek() {
        Some(b',') if object => {
          c.i += 1;
          c.skip_whitespace();
          if c.peek() != Some(b'"') {
            return c.syntax();
          }
          c.name_and_colon()?;
          continue 'value;
        }
        Some(b',') => {
          c.i += 1;
          continue 'value;
        }
        Some(b'}') if object => {}
        Some(b']') if !object => {}
        _ => return c.syntax(),
      }
      c.i += 1;
      objects >>= 1;
      open -= 1;
    }
  }
}

struct Scan<'a> {
  text: &'a str,
  c: Cursor<'a>,
  tokens: &'a [String],
  /// Each token as an array index, for the arrays on the path.
  indexes: Vec<Option<usize>>,
  /// Per level, the index of the current element of the array on the path at that level.
  elements: Vec<usize>,
  /// Open containers, innermost last: b'[' or b'{'.
  open: Vec<u8>,
  /// How many of the outermost open containers lie on the pointer's path above its target:
  /// the members of the innermost of them are the ones compared with the next token.
  path: usize,
}

impl Scan<'_> {
  /// Whether the members of the innermost open container are compared with a token.
  fn on_path_inside(&self) -> bool {
    self.path == self.open.len() && self.path > 0
  }

  /// Whether the element just begun (its index in `elements`) is the one the token names.
  fn element_matches(&self) -> bool {
    let level = self.open.len() - 1;
    self.indexes[level] == Some(self.elements[level])
  }

  /// Bookkeeping for a container just opened (pushed) at `start`: the target, or one more
  /// level of the path when it lies on it.
  fn entered(&mut self, on_path: bool, start: usize, target_start: &mut Option<usize>) {
    if !on_path {
      return;
    }
    let level = self.open.len() - 1;
    if level == self.tokens.len() {
      *target_start = Some(start);
    } else {
      self.path = level + 1;
    }
  }

  /// A member name and its colon: whether the name is the token of its (on-path) object.
  fn member_name(&mut self) -> Result<bool, ParseError> {
    let start = self.c.i + 1;
    self.c.string()?;
    let end = self.c.i - 1;
    let on_path = self.on_path_inside()
      && raw_equals(
        &self.text[start..end],
        self.tokens[self.open.len() - 1].as_bytes(),
      );
    self.c.skip_whitespace();
    if self.c.peek() != Some(b':') {
      return self.c.syntax();
    }
    self.c.i += 1;
    Ok(on_path)
  }

  fn run(&mut self) -> Result<Option<Range<usize>>, ParseError> {
    let target = self.tokens.len();
    let mut found: Option<Range<usize>> = None;
    // The target's start while it is an open container.
    let mut target_start: Option<usize> = None;
    // Whether the value about to be read is on the path: the root, then each member or element
    // whose key or index is the next token.
    let mut on_path = true;
    'value: loop {
      self.c.skip_whitespace();
      let start = self.c.i;
      let level = self.open.len();
      // A later duplicate replaces all an earlier one held, what was found below it included.
      if on_path {
        found = None;
      }
      match self.c.peek() {
        Some(b'{' | b'[') if level == MAX_DEPTH => {
          return Err(ParseError::TooDeep {
            depth: MAX_DEPTH + 1,
          })
        }
        Some(b'{') => {
          self.c.i += 1;
          self.c.skip_whitespace();
          if self.c.peek() == Some(b'}') {
            self.c.i += 1;
          } else {
            if self.c.peek() != Some(b'"') {
              return self.c.syntax();
            }
            self.open.push(b'{');
            self.entered(on_path, start, &mut target_start);
            on_path = self.member_name()?;
            continue 'value;
          }
        }
        Some(b'[') => {
          self.c.i += 1;
          self.c.skip_whitespace();
          if self.c.peek() == Some(b']') {
            self.c.i += 1;
          } else {
            self.open.push(b'[');
            self.entered(on_path, start, &mut target_start);
            on_path = self.on_path_inside() && {
              self.elements[level] = 0;
              self.element_matches()
            };
            continue 'value;
          }
        }
        _ => self.c.scalar()?,
      }
      // A scalar or an empty container ended.
      if on_path && level == target {
        found = Some(start..self.c.i);
      }
      // Close containers until one continues with another value.
      loop {
        self.c.skip_whitespace();
        match (self.open.last(), self.c.peek()) {
          (None, None) => return Ok(found),
          (None, Some(_)) => return self.c.syntax(),
          (Some(b'['), Some(b',')) => {
            self.c.i += 1;
            on_path = self.on_path_inside() && {
              self.elements[self.open.len() - 1] += 1;
              self.element_matches()
            };
            continue 'value;
          }
          (Some(b'['), Some(b']')) | (Some(b'{'), Some(b'}')) => {
            self.c.i += 1;
            self.open.pop();
            let depth = self.open.len();
            if depth == target {
              if let Some(start) = target_start.take() {
                found = Some(start..self.c.i);
              }
            }
            self.path = self.path.min(depth);
          }
          (Some(b'{'), Some(b',')) => {
            self.c.i += 1;
            self.c.skip_whitespace();
            if self.c.peek() != Some(b'"') {
              return self.c.syntax();
            }
            on_path = self.member_name()?;
            continue 'value;
          }
          _ => return self.c.syntax(),
        }
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::json::testing::{document, pointers, Rng, TOKENS};
  use crate::json::{format, get, parse};

  /// What `find_raw` must agree with: the tree's answer, formatted compactly.
  fn through_tree(data: &[u8], pointer: &Pointer) -> Result<Option<Vec<u8>>, ParseError> {
    parse(data).map(|doc| get(&doc, pointer).map(|v| format(v, "")))
  }

  fn check(data: &[u8], pointer: &Pointer) {
    let expected = through_tree(data, pointer);
    let found = find_raw(data, pointer);
    let what = || {
      format!(
        "{:?} in {:?}",
        pointer.as_str(),
        String::from_utf8_lossy(data)
      )
    };
    match (&found, &expected) {
      (Ok(Some(range)), Ok(Some(value))) => {
        let raw = &data[range.clone()];
        assert!(
          !raw.is_empty()
            && !raw[0].is_ascii_whitespace()
            && !raw[raw.len() - 1].is_ascii_whitespace(),
          "{}: {:?}",
          what(),
          String::from_utf8_lossy(raw)
        );
        let reparsed = parse(raw).unwrap_or_else(|e| panic!("{}: {e:?}", what()));
        assert_eq!(
          String::from_utf8_lossy(&format(&reparsed, "")),
          String::from_utf8_lossy(value),
          "{}",
          what()
        );
      }
      (Ok(None), Ok(None)) => {}
      (Err(a), Err(b)) => assert_eq!(a, b, "{}", what()),
      _ => panic!("{}: find_raw {found:?}, tree {expected:?}", what()),
    }
  }

  fn ptr(text: &str) -> Pointer {
    Pointer::parse(text).unwrap()
  }

  #[test]
  fn agrees_with_the_tree_on_generated_documents() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..600 {
      let mut text = String::new();
      document(&mut rng, 0, &mut text);
      let doc = parse(text.as_bytes()).expect(&text);
      let mut all = Vec::new();
      pointers(&doc, &mut Vec::new(), &mut all);
      for _ in 0..8 {
        let n = rng.below(4);
        all.push(Pointer::from_tokens((0..n).map(|_| rng.pick(TOKENS))));
      }
      for pointer in &all {
        check(text.as_bytes(), pointer);
      }
    }
  }

  #[test]
  fn broken_documents_fail_as_parse_fails() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let pointers = [ptr(""), ptr("/a"), ptr("/a/0"), ptr("/b/1/a")];
    for _ in 0..60 {
      let mut text = String::new();
      document(&mut rng, 0, &mut text);
      let data = text.as_bytes();
      for cut in 0..data.len() {
        check(&data[..cut], &pointers[cut % pointers.len()]);
      }
      for _ in 0..20 {
        let mut bad = data.to_vec();
        let at = rng.below(bad.len());
        bad[at] = [
          b'}', b']', b',', b':', b'"', b'x', b'0', b' ', b'\\', 0x01, 0xFF, b'{', b'[',
        ][rng.below(13)];
        for pointer in &pointers {
          check(&bad, pointer);
        }
      }
    }
  }

  #[test]
  fn the_last_duplicate_wins_with_everything_below_it() {
    let cases: &[(&str, &str, Option<&str>)] = &[
      (r#"{"a":{"b":1},"a":2}"#, "/a/b", None),
      (r#"{"a":{"b":1},"a":{"c":2}}"#, "/a/b", None),
      (r#"{"a":{"b":1},"a":{"b":[3]}}"#, "/a/b", Some("[3]")),
      (r#"{"a":{"b":1},"\u0061":{"b":2},"c":0}"#, "/a/b", Some("2")),
      (r#"{"a":1,"a":{}}"#, "/a", Some("{}")),
      (r#"{"x":{"a":1,"a":2},"x":{"b":3}}"#, "/x/a", None),
      (r#"{"x":[{"a":1}],"y":{"x":5}}"#, "/x/0/a", Some("1")),
      (r#"{"a\/b":1,"m~n":2}"#, "/a~1b", Some("1")),
      (r#"{"a\/b":1,"m~n":2}"#, "/m~0n", Some("2")),
      (r#"{"\ud83d\ude00":1}"#, "/\u{1F600}", Some("1")),
      (r#"{"\ud800":1}"#, "/\u{FFFD}", None),
      (r#"[10,[20,21],30]"#, "/1/1", Some("21")),
      (r#"[10,[20,21],30]"#, "/-", None),
      (r#"[10,[20,21],30]"#, "/01", None),
      (r#"[10,[20,21],30]"#, "/3", None),
      (r#"[10,[20,21],30]"#, "/99999999999999999999999", None),
      (r#"{"0":"o"}"#, "/0", Some("\"o\"")),
      (r#"{"a":[1]}"#, "/a/0/b", None),
      (r#"{"a":"str"}"#, "/a/0", None),
      (
        " \t[ 1 , { \"a\" : [ ] } ]\n",
        "/1",
        Some("{ \"a\" : [ ] }"),
      ),
      (
        " \t[ 1 , { \"a\" : [ ] } ]\n",
        "",
        Some("[ 1 , { \"a\" : [ ] } ]"),
      ),
      ("\u{FEFF}{\"a\":1}", "/a", Some("1")),
    ];
    for &(text, pointer, expected) in cases {
      let data = text.as_bytes();
      let found = find_raw(data, &ptr(pointer)).unwrap();
      assert_eq!(found.map(|r| &text[r]), expected, "{pointer:?} in {text:?}");
      check(data, &ptr(pointer));
    }
  }

  #[test]
  fn nesting_is_limited_as_parse_limits_it_without_a_big_stack() {
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let at_max = nest(MAX_DEPTH);
    let found = find_raw(at_max.as_bytes(), &ptr("/0/0")).unwrap();
    assert_eq!(found, Some(2..at_max.len() - 2));
    assert_eq!(find_raw(at_max.as_bytes(), &ptr("/1")).unwrap(), None);
    assert_eq!(
      find_raw(nest(MAX_DEPTH + 1).as_bytes(), &ptr("")),
      Err(ParseError::TooDeep {
        depth: MAX_DEPTH + 1
      })
    );
    // The depth error comes before a later syntax error, and after an earlier one.
    let mut late = nest(MAX_DEPTH + 1);
    late.push('x');
    assert!(matches!(
      find_raw(late.as_bytes(), &ptr("")),
      Err(ParseError::TooDeep { .. })
    ));
    let early = format!("[1,]{}", nest(MAX_DEPTH + 1));
    assert_eq!(
      find_raw(format!("[{early}]").as_bytes(), &ptr("")),
      Err(ParseError::Syntax { offset: 4 })
    );
  }

  #[test]
  fn invalid_utf8_is_reported_first() {
    assert_eq!(
      find_raw(b"[\"caf\xE9\", x]", &ptr("")),
      Err(ParseError::Utf8 { offset: 5 })
    );
  }
}
