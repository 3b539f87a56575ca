//! Generated JSON documents and pointers for the tests that compare two ways of doing a thing.

use super::pointer::Pointer;
use super::text::decode;
use super::value::Value;

/// A small deterministic generator (xorshift), enough to vary documents widely.
pub struct Rng(pub u64);

impl Rng {
  pub fn next(&mut self) -> u64 {
    self.0 ^= self.0 << 13;
    self.0 ^= self.0 >> 7;
    self.0 ^= self.0 << 17;
    self.0
  }

  pub fn below(&mut self, n: usize) -> usize {
    (self.next() % n as u64) as usize
  }

  pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
    items[self.below(items.len())]
  }
}

/// Raw key spellings: few decoded keys, so duplicates are common, several spelled with
/// escapes ("\u0061" is "a", "a\/b" is "a/b", a surrogate pair is one character).
const KEYS: &[&str] = &[
  "a",
  "b",
  "\\u0061",
  "\\u0062",
  "0",
  "1",
  "",
  "a\\/b",
  "a/b",
  "m~n",
  "\u{e9}",
  "\\u00e9",
  "\\u00E9",
  "\\ud83d\\ude00",
  "\u{1F600}",
  "\\ud800",
  "\\\"q",
  "k\\n",
];

const SCALARS: &[&str] = &[
  "0",
  "-0",
  "12",
  "-1.5e+3",
  "1E400",
  "true",
  "false",
  "null",
  "\"\"",
  "\"s\"",
  "\"\\u0041\\n\\\\\"",
  "\"\u{e9}\u{1F600}\"",
];

fn space(rng: &mut Rng, out: &mut String) {
  if rng.below(3) == 0 {
    out.push_str(rng.pick(&[" ", "\n", "\t ", "\r\n  "]));
  }
}

pub fn document(rng: &mut Rng, depth: usize, out: &mut String) {
  space(rng, out);
  let kind = if depth >= 4 { 2 } else { rng.below(5) };
  match kind {
    0 | 1 => {
      out.push('{');
      let wide = rng.below(8) == 0;
      let n = rng.below(if wide { 24 } else { 5 });
      for k in 0..n {
        if k > 0 {
          out.push(',');
        }
        space(rng, out);
        out.push('"');
        out.push_str(rng.pick(KEYS));
        out.push('"');
        space(rng, out);
        out.push(':');
        document(rng, depth + 1, out);
      }
      space(rng, out);
      out.push('}');
    }
    2 => out.push_str(rng.pick(SCALARS)),
    _ => {
      out.push('[');
      let wide = rng.below(8) == 0;
      let n = rng.below(if wide { 14 } else { 4 });
      for k in 0..n {
        if k > 0 {
          out.push(',');
        }
        document(rng, depth + 1, out);
      }
      space(rng, out);
      out.push(']');
    }
  }
  space(rng, out);
}

/// Every pointer to a value of `doc` (keys decoded; a lone surrogate one reads as U+FFFD
/// and so names nothing, which is a case worth having too).
pub fn pointers(doc: &Value, prefix: &mut Vec<String>, out: &mut Vec<Pointer>) {
  out.push(Pointer::from_tokens(prefix.clone()));
  match doc {
    Value::Object(o) => {
      for (key, value) in o.iter() {
        prefix.push(String::from_utf8_lossy(&decode(key)).into_owned());
        pointers(value, prefix, out);
        prefix.pop();
      }
    }
    Value::Array(items) => {
      for (k, item) in items.iter().enumerate() {
        prefix.push(k.to_string());
        pointers(item, prefix, out);
        prefix.pop();
      }
    }
    _ => {}
  }
}

pub const TOKENS: &[&str] = &[
  "a",
  "b",
  "0",
  "1",
  "2",
  "3",
  "13",
  "-",
  "01",
  "00",
  "-1",
  "+1",
  "",
  "a/b",
  "m~n",
  "\u{e9}",
  "\u{1F600}",
  "\"q",
  "k\n",
  "x",
];
