//! RFC 7396 JSON Merge Patch.

use super::value::{Object, Value};

/// Applies the merge patch `patch` to `doc`: a null member deletes, an object member merges,
/// anything else replaces; a non-object patch replaces the whole target, and an object patch on
/// a non-object target first makes it {}. New members go last, existing ones keep their
/// position (and their raw key text).
pub fn apply_merge(doc: &mut Value, patch: &Value) {
  if let Value::Lazy(lazy) = patch {
    return apply_merge(doc, &lazy.value());
  }
  let Value::Object(members) = patch else {
    *doc = patch.clone();
    return;
  };
  if !matches!(doc.resolve_mut(), Value::Object(_)) {
    *doc = Value::Object(Object::new());
  }
  let Value::Object(target) = doc else {
    unreachable!("made an object above")
  };
  for (raw_key, value) in members.iter() {
    let key = super::text::decode(raw_key);
    let slot = target.find(&key);
    match (value, slot) {
      (Value::Null, Some(slot)) => {
        target.remove_slot(slot);
      }
      (Value::Null, None) => {}
      (_, Some(slot)) => {
        if let Some(existing) = target.value_at_mut(slot) {
          apply_merge(existing, value);
        }
      }
      (_, None) => {
        let mut fresh = Value::Null;
        apply_merge(&mut fresh, value);
        target.insert_raw(raw_key.into(), fresh);
      }
    }
  }
  target.compact_if_sparse();
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::json::{format, parse};

  fn merged(target: &str, patch: &str) -> String {
    let mut doc = parse(target.as_bytes()).unwrap();
    apply_merge(&mut doc, &parse(patch.as_bytes()).unwrap());
    String::from_utf8(format(&doc, ""))
      .unwrap()
      .trim_end()
      .to_string()
  }

  #[test]
  fn rfc_7396_appendix_a() {
    for (target, patch, result) in [
      (r#"{"a":"b"}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
      (r#"{"a":"b"}"#, r#"{"b":"c"}"#, r#"{"a":"b","b":"c"}"#),
      (r#"{"a":"b"}"#, r#"{"a":null}"#, r#"{}"#),
      (r#"{"a":"b","b":"c"}"#, r#"{"a":null}"#, r#"{"b":"c"}"#),
      (r#"{"a":["b"]}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
      (r#"{"a":"c"}"#, r#"{"a":["b"]}"#, r#"{"a":["b"]}"#),
      (
        r#"{"a":{"b":"c"}}"#,
        r#"{"a":{"b":"d","c":null}}"#,
        r#"{"a":{"b":"d"}}"#,
      ),
      (r#"{"a":[{"b":"c"}]}"#, r#"{"a":[1]}"#, r#"{"a":[1]}"#),
      (r#"["a","b"]"#, r#"["c","d"]"#, r#"["c","d"]"#),
      (r#"{"a":"b"}"#, r#"["c"]"#, r#"["c"]"#),
      (r#"{"a":"foo"}"#, "null", "null"),
      (r#"{"a":"foo"}"#, r#""bar""#, r#""bar""#),
      (r#"{"e":null}"#, r#"{"a":1}"#, r#"{"e":null,"a":1}"#),
      (r#"[1,2]"#, r#"{"a":"b","c":null}"#, r#"{"a":"b"}"#),
      (
        r#"{}"#,
        r#"{"a":{"bb":{"ccc":null}}}"#,
        r#"{"a":{"bb":{}}}"#,
      ),
    ] {
      assert_eq!(merged(target, patch), result, "{target} + {patch}");
    }
  }

  #[test]
  fn positions_and_spellings_are_kept() {
    assert_eq!(
      merged(
        r#"{"\u0061":1,"b":2,"c":3}"#,
        r#"{"a":10,"b":null,"d":4,"c":{"x":1}}"#
      ),
      r#"{"\u0061":10,"c":{"x":1},"d":4}"#
    );
    assert_eq!(
      merged(r#"{"n":1.50}"#, r#"{"m":1e+21}"#),
      r#"{"n":1.50,"m":1e+21}"#
    );
  }

  #[test]
  fn many_deletions_in_a_big_object() {
    let mut text = String::from("{");
    for i in 0..1000 {
      text.push_str(&format!("\"k{i}\":{i},"));
    }
    text.push_str("\"last\":0}");
    let mut doc = parse(text.as_bytes()).unwrap();
    let mut patch = String::from("{");
    for i in 0..999 {
      patch.push_str(&format!("\"k{i}\":null,"));
    }
    patch.push_str("\"new\":1}");
    apply_merge(&mut doc, &parse(patch.as_bytes()).unwrap());
    assert_eq!(format(&doc, ""), b"{\"k999\":999,\"last\":0,\"new\":1}\n");
  }
}
