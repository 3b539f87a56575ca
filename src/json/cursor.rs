//! The JSON grammar's leaves over a byte position: what the parser and the scans share.

use super::parse::ParseError;

/// A position in UTF-8 JSON text and the grammar's leaves (strings, numbers, literals), as the
/// parser and the allocation-free scans share them: one lexer, so they fail at the same byte.
pub(super) struct Cursor<'a> {
  pub(super) data: &'a [u8],
  pub(super) i: usize,
}

impl Cursor<'_> {
  pub(super) fn peek(&self) -> Option<u8> {
    self.data.get(self.i).copied()
  }

  pub(super) fn syntax<T>(&self) -> Result<T, ParseError> {
    Err(ParseError::Syntax {
      offset: self.i.min(self.data.len()),
    })
  }

  pub(super) fn skip_whitespace(&mut self) {
    while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
      self.i += 1;
    }
  }

  /// Past a member name and its colon; `i` is at the name's opening quote.
  pub(super) fn name_and_colon(&mut self) -> Result<(), ParseError> {
    self.string()?;
    self.skip_whitespace();
    if self.peek() != Some(b':') {
      return self.syntax();
    }
    self.i += 1;
    Ok(())
  }

  /// Past a string; `i` is at the opening quote.
  pub(super) fn string(&mut self) -> Result<(), ParseError> {
    let bytes = self.data;
    self.i += 1;
    loop {
      let Some(run) = bytes[self.i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
      else {
        self.i = bytes.len();
        return self.syntax();
      };
      self.i += run;
      match bytes[self.i] {
        b'"' => {
          self.i += 1;
          return Ok(());
        }
        b'\\' => {
          self.i += 1;
          match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
            Some(b'u') => {
              self.i += 1;
              for _ in 0..4 {
                if !self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
                  return self.syntax();
                }
                self.i += 1;
              }
            }
            _ => return self.syntax(),
          }
        }
        _ => return self.syntax(),
      }
    }
  }

  pub(super) fn digits(&mut self) -> usize {
    let from = self.i;
    while matches!(self.peek(), Some(b'0'..=b'9')) {
      self.i += 1;
    }
    self.i - from
  }

  pub(super) fn number(&mut self) -> Result<(), ParseError> {
    if self.peek() == Some(b'-') {
      self.i += 1;
    }
    match self.peek() {
      Some(b'0') => self.i += 1,
      Some(b'1'..=b'9') => {
        self.digits();
      }
      _ => return self.syntax(),
    }
    if self.peek() == Some(b'.') {
      self.i += 1;
      if self.digits() == 0 {
        return self.syntax();
      }
    }
    if matches!(self.peek(), Some(b'e' | b'E')) {
      self.i += 1;
      if matches!(self.peek(), Some(b'+' | b'-')) {
        self.i += 1;
      }
      if self.digits() == 0 {
        return self.syntax();
      }
    }
    Ok(())
  }

  pub(super) fn literal(&mut self, word: &[u8]) -> Result<(), ParseError> {
    for &expected in word {
      if self.peek() != Some(expected) {
        return self.syntax();
      }
      self.i += 1;
    }
    Ok(())
  }

  /// Past a scalar at `i` (after whitespace), or the error `parse` gives for what is there.
  pub(super) fn scalar(&mut self) -> Result<(), ParseError> {
    match self.peek() {
      Some(b'"') => self.string(),
      Some(b'-' | b'0'..=b'9') => self.number(),
      Some(b't') => self.literal(b"true"),
      Some(b'f') => self.literal(b"false"),
      Some(b'n') => self.literal(b"null"),
      _ => self.syntax(),
    }
  }
}
