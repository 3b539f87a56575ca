//! JSON as index-lock reads and writes it: validation, a text-preserving tree, pointers, patches.

mod cursor;
mod equal;
mod format;
mod merge;
mod parse;
mod patch;
mod pointer;
mod position;
mod scan;
#[cfg(test)]
mod testing;
mod text;
mod value;

pub use equal::equal;
pub use format::{format, format_to};
pub use merge::apply_merge;
pub use parse::{parse, parse_owned, ParseError, MAX_DEPTH};
pub use patch::{apply_patch, parse_patch, Operation, PatchFailure, PatchShapeError};
pub use pointer::{get, get_mut, Pointer};
pub use position::{error_position, ErrorPosition};
pub use scan::find_raw;
pub use text::{escape, nesting};
pub use value::{Lazy, Object, Value};

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

  fn lazily(text: &str, budget: usize) -> Result<Value, ParseError> {
    parse::parse_shared(&std::sync::Arc::new(text.to_string()), budget)
  }

  fn eagerly(text: &str) -> Value {
    // Under LAZY_DOC_MIN: parsed whole.
    assert!(text.len() < 64 << 10);
    parse(text.as_bytes()).unwrap()
  }

  fn json_string(s: &str) -> String {
    format!("\"{}\"", escape(s))
  }

  fn text_of(value: &Value, indent: &str) -> String {
    String::from_utf8(format(value, indent)).unwrap()
  }

  fn has_lazy(value: &Value) -> bool {
    match value {
      Value::Lazy(_) => true,
      Value::Array(items) => items.iter().any(has_lazy),
      Value::Object(o) => o.iter().any(|(_, v)| has_lazy(v)),
      _ => false,
    }
  }

  const BUDGETS: [usize; 4] = [8, 24, 80, 4096];
  const INDENTS: [&str; 4] = ["", "  ", "\t", "--"];

  #[test]
  fn lazy_documents_format_and_read_as_parsed_ones() {
    let mut rng = testing::Rng(0x1234_5678_9ABC_DEF1);
    let mut lazies = 0;
    for round in 0..400 {
      let mut text = String::new();
      testing::document(&mut rng, 0, &mut text);
      let eager = eagerly(&text);
      let lazy = lazily(&text, BUDGETS[round % BUDGETS.len()]).unwrap();
      lazies += usize::from(has_lazy(&lazy));
      for indent in INDENTS {
        assert_eq!(text_of(&lazy, indent), text_of(&eager, indent), "{text:?}");
      }
      let mut streamed = Vec::new();
      format_to(&lazy, "  ", &mut streamed).unwrap();
      assert_eq!(streamed, format(&eager, "  "));
      assert!(equal(&lazy, &eager) && equal(&eager, &lazy) && equal(&lazy, &lazy.clone()));
      let mut all = Vec::new();
      testing::pointers(&eager, &mut Vec::new(), &mut all);
      for pointer in &all {
        let (a, b) = (get(&lazy, pointer), get(&eager, pointer));
        assert_eq!(a.map(|v| text_of(v, "  ")), b.map(|v| text_of(v, "  ")));
        assert_eq!(a.map(Value::kind), b.map(Value::kind));
        if let (Some(a), Some(b)) = (a, b) {
          assert!(equal(a, b));
        }
      }
      // Reading through `get` parsed (and kept) containers on the way; writing still agrees.
      assert_eq!(text_of(&lazy, "  "), text_of(&eager, "  "));
    }
    assert!(lazies > 200, "{lazies}");
  }

  /// A random patch (1 to 3 operations) over the pointers of a document, as JSON text, and the
  /// values in it sometimes kept as text too.
  fn random_patch(rng: &mut testing::Rng, all: &[Pointer]) -> String {
    let pick = |rng: &mut testing::Rng| -> String {
      let p = &all[rng.below(all.len())];
      let mut tokens = p.tokens().to_vec();
      match rng.below(6) {
        0 => tokens.push(rng.pick(&["-", "new", "0", "a", "9"]).to_string()),
        1 if !tokens.is_empty() => {
          tokens.pop();
        }
        _ => {}
      }
      json_string(Pointer::from_tokens(tokens).as_str())
    };
    let mut ops = Vec::new();
    for _ in 0..1 + rng.below(3) {
      let op = ["add", "remove", "replace", "move", "copy", "test"][rng.below(6)];
      let path = pick(rng);
      let mut value = String::new();
      testing::document(rng, 2, &mut value);
      let from = pick(rng);
      ops.push(format!(
        "{{\"op\":\"{op}\",\"path\":{path},\"from\":{from},\"value\":{value}}}"
      ));
    }
    format!("[{}]", ops.join(","))
  }

  #[test]
  fn lazy_documents_patch_and_merge_as_parsed_ones() {
    let mut rng = testing::Rng(0x0DDB_A11C_AFE5_7ACE);
    for round in 0..300 {
      let mut text = String::new();
      testing::document(&mut rng, 0, &mut text);
      let budget = BUDGETS[round % BUDGETS.len()];
      let mut eager = eagerly(&text);
      let mut lazy = lazily(&text, budget).unwrap();
      for _ in 0..4 {
        let mut all = Vec::new();
        testing::pointers(&eager, &mut Vec::new(), &mut all);
        let patch = random_patch(&mut rng, &all);
        let ops = parse_patch(&patch).unwrap();
        // The same operations with their values kept as text.
        let lazy_ops: Vec<Operation> = parse::parse_shared(&std::sync::Arc::new(patch.clone()), 8)
          .ok()
          .and_then(parse_patch_value)
          .unwrap();
        let before = text_of(&lazy, "  ");
        let a = apply_patch(&mut eager, &ops);
        let b = apply_patch(&mut lazy, &lazy_ops);
        assert_eq!(a, b, "{patch} on {before}");
        for indent in INDENTS {
          assert_eq!(
            text_of(&lazy, indent),
            text_of(&eager, indent),
            "{patch} on {before}"
          );
        }
        if b.is_err() {
          assert_eq!(text_of(&lazy, "  "), before);
        }
      }
      let mut merge = String::new();
      testing::document(&mut rng, 0, &mut merge);
      apply_merge(&mut eager, &eagerly(&merge));
      apply_merge(&mut lazy, &lazily(&merge, budget).unwrap());
      assert_eq!(text_of(&lazy, "  "), text_of(&eager, "  "), "{merge}");
      assert!(equal(&lazy, &eager));
    }
  }

  /// `parse_patch` of an already parsed value (its containers maybe kept as text).
  fn parse_patch_value(value: Value) -> Option<Vec<Operation>> {
    let Value::Array(items) = value else {
      return None;
    };
    let mut ops = Vec::new();
    for item in items {
      let text = text_of(&item, "");
      let mut op = parse_patch(&format!("[{text}]")).ok()?.pop()?;
      // Put the value back as the (maybe lazy) one this parse made.
      let lazy_value = item.as_object()?.get("value").cloned();
      if let (
        Operation::Add { value, .. }
        | Operation::Replace { value, .. }
        | Operation::Test { value, .. },
        Some(lazy_value),
      ) = (&mut op, lazy_value)
      {
        *value = lazy_value;
      }
      ops.push(op);
    }
    Some(ops)
  }

  #[test]
  fn lazy_parsing_fails_as_parsing_does() {
    let mut rng = testing::Rng(0x5EED_0FBA_D7E2_7000);
    for round in 0..50 {
      let mut text = String::new();
      testing::document(&mut rng, 0, &mut text);
      let budget = BUDGETS[round % BUDGETS.len()];
      for cut in 0..text.len() {
        let Some(part) = text.get(..cut) else {
          continue;
        };
        assert_eq!(
          lazily(part, budget).err(),
          parse(part.as_bytes()).err(),
          "{part:?}"
        );
      }
      for _ in 0..20 {
        let mut bad = text.clone().into_bytes();
        let at = rng.below(bad.len());
        bad[at] = [
          b'}', b']', b',', b':', b'"', b'x', b'0', b' ', b'\\', 0x01, b'{', b'[',
        ][rng.below(12)];
        let Ok(bad) = String::from_utf8(bad) else {
          continue;
        };
        assert_eq!(
          lazily(&bad, budget).err(),
          parse(bad.as_bytes()).err(),
          "{bad:?}"
        );
      }
    }
  }

  #[test]
  fn a_big_index_keeps_its_entries_as_text_and_owned_parsing_gives_back_the_bytes() {
    let text = index_text(200 << 10);
    let doc = parse(text.as_bytes()).unwrap();
    let entries = doc.as_object().unwrap().get("entries").unwrap();
    assert!(matches!(entries, Value::Object(_)));
    assert!(entries
      .as_object()
      .unwrap()
      .iter()
      .all(|(_, v)| matches!(v, Value::Lazy(_))));
    assert_eq!(format(&doc, ""), format!("{text}\n").into_bytes());
    let owned = parse_owned(text.clone().into_bytes()).unwrap();
    assert!(equal(&owned, &doc));
    let mut streamed = Vec::new();
    format_to(&owned, "  ", &mut streamed).unwrap();
    assert_eq!(streamed, format(&doc, "  "));
    let mut broken = text.clone().into_bytes();
    let at = broken.len() - 1000;
    broken[at] = b'x';
    let (e, back) = parse_owned(broken.clone()).unwrap_err();
    assert_eq!(Some(e), parse(&broken).err());
    assert_eq!(back, broken);
    broken[at] = 0xFF;
    let (e, back) = parse_owned(broken.clone()).unwrap_err();
    assert_eq!(e, ParseError::Utf8 { offset: at });
    assert_eq!(back, broken);
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

  #[test]
  fn lazy_nesting_is_limited_as_parsing_limits_it() {
    std::thread::Builder::new()
      .stack_size(512 << 20)
      .spawn(|| {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let at_max = nest(MAX_DEPTH);
        let value = lazily(&at_max, 4096).expect("MAX_DEPTH parses");
        assert!(has_lazy(&value));
        assert_eq!(text_of(&value, ""), format!("{at_max}\n"));
        drop(value);
        let objects = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        let mut value = lazily(&objects, 4096).unwrap();
        let copy = value.clone();
        assert!(equal(&value, &copy));
        let deep = Pointer::from_tokens(vec!["a"; MAX_DEPTH]);
        assert_eq!(
          get(&value, &deep).map(|v| text_of(v, "")),
          Some("1\n".into())
        );
        *get_mut(&mut value, &deep).unwrap() = Value::Null;
        assert!(!equal(&value, &copy));
        drop((value, copy));
        for budget in BUDGETS {
          assert_eq!(
            lazily(&nest(MAX_DEPTH + 1), budget).err(),
            Some(ParseError::TooDeep {
              depth: MAX_DEPTH + 1
            })
          );
        }
      })
      .unwrap()
      .join()
      .unwrap();
  }

  /// Live heap bytes of the thread that allocated them, and their peak since `reset`: only the
  /// measuring test's own allocations, whatever other tests run meanwhile.
  mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
      static LIVE: Cell<isize> = const { Cell::new(0) };
      static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn add(delta: isize) {
      // try_with: allocations during thread teardown find the slots gone.
      let _ = LIVE.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
      });
    }

    unsafe impl GlobalAlloc for Counting {
      unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        System.alloc(layout)
      }

      unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        System.dealloc(ptr, layout)
      }

      unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        System.alloc_zeroed(layout)
      }

      /// Counted as the size change: glibc grows a big block with mremap, without a copy.
      unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
      }
    }

    /// Starts a measurement: the peak is what is live now.
    pub fn reset() -> isize {
      let live = LIVE.with(Cell::get);
      PEAK.with(|peak| peak.set(live));
      live
    }

    pub fn live() -> isize {
      LIVE.with(Cell::get)
    }

    pub fn peak() -> isize {
      PEAK.with(Cell::get)
    }
  }

  #[global_allocator]
  static COUNTING: counting::Counting = counting::Counting;

  /// Heap of one patch of a 16 MB index as changes.rs runs it (the file's bytes, the parse, the
  /// change, the output), per byte of the file: as `parse` + `format` (the output held whole),
  /// and as `parse_owned` + `format_to` (streamed). Counted as requested, not as malloc's
  /// chunks nor as resident pages. Run with `cargo test --release -- --ignored --nocapture`.
  #[test]
  #[ignore = "memory smoke test, meant for --release"]
  fn heap_of_one_patch_of_a_16_mb_index() {
    let text = index_text(16 << 20);
    let ops = parse_patch(r#"[{"op":"add","path":"/entries/new","value":{"n":1}}]"#).unwrap();
    let file = text.len() as f64;
    let ratio = |bytes: isize| bytes as f64 / file;
    for streamed in [false, true] {
      let started = Instant::now();
      let base = counting::reset();
      let bytes = text.as_bytes().to_vec();
      let mut doc = if streamed {
        parse_owned(bytes).unwrap()
      } else {
        let doc = parse(&bytes).unwrap();
        drop(bytes);
        doc
      };
      let parsing = counting::peak() - base;
      let tree = counting::live() - base;
      apply_patch(&mut doc, &ops).unwrap();
      let patched = counting::live() - base;
      let written = if streamed {
        let mut sink = std::io::sink();
        format_to(&doc, "", &mut sink).unwrap();
        0
      } else {
        format(&doc, "").len()
      };
      let peak = counting::peak() - base;
      drop(doc);
      println!(
        "{} MB, {}: peak while parsing {:.2}x, tree {:.2}x, after the patch {:.2}x, \
         peak {:.2}x ({peak} bytes, output {:.2}x); {:?}",
        text.len() >> 20,
        if streamed {
          "parse_owned + format_to"
        } else {
          "parse + format"
        },
        ratio(parsing),
        ratio(tree),
        ratio(patched),
        ratio(peak),
        ratio(written as isize),
        started.elapsed()
      );
    }
  }

  /// A pointer read of one entry of a 16 MB index: the scan `readJson` uses against the whole
  /// tree it replaced (parse, get, format). Run with `cargo test --release -- --ignored --nocapture`.
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
      let doc = parse::parse_eagerly(text.as_bytes()).unwrap();
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
