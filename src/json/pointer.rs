//! RFC 6901 JSON pointers: parsing, and finding the value one names.

use std::fmt;

use super::value::Value;

/// An RFC 6901 pointer: its text as given (for messages) and its unescaped reference tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
  text: String,
  tokens: Vec<String>,
}

impl Pointer {
  /// "" is the root; anything else starts with '/'. Each token is unescaped `~1` -> '/', then
  /// `~0` -> '~' (one left-to-right pass does exactly that: "~01" is "~1"). Errors are argument
  /// errors, worded for the caller's message.
  pub fn parse(text: &str) -> Result<Pointer, String> {
    if text.is_empty() {
      return Ok(Pointer::root());
    }
    let Some(rest) = text.strip_prefix('/') else {
      return Err(format!(
        "invalid JSON pointer {text:?}: it must be empty or start with '/'"
      ));
    };
    let mut tokens = Vec::new();
    for raw in rest.split('/') {
      let mut token = String::with_capacity(raw.len());
      let mut chars = raw.chars();
      while let Some(c) = chars.next() {
        if c != '~' {
          token.push(c);
          continue;
        }
        match chars.next() {
          Some('0') => token.push('~'),
          Some('1') => token.push('/'),
          _ => {
            return Err(format!(
              "invalid JSON pointer {text:?}: '~' must be followed by 0 or 1"
            ))
          }
        }
      }
      tokens.push(token);
    }
    Ok(Pointer {
      text: text.to_string(),
      tokens,
    })
  }

  /// The pointer naming `tokens` (unescaped), its text escaped as RFC 6901 says.
  pub fn from_tokens<T: Into<String>>(tokens: impl IntoIterator<Item = T>) -> Pointer {
    let tokens: Vec<String> = tokens.into_iter().map(Into::into).collect();
    Pointer {
      text: text_of(&tokens),
      tokens,
    }
  }

  pub fn root() -> Pointer {
    Pointer {
      text: String::new(),
      tokens: Vec::new(),
    }
  }

  /// The unescaped reference tokens; empty for the root.
  pub fn tokens(&self) -> &[String] {
    &self.tokens
  }

  /// The pointer's text as it was given.
  pub fn as_str(&self) -> &str {
    &self.text
  }

  pub fn is_root(&self) -> bool {
    self.tokens.is_empty()
  }
}

impl fmt::Display for Pointer {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(&self.text)
  }
}

/// The pointer text of `tokens` (escaped again), for messages about a pointer's parent.
pub(crate) fn text_of(tokens: &[String]) -> String {
  tokens
    .iter()
    .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
    .collect()
}

/// An array index token: "0" or digits without a leading zero. `None` for anything else,
/// including "-", which names the element after the last. Too big for usize saturates, as it is
/// out of range anyway.
pub(crate) fn array_index(token: &str) -> Option<usize> {
  let b = token.as_bytes();
  if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b[0] == b'0' && b.len() > 1) {
    return None;
  }
  Some(token.parse().unwrap_or(usize::MAX))
}

/// The value `pointer` names in `doc`, if it exists; it may be `Value::Lazy`.
pub fn get<'a>(doc: &'a Value, pointer: &Pointer) -> Option<&'a Value> {
  resolve(doc, pointer.tokens())
}

/// The value `pointer` names in `doc`, for changing it in place: parsed, never `Value::Lazy`.
pub fn get_mut<'a>(doc: &'a mut Value, pointer: &Pointer) -> Option<&'a mut Value> {
  resolve_mut(doc, pointer.tokens())
}

/// The value at `tokens`; the containers on the way are parsed (and kept so) if `Lazy`, the
/// value itself is left as it is.
pub(crate) fn resolve<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
  tokens
    .iter()
    .try_fold(doc, |value, token| match value.resolved() {
      Value::Object(o) => o.get(token),
      Value::Array(a) => a.get(array_index(token)?),
      _ => None,
    })
}

/// The value at `tokens`, made parsed in place (never `Lazy`) with the containers on the way.
pub(crate) fn resolve_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
  let value = tokens
    .iter()
    .try_fold(doc, |value, token| match value.resolve_mut() {
      Value::Object(o) => o.get_mut(token),
      Value::Array(a) => a.get_mut(array_index(token)?),
      _ => None,
    })?;
  Some(value.resolve_mut())
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::json::{format, parse};

  fn tokens(text: &str) -> Vec<String> {
    Pointer::parse(text).unwrap().tokens().to_vec()
  }

  #[test]
  fn parsing_unescapes_tilde_one_then_tilde_zero() {
    assert!(tokens("").is_empty());
    assert!(Pointer::parse("").unwrap().is_root());
    assert_eq!(tokens("/"), [""]);
    assert_eq!(tokens("/a/b"), ["a", "b"]);
    assert_eq!(tokens("/a~1b/m~0n"), ["a/b", "m~n"]);
    assert_eq!(tokens("/~01"), ["~1"]);
    assert_eq!(tokens("/~10"), ["/0"]);
    assert_eq!(tokens("//x/"), ["", "x", ""]);
    assert_eq!(Pointer::parse("/a~1b").unwrap().to_string(), "/a~1b");
  }

  #[test]
  fn bad_pointers_are_argument_errors() {
    for bad in ["a", "#/a", "/a~", "/a~2", "/~x"] {
      let e = Pointer::parse(bad).unwrap_err();
      assert!(e.contains(&format!("{bad:?}")), "{e}");
    }
  }

  #[test]
  fn pointers_from_tokens_escape_again() {
    assert_eq!(text_of(&tokens("/a~1b/m~0n/~01")), "/a~1b/m~0n/~01");
    let built = Pointer::from_tokens(["a/b", "m~n", ""]);
    assert_eq!(built.as_str(), "/a~1b/m~0n/");
    assert_eq!(built, Pointer::parse("/a~1b/m~0n/").unwrap());
    assert_eq!(Pointer::from_tokens(Vec::<String>::new()), Pointer::root());
  }

  #[test]
  fn get_mut_changes_in_place() {
    let mut doc = parse(br#"{"a":[1,{"b":2}]}"#).unwrap();
    *get_mut(&mut doc, &Pointer::parse("/a/1/b").unwrap()).unwrap() = Value::Null;
    assert!(get_mut(&mut doc, &Pointer::parse("/a/2").unwrap()).is_none());
    assert_eq!(format(&doc, ""), b"{\"a\":[1,{\"b\":null}]}\n");
  }

  #[test]
  fn get_follows_rfc_6901_examples() {
    let doc = parse(
      br#"{"foo":["bar","baz"],"":0,"a/b":1,"c%d":2,"e^f":3,"g|h":4,"i\\j":5,"k\"l":6," ":7,"m~n":8}"#,
    )
    .unwrap();
    let at = |p: &str| get(&doc, &Pointer::parse(p).unwrap()).map(|v| format(v, ""));
    assert_eq!(at(""), Some(format(&doc, "")));
    assert_eq!(at("/foo"), Some(b"[\"bar\",\"baz\"]\n".to_vec()));
    for (p, n) in [
      ("/foo/0", "\"bar\""),
      ("/", "0"),
      ("/a~1b", "1"),
      ("/c%d", "2"),
      ("/e^f", "3"),
      ("/g|h", "4"),
      ("/i\\j", "5"),
      ("/k\"l", "6"),
      ("/ ", "7"),
      ("/m~0n", "8"),
    ] {
      assert_eq!(at(p), Some(format!("{n}\n").into_bytes()), "{p}");
    }
  }

  #[test]
  fn array_tokens_must_be_plain_indexes_in_range() {
    let doc = parse(br#"{"a":[10,20,30]}"#).unwrap();
    let at = |p: &str| get(&doc, &Pointer::parse(p).unwrap()).is_some();
    assert!(at("/a/0") && at("/a/2"));
    for missing in [
      "/a/3",
      "/a/-",
      "/a/01",
      "/a/+1",
      "/a/-1",
      "/a/ 1",
      "/a/1e0",
      "/a/",
      "/a/99999999999999999999999",
      "/a/0/x",
      "/b",
    ] {
      assert!(!at(missing), "{missing}");
    }
    assert_eq!(array_index("0"), Some(0));
    assert_eq!(array_index("10"), Some(10));
    assert_eq!(array_index("-"), None);
  }
}
