//! Values of the expression language and the JavaScript conversions applied to them
//! (ECMA-262 §7.1 ToBoolean, ToNumber, ToString; §7.2.14/15 loose and strict equality).

use std::borrow::Cow;
use std::fmt::Write as _;

/// A JavaScript value as far as the supported expressions can produce one.
///
/// Strings borrow from the expression or the request when they can. `Object` stands for the
/// objects an expression may name without reading a field (`req.headers`, `egContext`): JavaScript
/// turns them into `"[object Object]"` and they are truthy.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `undefined`: a missing header, query parameter or consumer field.
    Undefined,
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number (IEEE 754 double, as in JavaScript).
    Number(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// An object (only its identity-free behaviour is kept: `[object Object]`, truthy).
    Object,
}

impl Value<'_> {
    /// JavaScript ToBoolean: `undefined`, `null`, `false`, `0`, `NaN` and `""` are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Undefined | Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => !(*n == 0.0 || n.is_nan()),
            Value::Str(s) => !s.is_empty(),
            Value::Object => true,
        }
    }

    /// JavaScript ToNumber.
    pub fn to_number(&self) -> f64 {
        match self {
            Value::Undefined | Value::Object => f64::NAN,
            Value::Null => 0.0,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Number(n) => *n,
            Value::Str(s) => string_to_number(s),
        }
    }

    /// JavaScript ToString (`1` → `"1"`, `1.5` → `"1.5"`, `undefined` → `"undefined"`).
    pub fn to_js_string(&self) -> Cow<'_, str> {
        match self {
            Value::Undefined => Cow::Borrowed("undefined"),
            Value::Null => Cow::Borrowed("null"),
            Value::Bool(true) => Cow::Borrowed("true"),
            Value::Bool(false) => Cow::Borrowed("false"),
            Value::Number(n) => Cow::Owned(number_to_string(*n)),
            Value::Str(s) => Cow::Borrowed(s),
            Value::Object => Cow::Borrowed("[object Object]"),
        }
    }

    /// Appends the JavaScript ToString of this value to `out`.
    pub fn write_js_string(&self, out: &mut String) {
        match self {
            Value::Number(n) => write_number(*n, out),
            other => out.push_str(&other.to_js_string()),
        }
    }

    /// JavaScript `===`.
    pub fn strict_equals(&self, other: &Value<'_>) -> bool {
        match (self, other) {
            (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            // Two objects are equal only when they are the same object, which the values here
            // cannot tell; none of the supported lookups is worth comparing that way.
            _ => false,
        }
    }

    /// JavaScript `==` (IsLooselyEqual) on these values.
    pub fn loose_equals(&self, other: &Value<'_>) -> bool {
        match (self, other) {
            (Value::Undefined | Value::Null, Value::Undefined | Value::Null) => true,
            (Value::Undefined | Value::Null, _) | (_, Value::Undefined | Value::Null) => false,
            (Value::Object, Value::Object) => false,
            // An object compares as its primitive value, "[object Object]".
            (Value::Object, b) => Value::Str(Cow::Borrowed("[object Object]")).loose_equals(b),
            (a, Value::Object) => a.loose_equals(&Value::Str(Cow::Borrowed("[object Object]"))),
            (Value::Str(a), Value::Str(b)) => a == b,
            (a, b) => {
                if std::mem::discriminant(a) == std::mem::discriminant(b) {
                    a.strict_equals(b)
                } else {
                    a.to_number() == b.to_number()
                }
            }
        }
    }
}

/// JavaScript's white space and line terminators, trimmed by ToNumber (ECMA-262 §7.1.4.1).
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{a}' | '\u{b}' | '\u{c}' | '\u{d}' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// JavaScript ToNumber of a string (StringToNumber): trimmed; empty is 0; decimal with optional
/// sign, fraction and exponent, `Infinity`, or `0x`/`0o`/`0b` integers; anything else is NaN.
pub fn string_to_number(s: &str) -> f64 {
    let s = s.trim_matches(is_js_space);
    if s.is_empty() {
        return 0.0;
    }
    let radix = |digits: &str, radix: u32| -> f64 {
        if digits.is_empty() {
            return f64::NAN;
        }
        let mut n = 0.0f64;
        for c in digits.chars() {
            match c.to_digit(radix) {
                Some(d) => n = n * f64::from(radix) + f64::from(d),
                None => return f64::NAN,
            }
        }
        n
    };
    // Compared as bytes: the text may be a header value, with a multi-byte character anywhere.
    let lower = |p: &str| s.len() > 2 && s.as_bytes()[..2].eq_ignore_ascii_case(p.as_bytes());
    if lower("0x") {
        return radix(&s[2..], 16);
    }
    if lower("0o") {
        return radix(&s[2..], 8);
    }
    if lower("0b") {
        return radix(&s[2..], 2);
    }
    let (sign, unsigned) = match s.as_bytes()[0] {
        b'-' => (-1.0, &s[1..]),
        b'+' => (1.0, &s[1..]),
        _ => (1.0, s),
    };
    if unsigned == "Infinity" {
        return sign * f64::INFINITY;
    }
    if !is_decimal_literal(unsigned) {
        return f64::NAN;
    }
    unsigned.parse::<f64>().map_or(f64::NAN, |n| sign * n)
}

/// `StrUnsignedDecimalLiteral`: digits with an optional fraction (at least one digit in all)
/// and an optional exponent.
fn is_decimal_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut count = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        count += digits(&mut i);
    }
    if count == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// JavaScript Number::toString(10) (ECMA-262 §6.1.6.1.20): the shortest digits that round-trip,
/// laid out in plain notation for exponents -7 < e < 21 and as `1.5e+21` / `1e-7` otherwise.
pub fn number_to_string(n: f64) -> String {
    let mut out = String::new();
    write_number(n, &mut out);
    out
}

fn write_number(n: f64, out: &mut String) {
    if n.is_nan() {
        out.push_str("NaN");
        return;
    }
    if n == 0.0 {
        out.push('0');
        return;
    }
    if n.is_infinite() {
        out.push_str(if n > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if n < 0.0 {
        out.push('-');
    }
    // Rust's `{:e}` prints the shortest round-trip digits, e.g. "1.5e0", "1e21", "1.2345e-7".
    let sci = format!("{:e}", n.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i32;
    // The value is 0.digits × 10^point.
    let point = exponent + 1;
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = point - 1;
        let _ = write!(out, "e{}{}", if e >= 0 { '+' } else { '-' }, e.abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_javascript_does() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.0, "0"),
            (-0.0, "0"),
            (100.0, "100"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (0.000001, "0.000001"),
            (0.0000001, "1e-7"),
            (1.2345e-7, "1.2345e-7"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (9007199254740993.0, "9007199254740992"),
        ];
        for (n, text) in cases {
            assert_eq!(number_to_string(*n), *text, "{n:?}");
        }
    }

    #[test]
    fn strings_convert_to_numbers_as_javascript_does() {
        let cases: &[(&str, f64)] = &[
            ("", 0.0),
            ("  12 ", 12.0),
            ("1.5", 1.5),
            ("-3", -3.0),
            ("+.5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("0x1F", 31.0),
            ("0b11", 3.0),
            ("0o17", 15.0),
            ("Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
        ];
        for (s, n) in cases {
            assert_eq!(string_to_number(s), *n, "{s:?}");
        }
        for s in [
            "abc", "1a", "inf", "nan", "infinity", ".", "1e", "-0x1", "0x", "1_000", "aé", "0é",
            "0xé", "é", "-é", "+",
        ] {
            assert!(string_to_number(s).is_nan(), "{s:?}");
        }
    }

    #[test]
    fn truthiness_and_equality_follow_javascript() {
        let s = |t: &'static str| Value::Str(Cow::Borrowed(t));
        assert!(!Value::Undefined.truthy());
        assert!(!s("").truthy());
        assert!(s("0").truthy());
        assert!(!Value::Number(f64::NAN).truthy());
        assert!(Value::Object.truthy());
        assert!(Value::Undefined.loose_equals(&Value::Null));
        assert!(!Value::Undefined.strict_equals(&Value::Null));
        assert!(s("1").loose_equals(&Value::Number(1.0)));
        assert!(!s("1").strict_equals(&Value::Number(1.0)));
        assert!(Value::Bool(true).loose_equals(&s("1")));
        assert!(!Value::Number(f64::NAN).strict_equals(&Value::Number(f64::NAN)));
        assert!(Value::Object.loose_equals(&s("[object Object]")));
        assert!(!Value::Null.loose_equals(&Value::Number(0.0)));
    }
}
