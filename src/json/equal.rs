//! RFC 6902 `test` equality: by meaning, not by spelling.

use super::text::decode;
use super::value::Value;

/// Numbers are equal when numerically equal, exactly (big integers beyond 2^53 too: the texts
/// are normalised, not rounded through f64); strings by decoded content; objects by members
/// regardless of order; arrays element-wise.
pub fn equal(a: &Value, b: &Value) -> bool {
  // Parsed for the moment only: comparing a whole document must not leave it all parsed.
  if let Value::Lazy(lazy) = a {
    return equal(&lazy.value(), b);
  }
  if let Value::Lazy(lazy) = b {
    return equal(a, &lazy.value());
  }
  match (a, b) {
    (Value::Null, Value::Null) => true,
    (Value::Bool(x), Value::Bool(y)) => x == y,
    (Value::Number(x), Value::Number(y)) => {
      x == y
        || match (Decimal::parse(x), Decimal::parse(y)) {
          (Some(x), Some(y)) => x == y,
          // Text built by hand that is no JSON number: only its spelling can be compared.
          _ => false,
        }
    }
    (Value::String(x), Value::String(y)) => x == y || decode(x) == decode(y),
    (Value::Array(x), Value::Array(y)) => {
      x.len() == y.len() && x.iter().zip(y).all(|(x, y)| equal(x, y))
    }
    (Value::Object(x), Value::Object(y)) => {
      x.len() == y.len()
        && x
          .iter()
          .all(|(key, v)| y.get_decoded(&decode(key)).is_some_and(|w| equal(v, w)))
    }
    _ => false,
  }
}

/// A number as ±0.DIGITS × 10^exponent with no leading or trailing zero digit; zero has no
/// digits and no sign, so -0 equals 0 (as `-0 === 0` in JS).
#[derive(Debug)]
struct Decimal<'a> {
  negative: bool,
  digits: Vec<&'a [u8]>,
  exponent: i128,
}

/// Exponents are clamped here: texts beyond it (1e99999999999999999999999999999999) are
/// astronomically past any value, and clamping keeps the arithmetic in range.
const EXPONENT_LIMIT: i128 = 1 << 100;

impl<'a> Decimal<'a> {
  fn parse(text: &'a str) -> Option<Decimal<'a>> {
    let mut s = text.as_bytes();
    let negative = s.first() == Some(&b'-');
    if negative {
      s = &s[1..];
    }
    let int_len = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let (int, mut rest) = s.split_at(int_len);
    let mut frac: &[u8] = &[];
    if let Some(after) = rest.strip_prefix(b".") {
      let n = after.iter().take_while(|b| b.is_ascii_digit()).count();
      (frac, rest) = after.split_at(n);
    }
    let mut exponent: i128 = 0;
    if let Some(after) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
      let (sign, digits) = match after.first() {
        Some(b'-') => (-1, &after[1..]),
        Some(b'+') => (1, &after[1..]),
        _ => (1, after),
      };
      if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
      }
      for d in digits {
        exponent = (exponent * 10 + i128::from(d - b'0')).min(EXPONENT_LIMIT);
      }
      exponent *= sign;
      rest = &[];
    }
    if int.is_empty() || !rest.is_empty() {
      return None;
    }
    // Digits of int then frac, leading and trailing zeros dropped; the decimal point sits after
    // int, so each leading zero dropped moves it one place left.
    let lead_int = int.iter().take_while(|&&b| b == b'0').count();
    let (int, frac, point) = if lead_int == int.len() {
      let lead_frac = frac.iter().take_while(|&&b| b == b'0').count();
      (&int[..0], &frac[lead_frac..], -(lead_frac as i128))
    } else {
      (&int[lead_int..], frac, (int.len() - lead_int) as i128)
    };
    let (int, frac) = if frac.iter().all(|&b| b == b'0') {
      let trail = int.iter().rev().take_while(|&&b| b == b'0').count();
      (&int[..int.len() - trail], &frac[..0])
    } else {
      let trail = frac.iter().rev().take_while(|&&b| b == b'0').count();
      (int, &frac[..frac.len() - trail])
    };
    if int.is_empty() && frac.is_empty() {
      return Some(Decimal {
        negative: false,
        digits: Vec::new(),
        exponent: 0,
      });
    }
    Some(Decimal {
      negative,
      digits: [int, frac].into_iter().filter(|d| !d.is_empty()).collect(),
      exponent: point + exponent,
    })
  }
}

impl PartialEq for Decimal<'_> {
  fn eq(&self, other: &Self) -> bool {
    // Digit runs may split at different places (1.5 is "1","5"; 15e-1 is "15"): compare the
    // concatenation.
    self.negative == other.negative
      && self.exponent == other.exponent
      && self
        .digits
        .iter()
        .flat_map(|d| d.iter())
        .eq(other.digits.iter().flat_map(|d| d.iter()))
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::json::parse;

  fn eq(a: &str, b: &str) -> bool {
    equal(&parse(a.as_bytes()).unwrap(), &parse(b.as_bytes()).unwrap())
  }

  #[test]
  fn numbers_compare_by_exact_value() {
    for (a, b) in [
      ("1", "1.0"),
      ("1", "1e0"),
      ("100", "1e2"),
      ("100", "1E+2"),
      ("0.5", "5e-1"),
      ("-0", "0"),
      ("0.000", "-0e10"),
      ("1.5", "15e-1"),
      ("120", "0.00012e6"),
      ("18446744073709551616", "1.8446744073709551616e19"),
      ("9223372036854775807", "9223372036854775807.000"),
      ("1e+21", "1000000000000000000000"),
    ] {
      assert!(eq(a, b), "{a} == {b}");
      assert!(eq(b, a), "{b} == {a}");
    }
    for (a, b) in [
      ("1", "-1"),
      ("1", "10"),
      ("0.1", "1"),
      ("9007199254740993", "9007199254740992"),
      ("18446744073709551616", "18446744073709551617"),
      ("1e400", "1e401"),
      ("1.5", "1.05"),
      ("105", "1.5e2"),
    ] {
      assert!(!eq(a, b), "{a} != {b}");
    }
    assert!(eq(
      "1e99999999999999999999999999999999999999",
      "1e99999999999999999999999999999999999999"
    ));
  }

  #[test]
  fn strings_compare_by_content() {
    assert!(eq(r#""a""#, r#""\u0061""#));
    assert!(eq(r#""\/""#, r#""/""#));
    assert!(eq(r#""😀""#, r#""\ud83d\ude00""#));
    assert!(!eq(r#""\ud800""#, r#""\udc00""#));
    assert!(!eq(r#""10""#, "10"));
  }

  #[test]
  fn containers_compare_structurally() {
    assert!(eq(
      r#"{"a":1,"b":[1,{"c":null}]}"#,
      r#"{"b":[1.0,{"c":null}],"\u0061":1}"#
    ));
    assert!(!eq(r#"{"a":1}"#, r#"{"a":1,"b":2}"#));
    assert!(!eq(r#"{"a":1,"b":2}"#, r#"{"a":1}"#));
    assert!(!eq(r#"{"a":1}"#, r#"{"b":1}"#));
    assert!(!eq("[1,2]", "[2,1]"));
    assert!(!eq("[1]", "[1,1]"));
    assert!(!eq("[]", "{}"));
    assert!(!eq("null", "false"));
    assert!(eq("[true,null]", "[true,null]"));
  }
}
