//! JSON as index-lock reads and writes it: validation, a text-preserving tree, pointers, patches.

mod equal;
mod format;
mod merge;
mod parse;
mod patch;
mod pointer;
mod position;
mod scan;
mod text;
mod value;

pub use equal::equal;
pub use format::{format, format_to};
pub use merge::apply_merge;
pub use parse::{parse, ParseError, MAX_DEPTH};
pub use patch::{apply_patch, parse_patch, Operation, PatchFailure, PatchShapeError};
pub use pointer::{get, get_mut, Pointer};
pub use position::{error_position, ErrorPosition};
pub use scan::find_raw;
pub use text::escape;
pub use value::{Object, Value};

#[cfg(test)]
mod tests {
  use std::fmt::Write;
  use std::time::Instant;

  use super::*;

  /// An index shaped like the ones index-lock guards, in JSON.stringify's own spelling.
  fn index_text(min_len: usize) -> String {
    let mut text = String::from("{\"entries\":{");
    let mut i = 0u64;
    while text.len() < min_len {
      if i > 0 {
        text.push(',');
      }
      write!(
        text,
        "\"k{i}\":{{\"title\":\"Entry {i}: caf\u{e9} \\\"quoted\\\" \u{1F600}\\n\",\"n\":{i},\
         \"size\":{},\"ratio\":{}.25,\"big\":1844674407370955161{},\"tags\":[\"a\",\"b{i}\",[]],\
         \"ok\":true,\"parent\":null,\"meta\":{{}}}}",
        i * 1000,
        i % 97,
        i % 10
      )
      .unwrap();
      i += 1;
    }
    text.push_str("}}");
    text
  }

  #[test]
  fn format_to_stops_at_the_first_write_error() {
    struct Fails(usize);
    impl std::io::Write for Fails {
      fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += 1;
        Err(std::io::Error::other(format!(
          "write {} of {}",
          self.0,
          buf.len()
        )))
      }
      fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
      }
    }
    let doc = parse(index_text(300 << 10).as_bytes()).unwrap();
    let mut streamed = Vec::new();
    format_to(&doc, "  ", &mut streamed).unwrap();
    assert_eq!(streamed, format(&doc, "  "));
    let mut sink = Fails(0);
    let e = format_to(&doc, "  ", &mut sink).unwrap_err();
    assert!(e.to_string().starts_with("write 1 of "), "{e}");
    assert_eq!(sink.0, 1);
  }

  /// A pointer read of one entry of a 16 MB index: the scan `readJson` uses against the tree it
  /// replaced (parse, get, format). Run with `cargo test --release -- --ignored --nocapture`.
  #[test]
  #[ignore = "perf smoke test, meant for --release"]
  fn find_raw_vs_parse_on_a_16_mb_index() {
    let text = index_text(16 << 20);
    let pointer = Pointer::parse("/entries/k123").unwrap();
    let best = |f: &dyn Fn() -> Vec<u8>| {
      let mut best = std::time::Duration::MAX;
      let mut out = Vec::new();
      for _ in 0..5 {
        let started = Instant::now();
        out = f();
        best = best.min(started.elapsed());
      }
      (best, out)
    };
    let (scan, raw) = best(&|| {
      let range = find_raw(text.as_bytes(), &pointer).unwrap().unwrap();
      text.as_bytes()[range].to_vec()
    });
    let (tree, formatted) = best(&|| {
      let doc = parse(text.as_bytes()).unwrap();
      format(get(&doc, &pointer).unwrap(), "")
    });
    println!(
      "{} MB: find_raw {scan:?}, parse + get + format {tree:?} ({:.1}x)",
      text.len() >> 20,
      tree.as_secs_f64() / scan.as_secs_f64()
    );
    assert_eq!(
      format!("{}\n", String::from_utf8(raw).unwrap()).into_bytes(),
      formatted
    );
  }

  /// Parse + format of a 16 MB index; run with `cargo test --release -- --ignored --nocapture`.
  /// Set JSON_PERF_DUMP to a directory to write the input and the 2-space output there, for a
  /// comparison with node's JSON.stringify(JSON.parse(input), null, 2).
  #[test]
  #[ignore = "perf smoke test, meant for --release"]
  fn parse_and_format_a_16_mb_index() {
    let text = index_text(16 << 20);
    let started = Instant::now();
    let value = parse(text.as_bytes()).unwrap();
    let parsed = started.elapsed();
    let compact = format(&value, "");
    let formatted = started.elapsed();
    let indented = format(&value, "  ");
    let indented_time = started.elapsed() - formatted;
    let entries = value.as_object().unwrap().get("entries").unwrap();
    let looked_up = get(entries, &Pointer::parse("/k1000/n").unwrap()).is_some();
    drop(value);
    println!(
      "{} MB, {} entries: parse {parsed:?}, parse + compact format {formatted:?}, \
       indented format {indented_time:?}, total with drop {:?}",
      text.len() >> 20,
      text.matches("\"title\"").count(),
      started.elapsed()
    );
    assert!(looked_up);
    assert_eq!(compact, format!("{text}\n").into_bytes());
    if let Some(dir) = std::env::var_os("JSON_PERF_DUMP") {
      let dir = std::path::Path::new(&dir);
      std::fs::write(dir.join("index.json"), &text).unwrap();
      std::fs::write(dir.join("index.2.json"), &indented).unwrap();
    }
  }
}
