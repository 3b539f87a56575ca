//! String escapes: decoding raw JSON string text for comparison, escaping as JSON.stringify does.

use std::borrow::Cow;

/// The content of a raw (still escaped) JSON string, as WTF-8: UTF-8 in which a lone surrogate
/// escape (`\ud800`, which JSON.parse accepts) is kept as its 3-byte generalised encoding. A
/// surrogate pair becomes its one character, so equal JS strings always decode to equal bytes,
/// and no valid `&str` ever equals a string holding a lone surrogate.
///
/// Malformed escapes (only possible in text built by hand, never in parsed text) are kept as
/// written rather than rejected: comparison must not panic.
pub(crate) fn decode(raw: &str) -> Cow<'_, [u8]> {
  let b = raw.as_bytes();
  if !b.contains(&b'\\') {
    return Cow::Borrowed(b);
  }
  let mut out = Vec::with_capacity(b.len());
  let mut i = 0;
  while i < b.len() {
    if b[i] != b'\\' {
      out.push(b[i]);
      i += 1;
      continue;
    }
    let short = match b.get(i + 1) {
      Some(b'"') => Some(b'"'),
      Some(b'\\') => Some(b'\\'),
      Some(b'/') => Some(b'/'),
      Some(b'b') => Some(0x08),
      Some(b'f') => Some(0x0C),
      Some(b'n') => Some(b'\n'),
      Some(b'r') => Some(b'\r'),
      Some(b't') => Some(b'\t'),
      _ => None,
    };
    if let Some(c) = short {
      out.push(c);
      i += 2;
      continue;
    }
    let Some(unit) = unicode_escape(b, i) else {
      out.push(b'\\');
      i += 1;
      continue;
    };
    i += 6;
    let mut code = unit;
    if (0xD800..0xDC00).contains(&unit) {
      if let Some(low) = unicode_escape(b, i).filter(|u| (0xDC00..0xE000).contains(u)) {
        code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
        i += 6;
      }
    }
    push_wtf8(&mut out, code);
  }
  Cow::Owned(out)
}

/// The code unit of a `\uXXXX` escape starting at `b[i]`.
fn unicode_escape(b: &[u8], i: usize) -> Option<u32> {
  let esc = b.get(i..i + 6)?;
  if &esc[..2] != b"\\u" {
    return None;
  }
  esc[2..].iter().try_fold(0u32, |acc, &h| {
    let d = (h as char).to_digit(16)?;
    Some(acc << 4 | d)
  })
}

fn push_wtf8(out: &mut Vec<u8>, code: u32) {
  // char::encode_utf8 refuses surrogates, so encode by hand: the same bit layout for all.
  match code {
    0..=0x7F => out.push(code as u8),
    0x80..=0x7FF => out.extend([0xC0 | (code >> 6) as u8, 0x80 | (code & 0x3F) as u8]),
    0x800..=0xFFFF => out.extend([
      0xE0 | (code >> 12) as u8,
      0x80 | ((code >> 6) & 0x3F) as u8,
      0x80 | (code & 0x3F) as u8,
    ]),
    _ => out.extend([
      0xF0 | (code >> 18) as u8,
      0x80 | ((code >> 12) & 0x3F) as u8,
      0x80 | ((code >> 6) & 0x3F) as u8,
      0x80 | (code & 0x3F) as u8,
    ]),
  }
}

/// Whether the raw key text `raw` decodes to `key` (WTF-8), without allocating when `raw` has
/// no escape, which is nearly always.
pub(crate) fn raw_equals(raw: &str, key: &[u8]) -> bool {
  if raw.as_bytes().contains(&b'\\') {
    *decode(raw) == *key
  } else {
    raw.as_bytes() == key
  }
}

/// `s` escaped as V8's JSON.stringify escapes it, without the quotes: `"` and `\`, the short
/// forms \b \f \n \r \t, other control characters as lowercase `\u00xx`, everything else as is.
pub fn escape(s: &str) -> String {
  let mut out = String::with_capacity(s.len() + 2);
  for c in s.chars() {
    match c {
      '"' => out.push_str("\\\""),
      '\\' => out.push_str("\\\\"),
      '\u{8}' => out.push_str("\\b"),
      '\u{C}' => out.push_str("\\f"),
      '\n' => out.push_str("\\n"),
      '\r' => out.push_str("\\r"),
      '\t' => out.push_str("\\t"),
      '\0'..='\u{1F}' => out.push_str(&format!("\\u{:04x}", c as u32)),
      _ => out.push(c),
    }
  }
  out
}

/// How deep `text` (JSON text) nests: its deepest run of open `[`/`{`, strings skipped.
pub fn nesting(text: &str) -> usize {
  let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
  for &b in text.as_bytes() {
    if in_string {
      match b {
        _ if escaped => escaped = false,
        b'\\' => escaped = true,
        b'"' => in_string = false,
        _ => {}
      }
      continue;
    }
    match b {
      b'"' => in_string = true,
      b'[' | b'{' => {
        depth += 1;
        deepest = deepest.max(depth);
      }
      b']' | b'}' => depth = depth.saturating_sub(1),
      _ => {}
    }
  }
  deepest
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn decoding_resolves_every_escape() {
    assert_eq!(&*decode(r#"plain"#), b"plain");
    assert!(matches!(decode("plain"), Cow::Borrowed(_)));
    assert_eq!(&*decode(r#"\"\\\/\b\f\n\r\t"#), b"\"\\/\x08\x0C\n\r\t");
    assert_eq!(
      &*decode(r#"\u0061\u00e9\u20AC"#),
      "a\u{e9}\u{20ac}".as_bytes()
    );
    assert_eq!(&*decode(r#"\ud83d\ude00"#), "\u{1F600}".as_bytes());
    assert_eq!(&*decode("\u{1F600}"), "\u{1F600}".as_bytes());
  }

  #[test]
  fn lone_surrogates_stay_distinct_and_match_no_str() {
    let high = decode(r#"\ud800"#);
    let low = decode(r#"\udc00"#);
    assert_eq!(&*high, b"\xED\xA0\x80");
    assert_ne!(high, low);
    assert!(std::str::from_utf8(&high).is_err());
    // A high surrogate followed by a non-surrogate escape stays lone.
    assert_eq!(&*decode(r#"\ud800\u0041"#), b"\xED\xA0\x80A");
  }

  #[test]
  fn malformed_escapes_are_kept_not_panicked_on() {
    assert_eq!(&*decode(r"a\"), b"a\\");
    assert_eq!(&*decode(r"\u12"), b"\\u12");
    assert_eq!(&*decode(r"\x"), b"\\x");
  }

  #[test]
  fn raw_keys_compare_by_content() {
    assert!(raw_equals(r"\u0061", b"a"));
    assert!(raw_equals("a", b"a"));
    assert!(!raw_equals(r"\u0062", b"a"));
  }

  #[test]
  fn escaping_matches_json_stringify() {
    // Expected texts from node: JSON.stringify(s).slice(1, -1).
    assert_eq!(escape("a\"b\\c"), r#"a\"b\\c"#);
    assert_eq!(escape("\u{8}\u{c}\n\r\t"), r"\b\f\n\r\t");
    assert_eq!(
      escape("\u{0}\u{1}\u{1f}\u{7f}"),
      "\\u0000\\u0001\\u001f\u{7f}"
    );
    assert_eq!(escape("/\u{2028}\u{2029}é😀"), "/\u{2028}\u{2029}é😀");
  }
}
