//! The writer: a `Value` as V8's JSON.stringify writes it, from the raw texts the tree keeps.

use super::value::Value;

/// `JSON.stringify(value, null, space) + "\n"`, byte for byte as V8 writes it, given the raw
/// texts: `indent` "" is compact, anything else is V8's gap string (the caller turns a number n
/// into n spaces and cuts a string to 10 characters, as V8 does). Empty containers are `{}` and
/// `[]` in both modes.
pub fn format(value: &Value, indent: &str) -> Vec<u8> {
  let mut out = Vec::new();
  write(&mut out, value, indent.as_bytes(), 0);
  out.push(b'\n');
  out
}

fn write(out: &mut Vec<u8>, value: &Value, indent: &[u8], level: usize) {
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
          out.push(b',');
        }
        newline(out, indent, level + 1);
        write(out, item, indent, level + 1);
      }
      newline(out, indent, level);
      out.push(b']');
    }
    Value::Object(object) if object.is_empty() => out.extend_from_slice(b"{}"),
    Value::Object(object) => {
      out.push(b'{');
      for (k, (key, item)) in object.iter().enumerate() {
        if k > 0 {
          out.push(b',');
        }
        newline(out, indent, level + 1);
        quoted(out, key);
        out.push(b':');
        if !indent.is_empty() {
          out.push(b' ');
        }
        write(out, item, indent, level + 1);
      }
      newline(out, indent, level);
      out.push(b'}');
    }
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
