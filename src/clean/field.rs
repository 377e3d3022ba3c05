//! A lenient JSON field: whatever a message holds under one key, borrowed from the message
//! where possible, so that the per-stream structs deserialize in one pass without
//! `serde_json::Value` and every type rule is applied afterwards, with a typed [`Reason`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Reason;
use super::text::is_null_marker;

/// The value of one field of a message. `Missing` (the `Default`) when the key is absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum Field<'a> {
    #[default]
    Missing,
    Null,
    Str(Cow<'a, str>),
    Int(i64),
    /// A JSON integer above `i64::MAX` (and within `u64`).
    UInt(u64),
    Float(f64),
    Bool(bool),
    /// An object or array: never a valid value here, so its contents are skipped.
    Object,
    Array,
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Field::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Field::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Field::UInt(v), Field::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Field::Float(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Array)
    }
}

/// Lower bound and (exclusive) upper bound of `i64` as `f64`: -2^63 and 2^63.
const I64_MIN_F64: f64 = -9_223_372_036_854_775_808.0;
const I64_END_F64: f64 = 9_223_372_036_854_775_808.0;

impl<'a> Field<'a> {
    /// An integer: a JSON integer, a float without fractional part (`5730.0`), or either given
    /// as a string (`"5730"`, `" 5730 "`, `"5730.0"`).
    pub(crate) fn int(&self, field: &'static str) -> Result<i64, Reason> {
        let wrong = || Reason::WrongType {
            field,
            expected: "integer",
        };
        match self {
            Field::Int(v) => Ok(*v),
            Field::UInt(_) => Err(Reason::IntegerOverflow { field }),
            Field::Float(v) => float_to_int(*v, field),
            Field::Str(s) => {
                let s = s.trim();
                match s.parse::<i64>() {
                    Ok(v) => Ok(v),
                    Err(e) if is_overflow(&e) => Err(Reason::IntegerOverflow { field }),
                    Err(_) => match s.parse::<f64>() {
                        Ok(v) if v.is_finite() && looks_numeric(s) => float_to_int(v, field),
                        _ => Err(wrong()),
                    },
                }
            }
            Field::Missing => Err(Reason::MissingField(field)),
            Field::Null => Err(Reason::NullField(field)),
            Field::Bool(_) | Field::Object | Field::Array => Err(wrong()),
        }
    }

    /// A number: a JSON number or a number given as a string. Non-finite values can only
    /// come from strings (`"1e999"`, `"NaN"`); range checks downstream reject them.
    pub(crate) fn float(&self, field: &'static str) -> Result<f64, Reason> {
        let wrong = || Reason::WrongType {
            field,
            expected: "number",
        };
        match self {
            Field::Int(v) => Ok(*v as f64),
            Field::UInt(v) => Ok(*v as f64),
            Field::Float(v) => Ok(*v),
            Field::Str(s) => s.trim().parse::<f64>().map_err(|_| wrong()),
            Field::Missing => Err(Reason::MissingField(field)),
            Field::Null => Err(Reason::NullField(field)),
            Field::Bool(_) | Field::Object | Field::Array => Err(wrong()),
        }
    }

    /// The text of a text field before null markers: a string as given, a number as its
    /// decimal text; `None` for JSON null.
    pub(crate) fn raw_text(self, field: &'static str) -> Result<Option<Cow<'a, str>>, Reason> {
        match self {
            Field::Str(s) => Ok(Some(s)),
            Field::Null => Ok(None),
            Field::Int(v) => Ok(Some(Cow::Owned(v.to_string()))),
            Field::UInt(v) => Ok(Some(Cow::Owned(v.to_string()))),
            Field::Float(v) => Ok(Some(Cow::Owned(float_text(v)))),
            Field::Missing => Err(Reason::MissingField(field)),
            Field::Bool(_) | Field::Object | Field::Array => Err(Reason::WrongType {
                field,
                expected: "string",
            }),
        }
    }

    /// The value of an optional text field: null markers and JSON null become `None`.
    pub(crate) fn text(self, field: &'static str) -> Result<Option<Cow<'a, str>>, Reason> {
        Ok(self.raw_text(field)?.filter(|s| !is_null_marker(s)))
    }

    /// The value of a text field that must not be null (after null markers).
    pub(crate) fn required_text(self, field: &'static str) -> Result<Cow<'a, str>, Reason> {
        self.text(field)?.ok_or(Reason::NullField(field))
    }
}

fn is_overflow(e: &std::num::ParseIntError) -> bool {
    use std::num::IntErrorKind;
    matches!(
        e.kind(),
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow
    )
}

/// Whether a string `f64::from_str` accepted is a plain number, not `inf`/`NaN`/`infinity`.
fn looks_numeric(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
}

fn float_to_int(v: f64, field: &'static str) -> Result<i64, Reason> {
    if !v.is_finite() || v.fract() != 0.0 {
        Err(Reason::WrongType {
            field,
            expected: "integer",
        })
    } else if !(I64_MIN_F64..I64_END_F64).contains(&v) {
        Err(Reason::IntegerOverflow { field })
    } else {
        Ok(v as i64)
    }
}

/// A JSON float as JSON would write it (`5730.0`, `1.5`, `1e20`).
fn float_text(v: f64) -> String {
    serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Field<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn deserializes_every_json_kind() {
        assert_eq!(parse("null"), Field::Null);
        assert_eq!(parse("true"), Field::Bool(true));
        assert_eq!(parse("false"), Field::Bool(false));
        assert_eq!(parse("12"), Field::Int(12));
        assert_eq!(parse("-12"), Field::Int(-12));
        assert_eq!(parse("9223372036854775807"), Field::Int(i64::MAX));
        assert_eq!(parse("-9223372036854775808"), Field::Int(i64::MIN));
        assert_eq!(parse("9223372036854775808"), Field::UInt(1 << 63));
        assert_eq!(parse("18446744073709551615"), Field::UInt(u64::MAX));
        // Beyond u64 serde_json gives a float.
        assert_eq!(
            parse("18446744073709551616"),
            Field::Float(18446744073709551616.0)
        );
        assert_eq!(parse("1.5"), Field::Float(1.5));
        assert_eq!(parse("{\"a\": [1, {\"b\": 2}]}"), Field::Object);
        assert_eq!(parse("[1, [2], {}]"), Field::Array);
        assert!(matches!(parse("\"abc\""), Field::Str(Cow::Borrowed("abc"))));
        // Escapes need an owned string.
        assert!(matches!(parse("\"a\\nb\""), Field::Str(Cow::Owned(ref s)) if s == "a\nb"));
    }

    #[test]
    fn int_rules() {
        let f = "ind";
        let wrong = Err(Reason::WrongType {
            field: f,
            expected: "integer",
        });
        let overflow = Err(Reason::IntegerOverflow { field: f });
        let cases: &[(&str, Result<i64, Reason>)] = &[
            ("5730", Ok(5730)),
            ("-3", Ok(-3)),
            ("5730.0", Ok(5730)),
            ("-0.0", Ok(0)),
            ("1e3", Ok(1000)),
            ("\"5730\"", Ok(5730)),
            ("\" 5730 \"", Ok(5730)),
            ("\"+5730\"", Ok(5730)),
            ("\"5730.0\"", Ok(5730)),
            ("\"-7\"", Ok(-7)),
            ("9223372036854775807", Ok(i64::MAX)),
            ("\"9223372036854775807\"", Ok(i64::MAX)),
            ("-9223372036854775808", Ok(i64::MIN)),
            ("5730.5", wrong.clone()),
            ("\"5730.5\"", wrong.clone()),
            ("\"seven\"", wrong.clone()),
            ("\"\"", wrong.clone()),
            ("\"inf\"", wrong.clone()),
            ("\"NaN\"", wrong.clone()),
            ("\"0x10\"", wrong.clone()),
            ("\"1_000\"", wrong.clone()),
            ("true", wrong.clone()),
            ("{}", wrong.clone()),
            ("[5730]", wrong.clone()),
            ("9223372036854775808", overflow.clone()),
            ("\"9223372036854775808\"", overflow.clone()),
            ("\"-9223372036854775809\"", overflow.clone()),
            ("1e19", overflow.clone()),
            ("\"1e19\"", overflow.clone()),
            ("99999999999999999999", overflow.clone()),
            ("null", Err(Reason::NullField(f))),
        ];
        for (json, expected) in cases {
            assert_eq!(&parse(json).int(f), expected, "{json}");
        }
        assert_eq!(Field::Missing.int(f), Err(Reason::MissingField(f)));
    }

    #[test]
    fn float_rules() {
        let f = "latitude";
        let wrong = Err(Reason::WrongType {
            field: f,
            expected: "number",
        });
        let cases: &[(&str, Result<f64, Reason>)] = &[
            ("1.5", Ok(1.5)),
            ("-88.8298", Ok(-88.8298)),
            ("12", Ok(12.0)),
            ("\"12\"", Ok(12.0)),
            ("\" -88.8298 \"", Ok(-88.8298)),
            ("\"1e1\"", Ok(10.0)),
            ("18446744073709551615", Ok(u64::MAX as f64)),
            ("\"north\"", wrong.clone()),
            ("\"\"", wrong.clone()),
            ("false", wrong.clone()),
            ("[1.5]", wrong.clone()),
            ("{\"lat\": 1.5}", wrong.clone()),
            ("null", Err(Reason::NullField(f))),
        ];
        for (json, expected) in cases {
            assert_eq!(&parse(json).float(f), expected, "{json}");
        }
        assert!(parse("\"NaN\"").float(f).unwrap().is_nan());
        assert!(parse("\"1e999\"").float(f).unwrap().is_infinite());
        assert_eq!(Field::Missing.float(f), Err(Reason::MissingField(f)));
    }

    #[test]
    fn text_rules() {
        let f = "title";
        let wrong = Err(Reason::WrongType {
            field: f,
            expected: "string",
        });
        let cases: &[(&str, Result<Option<&str>, Reason>)] = &[
            ("\"Hello\"", Ok(Some("Hello"))),
            // Kept as is, not trimmed.
            ("\"  Hello \"", Ok(Some("  Hello "))),
            ("\"a\\u00e9\"", Ok(Some("aé"))),
            ("12", Ok(Some("12"))),
            ("-12", Ok(Some("-12"))),
            ("12.5", Ok(Some("12.5"))),
            ("5730.0", Ok(Some("5730.0"))),
            ("18446744073709551615", Ok(Some("18446744073709551615"))),
            ("null", Ok(None)),
            ("\"\"", Ok(None)),
            ("\"   \"", Ok(None)),
            ("\" No Title Data Available \"", Ok(None)),
            ("true", wrong.clone()),
            ("{}", wrong.clone()),
            ("[\"a\"]", wrong.clone()),
        ];
        for (json, expected) in cases {
            let got = parse(json).text(f);
            assert_eq!(
                got.as_ref().map(|o| o.as_deref()),
                expected.as_ref().map(|o| *o),
                "{json}"
            );
        }
        assert_eq!(Field::Missing.text(f), Err(Reason::MissingField(f)));
        assert_eq!(parse("null").required_text(f), Err(Reason::NullField(f)));
        assert_eq!(
            parse("\"User Info Error\"").required_text(f),
            Err(Reason::NullField(f))
        );
        assert_eq!(parse("\"Ann\"").required_text(f).as_deref(), Ok("Ann"));
        // raw_text keeps markers.
        assert_eq!(
            parse("\"User Info Error\"").raw_text(f),
            Ok(Some(Cow::Borrowed("User Info Error")))
        );
    }
}
