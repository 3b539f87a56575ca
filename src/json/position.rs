//! Where a JSON file stops being valid, as the readers decide it: UTF-8 first, then V8's grammar.

/// The first error in a JSON file. `offset` counts bytes from the start of the file (a BOM
/// included); `line` and `column` are 1-based, the column counted in bytes too.
#[derive(Debug, PartialEq, Eq)]
pub struct ErrorPosition {
  pub line: usize,
  pub column: usize,
  pub offset: usize,
  pub reason: String,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The first error in `data`, or `None` when it is one valid JSON text (after an optional BOM).
///
/// The readers decode with a fatal UTF-8 decoder and then call `JSON.parse`, so invalid UTF-8 is
/// reported first, and the grammar is exactly ECMA-404's, which V8 implements: each error is put
/// where V8 puts it. The scan is iterative (an explicit stack of open containers), so nesting
/// depth is limited by memory only, as in V8.
pub fn error_position(data: &[u8]) -> Option<ErrorPosition> {
  let (offset, reason) = match std::str::from_utf8(data) {
    Err(e) => {
      let at = e.valid_up_to();
      let reason = match e.error_len() {
        Some(_) => format!("invalid UTF-8 byte 0x{:02X}", data[at]),
        None => "incomplete UTF-8 sequence at the end of the file".to_string(),
      };
      (at, reason)
    }
    Ok(_) => {
      let start = if data.starts_with(BOM) { BOM.len() } else { 0 };
      Scanner { data, i: start }.run().err()?
    }
  };
  Some(locate(data, offset, reason))
}

fn locate(data: &[u8], offset: usize, reason: String) -> ErrorPosition {
  let before = &data[..offset];
  let line_start = before
    .iter()
    .rposition(|b| *b == b'\n')
    .map_or(0, |nl| nl + 1);
  ErrorPosition {
    line: 1 + before.iter().filter(|b| **b == b'\n').count(),
    column: offset - line_start + 1,
    offset,
    reason,
  }
}

type Failure = (usize, String);

struct Scanner<'a> {
  data: &'a [u8],
  i: usize,
}

impl Scanner<'_> {
  fn peek(&self) -> Option<u8> {
    self.data.get(self.i).copied()
  }

  fn skip_whitespace(&mut self) {
    while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
      self.i += 1;
    }
  }

  fn fail<T>(&self, at: usize, reason: &str) -> Result<T, Failure> {
    Err((at, reason.to_string()))
  }

  /// "Unexpected end of input" at the end, else "unexpected character" naming it.
  fn unexpected<T>(&self, at: usize) -> Result<T, Failure> {
    if at >= self.data.len() {
      return self.fail(self.data.len(), "unexpected end of input");
    }
    // `data` is valid UTF-8 here, and `at` is always the start of a character.
    let ch = std::str::from_utf8(&self.data[at..])
      .ok()
      .and_then(|s| s.chars().next())
      .unwrap_or('\u{FFFD}');
    Err((at, format!("unexpected character {ch:?}")))
  }

  fn run(mut self) -> Result<(), Failure> {
    // Open containers, innermost last: b'[' or b'{'.
    let mut open: Vec<u8> = Vec::new();
    'value: loop {
      // A value is expected here.
      self.skip_whitespace();
      match self.peek() {
        Some(b'{') => {
          self.i += 1;
          self.skip_whitespace();
          if self.peek() == Some(b'}') {
            self.i += 1;
          } else {
            if self.peek() != Some(b'"') {
              return self.fail(self.i, "expected a property name or '}'");
            }
            self.member_name()?;
            open.push(b'{');
            continue 'value;
          }
        }
        Some(b'[') => {
          self.i += 1;
          self.skip_whitespace();
          if self.peek() == Some(b']') {
            self.i += 1;
          } else {
            open.push(b'[');
            continue 'value;
          }
        }
        Some(b'"') => self.string()?,
        Some(b'-' | b'0'..=b'9') => self.number()?,
        Some(b't') => self.literal(b"true")?,
        Some(b'f') => self.literal(b"false")?,
        Some(b'n') => self.literal(b"null")?,
        _ => return self.unexpected(self.i),
      }
      // A value ended: close containers until one continues with another value.
      loop {
        self.skip_whitespace();
        match (open.last(), self.peek()) {
          (None, None) => return Ok(()),
          (None, Some(_)) => {
            return self.fail(self.i, "unexpected non-whitespace character after JSON")
          }
          (Some(b'['), Some(b',')) => {
            self.i += 1;
            continue 'value;
          }
          (Some(b'['), Some(b']')) | (Some(b'{'), Some(b'}')) => {
            self.i += 1;
            open.pop();
          }
          (Some(b'['), _) => {
            return self.fail(self.i, "expected ',' or ']' after an array element")
          }
          (Some(_), Some(b',')) => {
            self.i += 1;
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
              return self.fail(self.i, "expected a double-quoted property name");
            }
            self.member_name()?;
            continue 'value;
          }
          (Some(_), _) => return self.fail(self.i, "expected ',' or '}' after a property value"),
        }
      }
    }
  }

  /// A property name and its colon; leaves `i` where the value starts.
  fn member_name(&mut self) -> Result<(), Failure> {
    self.string()?;
    self.skip_whitespace();
    if self.peek() != Some(b':') {
      return self.fail(self.i, "expected ':' after a property name");
    }
    self.i += 1;
    Ok(())
  }

  fn string(&mut self) -> Result<(), Failure> {
    self.i += 1;
    loop {
      match self.peek() {
        None => return self.fail(self.i, "unterminated string"),
        Some(b'"') => {
          self.i += 1;
          return Ok(());
        }
        Some(b'\\') => {
          self.i += 1;
          match self.peek() {
            None => return self.unexpected(self.i),
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
            Some(b'u') => {
              self.i += 1;
              for _ in 0..4 {
                match self.peek() {
                  Some(b) if b.is_ascii_hexdigit() => self.i += 1,
                  _ => return self.fail(self.i, "bad Unicode escape"),
                }
              }
            }
            Some(_) => return self.fail(self.i, "bad escaped character"),
          }
        }
        Some(0..=0x1F) => return self.fail(self.i, "bad control character in a string"),
        Some(_) => self.i += 1,
      }
    }
  }

  fn digits(&mut self) -> usize {
    let from = self.i;
    while matches!(self.peek(), Some(b'0'..=b'9')) {
      self.i += 1;
    }
    self.i - from
  }

  fn number(&mut self) -> Result<(), Failure> {
    if self.peek() == Some(b'-') {
      self.i += 1;
      if !matches!(self.peek(), Some(b'0'..=b'9')) {
        return self.fail(self.i, "no number after a minus sign");
      }
    }
    if self.peek() == Some(b'0') {
      self.i += 1;
      if matches!(self.peek(), Some(b'0'..=b'9')) {
        return self.fail(self.i, "unexpected digit after a leading 0");
      }
    } else {
      self.digits();
    }
    if self.peek() == Some(b'.') {
      self.i += 1;
      if self.digits() == 0 {
        return self.fail(self.i, "unterminated fractional number");
      }
    }
    if matches!(self.peek(), Some(b'e' | b'E')) {
      self.i += 1;
      if matches!(self.peek(), Some(b'+' | b'-')) {
        self.i += 1;
      }
      if self.digits() == 0 {
        return self.fail(self.i, "exponent part is missing a number");
      }
    }
    Ok(())
  }

  fn literal(&mut self, word: &[u8]) -> Result<(), Failure> {
    for (k, expected) in word.iter().enumerate() {
      if self.data.get(self.i + k) != Some(expected) {
        return self.unexpected(self.i + k);
      }
    }
    self.i += word.len();
    Ok(())
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn at(data: &[u8]) -> Option<(usize, usize, usize)> {
    error_position(data).map(|e| (e.line, e.column, e.offset))
  }

  #[test]
  fn valid_documents_have_no_error() {
    for ok in [
      &b"{}"[..],
      b" [ ] ",
      b"\xEF\xBB\xBF{\"a\":[1,-2.5e+3,true,false,null,\"s\\n\\u00e9\"]}\n",
      b"0",
      b"-0.0E-0",
      "\"caf\u{e9} \u{1F600}\"".as_bytes(),
      b"{\"a\":{\"b\":{}},\"c\":[[],[{}]]}",
    ] {
      assert_eq!(error_position(ok), None, "{}", String::from_utf8_lossy(ok));
    }
  }

  #[test]
  fn errors_are_where_v8_reports_them() {
    // (text, offset V8 reports or, for "unexpected end", the length)
    for (text, offset) in [
      ("{\"a\": }", 6),
      ("trux", 3),
      ("tru", 3),
      ("[1,]", 3),
      ("01", 1),
      ("-01", 2),
      ("-a", 1),
      ("1.", 2),
      ("1.e5", 2),
      ("1e+", 3),
      ("\"\\x\"", 2),
      ("\"\\u12G4\"", 5),
      ("\"abc", 4),
      ("\"a\u{1}\"", 2),
      ("{\"a\" 1}", 5),
      ("{1:2}", 1),
      ("[1 2]", 3),
      ("1 2", 2),
      ("{\"a\":1,}", 7),
      ("{", 1),
      ("[1,2", 4),
      ("\"ab\\", 4),
      ("{\"a\":1 x", 7),
      ("\u{a0}", 0),
    ] {
      assert_eq!(
        error_position(text.as_bytes()).map(|e| e.offset),
        Some(offset),
        "{text:?}"
      );
    }
  }

  #[test]
  fn positions_count_bytes_and_lines_and_a_bom() {
    assert_eq!(at(b"{\n  \"a\": 1,\n  \"b\": }\n"), Some((3, 8, 19)));
    assert_eq!(at(b"{\"a\":\n"), Some((2, 1, 6)));
    assert_eq!(at(b"\xEF\xBB\xBF{\"a\": }"), Some((1, 10, 9)));
    assert_eq!(at(b"\xEF\xBB\xBF\xEF\xBB\xBF{}"), Some((1, 4, 3)));
    assert_eq!(at("{\"\u{e9}\": x}".as_bytes()), Some((1, 8, 7)));
  }

  #[test]
  fn invalid_utf8_is_reported_at_its_first_byte() {
    let e = error_position(b"{\n\"name\": \"caf\xE9\"}").unwrap();
    assert_eq!((e.line, e.column, e.offset), (2, 13, 14));
    assert_eq!(e.reason, "invalid UTF-8 byte 0xE9");
    let e = error_position(b"\"\xE2\x98").unwrap();
    assert_eq!(e.offset, 1);
    assert!(e.reason.contains("incomplete"));
  }

  #[test]
  fn nesting_depth_is_limited_by_memory_only() {
    let depth = 1_000_000;
    let mut deep = "[".repeat(depth);
    deep.push_str(&"]".repeat(depth));
    assert_eq!(error_position(deep.as_bytes()), None);
    let mut bad = "{\"a\":".repeat(depth);
    bad.push_str("[1,]");
    bad.push_str(&"}".repeat(depth));
    assert_eq!(
      error_position(bad.as_bytes()).map(|e| e.offset),
      Some(5 * depth + 3)
    );
    let open = "[".repeat(depth);
    assert_eq!(
      error_position(open.as_bytes()).map(|e| e.offset),
      Some(depth)
    );
  }
}
