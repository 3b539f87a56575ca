//! The writer: a `Value` as V8's JSON.stringify writes it, from the raw texts the tree keeps.

use std::io;

use super::text::decode;
use super::value::Value;

/// `JSON.stringify(value, null, space) + "\n"`, byte for byte as V8 writes it, given the raw
/// texts: `indent` "" is compact, anything else is V8's gap string (the caller turns a number n
/// into n spaces and cuts a string to 10 characters, as V8 does). Empty containers are `{}` and
/// `[]` in both modes.
pub fn format(value: &Value, indent: &str) -> Vec<u8> {
  let mut w = Writer {
    out: Vec::new(),
    sink: None,
    error: None,
    keys: Keys::default(),
  };
  w.value(value, indent.as_bytes(), 0);
  w.out.push(b'\n');
  w.out
}

/// What `format` returns, written to `sink` piece by piece: a big document's text is never
/// held whole a second time. Stops writing at the first error, which it returns.
pub fn format_to(value: &Value, indent: &str, sink: &mut impl io::Write) -> io::Result<()> {
  let mut w = Writer {
    out: Vec::with_capacity(CHUNK + CHUNK / 4),
    sink: Some(sink),
    error: None,
    keys: Keys::default(),
  };
  w.value(value, indent.as_bytes(), 0);
  w.out.push(b'\n');
  w.flush();
  w.error.map_or(Ok(()), Err)
}

/// How much output `format_to` gathers before each write.
const CHUNK: usize = 64 << 10;

struct Writer<'s> {
  out: Vec<u8>,
  /// `format_to`'s destination; `format` keeps everything in `out`.
  sink: Option<&'s mut dyn io::Write>,
  error: Option<io::Error>,
  keys: Keys,
}

impl Writer<'_> {
  /// Hands `out` to the sink once a chunk is gathered; called between members and elements.
  fn flush_if_full(&mut self) {
    if self.out.len() >= CHUNK && self.sink.is_some() {
      self.flush();
    }
  }

  fn flush(&mut self) {
    if let (Some(sink), None) = (&mut self.sink, &self.error) {
      if let Err(e) = sink.write_all(&self.out) {
        self.error = Some(e);
      }
    }
    self.out.clear();
  }

  fn value(&mut self, value: &Value, indent: &[u8], level: usize) {
    let out = &mut self.out;
    match value {
      Value::Null => out.extend_from_slice(b"null"),
      Value::Bool(true) => out.extend_from_slice(b"true"),
      Value::Bool(false) => out.extend_from_slice(b"false"),
      Value::Number(raw) => out.extend_from_slice(raw.as_bytes()),
      Value::String(raw) => quoted(out, raw),
      Value::Array(items) if items.is_empty() => out.extend_from_slice(b"[]"),
      Value::Array(items) => {
        out.push(b'[');
        for (k, item) in items.iter().enumerate() {
          if k > 0 {
            self.out.push(b',');
          }
          newline(&mut self.out, indent, level + 1);
          self.value(item, indent, level + 1);
          self.flush_if_full();
        }
        newline(&mut self.out, indent, level);
        self.out.push(b']');
      }
      Value::Object(object) if object.is_empty() => out.extend_from_slice(b"{}"),
      Value::Object(object) => {
        out.push(b'{');
        for (k, (key, item)) in object.iter().enumerate() {
          let out = &mut self.out;
          if k > 0 {
            out.push(b',');
          }
          newline(out, indent, level + 1);
          quoted(out, key);
          out.push(b':');
          if !indent.is_empty() {
            out.push(b' ');
          }
          self.value(item, indent, level + 1);
          self.flush_if_full();
        }
        newline(&mut self.out, indent, level);
        self.out.push(b'}');
      }
      Value::Lazy(lazy) => {
        let mark = out.len();
        if !reformat(lazy.raw(), indent, level, out, &mut self.keys) {
          // Duplicate keys: the parsed form, for the moment only, so that a whole document's
          // worth is never held parsed.
          self.out.truncate(mark);
          self.value(&lazy.value(), indent, level);
        }
      }
    }
  }
}

/// The member names of the objects open in `reformat`, innermost last, as ranges of its text.
#[derive(Default)]
struct Keys {
  names: Vec<(usize, usize)>,
  /// Where each open object's names start in `names`.
  starts: Vec<usize>,
}

/// The most names `reformat` compares pairwise in one object; past it the parsed form is used.
const PAIRWISE_MAX: usize = 32;

/// Writes the JSON text `raw` (valid, not nested past 64 levels: a `Lazy`'s) at `level` as
/// `write` writes its parsed value, straight from the text: whitespace dropped, the rest copied,
/// newlines and gaps put where `write` puts them. False, with part written, for an object with
/// two members of the same name (the parsed value drops one) or too many to compare.
fn reformat(raw: &str, indent: &[u8], level: usize, out: &mut Vec<u8>, keys: &mut Keys) -> bool {
  let b = raw.as_bytes();
  keys.names.clear();
  keys.starts.clear();
  let mut level = level;
  // One bit per open container, innermost lowest: 1 for an object.
  let mut objects: u64 = 0;
  // Whether the next string is a member name.
  let mut name_next = false;
  let mut i = 0;
  while i < b.len() {
    match b[i] {
      b' ' | b'\t' | b'\n' | b'\r' => i += 1,
      open @ (b'{' | b'[') => {
        let close = open + 2; // `}` and `]` follow their openers by two in ASCII.
        let mut j = i + 1;
        while matches!(b.get(j), Some(b' ' | b'\t' | b'\n' | b'\r')) {
          j += 1;
        }
        if b.get(j) == Some(&close) {
          out.extend_from_slice(&[open, close]);
          i = j + 1;
          continue;
        }
        out.push(open);
        level += 1;
        newline(out, indent, level);
        objects = objects << 1 | u64::from(open == b'{');
        name_next = open == b'{';
        if name_next {
          keys.starts.push(keys.names.len());
        }
        i += 1;
      }
      close @ (b'}' | b']') => {
        if close == b'}' {
          let start = keys.starts.pop().unwrap_or(0);
          keys.names.truncate(start);
        }
        objects >>= 1;
        level -= 1;
        newline(out, indent, level);
        out.push(close);
        i += 1;
      }
      b',' => {
        out.push(b',');
        newline(out, indent, level);
        name_next = objects & 1 == 1;
        i += 1;
      }
      b':' => {
        out.push(b':');
        if !indent.is_empty() {
          out.push(b' ');
        }
        i += 1;
      }
      b'"' => {
        let start = i + 1;
        i = start;
        while b[i] != b'"' {
          i += if b[i] == b'\\' { 2 } else { 1 };
        }
        if name_next {
          name_next = false;
          let first = keys.starts.last().copied().unwrap_or(0);
          if keys.names.len() - first >= PAIRWISE_MAX {
            return false;
          }
          let name = &raw[start..i];
          let seen = keys.names[first..]
            .iter()
            .any(|&(s, e)| same_name(&raw[s..e], name));
          if seen {
            return false;
          }
          keys.names.push((start, i));
        }
        i += 1;
        out.extend_from_slice(&b[start - 1..i]);
      }
      _ => {
        // A number or a literal: up to the next delimiter.
        let start = i;
        while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
          i += 1;
        }
        out.extend_from_slice(&b[start..i]);
      }
    }
  }
  true
}

/// Whether two raw member names decode alike (JSON.parse would make them one member).
fn same_name(a: &str, b: &str) -> bool {
  if a.as_bytes().contains(&b'\\') || b.as_bytes().contains(&b'\\') {
    decode(a) == decode(b)
  } else {
    a == b
  }
}

fn quoted(out: &mut Vec<u8>, raw: &str) {
  out.push(b'"');
  out.extend_from_slice(raw.as_bytes());
  out.push(b'"');
}

fn newline(out: &mut Vec<u8>, indent: &[u8], level: usize) {
  if indent.is_empty() {
    return;
  }
  out.push(b'\n');
  for _ in 0..level {
    out.extend_from_slice(indent);
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::json::parse;

  fn reformat(json: &str, indent: &str) -> String {
    String::from_utf8(format(&parse(json.as_bytes()).unwrap(), indent)).unwrap()
  }

  /// Expected outputs from node 20:
  /// node -e 'process.stdout.write(JSON.stringify(JSON.parse(process.argv[1]), null, 2) + "\n")'
  const SAMPLE: &str = r#" { "a" : 1, "b" : [ 1, 2, { } , [ ] ], "c" : { "d" : null, "e" : [ true, false, "x" ] }, "f": {"g": [[]]} } "#;

  #[test]
  fn compact_matches_v8() {
    assert_eq!(
      reformat(SAMPLE, ""),
      "{\"a\":1,\"b\":[1,2,{},[]],\"c\":{\"d\":null,\"e\":[true,false,\"x\"]},\"f\":{\"g\":[[]]}}\n"
    );
    assert_eq!(reformat(" [ ] ", ""), "[]\n");
    assert_eq!(reformat("\"s\"", "  "), "\"s\"\n");
  }

  #[test]
  fn indented_matches_v8() {
    assert_eq!(
      reformat(SAMPLE, "  "),
      r#"{
  "a": 1,
  "b": [
    1,
    2,
    {},
    []
  ],
  "c": {
    "d": null,
    "e": [
      true,
      false,
      "x"
    ]
  },
  "f": {
    "g": [
      []
    ]
  }
}
"#
    );
    // JSON.stringify(JSON.parse('{"a":[1,{"b":2}]}'), null, "\t")
    assert_eq!(
      reformat(r#"{"a":[1,{"b":2}]}"#, "\t"),
      "{\n\t\"a\": [\n\t\t1,\n\t\t{\n\t\t\t\"b\": 2\n\t\t}\n\t]\n}\n"
    );
    // JSON.stringify({a: [1]}, null, "--")
    assert_eq!(
      reformat(r#"{"a":[1]}"#, "--"),
      "{\n--\"a\": [\n----1\n--]\n}\n"
    );
    assert_eq!(reformat("{}", "  "), "{}\n");
  }

  #[test]
  fn unchanged_text_round_trips_byte_for_byte() {
    // Already in JSON.stringify's shape: raw escapes and number spellings come back as written.
    for text in [
      "{\"a\\u0062\":\"\\u00e9\\/\\ud800\",\"n\":[9223372036854775807,18446744073709551616,-0,1e+21,1.7976931348623157e308,5e-324,1E5,0.10]}\n",
      "{\n  \"caf\u{e9}\": \"\u{1F600}\\n\",\n  \"x\": []\n}\n",
    ] {
      let indent = if text.contains("\n  ") { "  " } else { "" };
      assert_eq!(reformat(text, indent), text);
    }
  }
}
