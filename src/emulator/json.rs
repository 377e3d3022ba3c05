//! The records as the original Python emulator sends them: `json.dumps` with its defaults, byte
//! for byte. Consumers see these exact bytes (quarantine keeps them raw, tests and committed
//! expectations compare them), so the layout is part of the contract, not a detail:
//!
//! - separators `", "` and `": "`;
//! - `ensure_ascii=True`: every character outside printable ASCII as `\uXXXX` (lowercase hex),
//!   characters above the BMP as a UTF-16 surrogate pair;
//! - floats as Python's `repr`: shortest round-trip digits, `.0` on integral values, exponent
//!   form (`1e-05`, `1e+16`) below 1e-4 and from 1e16 on;
//! - keys in the order of the real tables (the field order of the record structs below);
//! - datetimes as `str(datetime)`: `YYYY-MM-DD HH:MM:SS`.
//!
//! serde_json does the walking and the quote / backslash / control-character escapes (the
//! same as Python's); [`PythonFormatter`] supplies the rest.

use std::fmt;
use std::io::{self, Write};

use chrono::NaiveDateTime;
use serde::{Serialize, Serializer};
use serde_json::ser::Formatter;

/// A `pin` message, fields in the order of the real table.
#[derive(Serialize)]
pub(super) struct PinRecord<'a> {
    pub index: u64,
    pub unique_id: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub poster_name: &'a str,
    pub follower_count: &'a str,
    pub tag_list: &'a str,
    pub is_image_or_video: &'a str,
    pub image_src: &'a str,
    pub downloaded: u8,
    pub save_location: &'a str,
    pub category: &'a str,
}

/// A `geo` message.
#[derive(Serialize)]
pub(super) struct GeoRecord<'a> {
    pub ind: u64,
    #[serde(serialize_with = "python_datetime")]
    pub timestamp: NaiveDateTime,
    pub latitude: f64,
    pub longitude: f64,
    pub country: &'a str,
}

/// A `user` message.
#[derive(Serialize)]
pub(super) struct UserRecord<'a> {
    pub ind: u64,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub age: u8,
    #[serde(serialize_with = "python_datetime")]
    pub date_joined: NaiveDateTime,
}

/// `str(datetime)` of a naive datetime with whole seconds is chrono's `Display` of it
/// (`2019-03-04 05:06:07`), written straight into the output, no intermediate string.
fn python_datetime<S: Serializer>(value: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// `json.dumps(record)`. `capacity` is the usual size of such a record, so the buffer is
/// allocated once.
pub(super) fn dumps(record: &impl Serialize, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    record
        .serialize(&mut serde_json::Serializer::with_formatter(
            &mut out,
            PythonFormatter,
        ))
        .expect("strings and numbers serialise into memory without error");
    out
}

/// serde_json's compact output turned into Python's `json.dumps` defaults (module comment).
/// Non-finite floats never reach it: serde_json writes them as `null` where Python writes
/// `NaN` / `Infinity` (not JSON either way), and the generator makes none.
pub(super) struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut text = FloatText::default();
        let magnitude = value.abs();
        if magnitude != 0.0 && !(1e-4..1e16).contains(&magnitude) {
            // Rust writes `1.234e-5` and `1e16`; Python `1.234e-05` and `1e+16`.
            text.format(format_args!("{value:e}"))?;
            let (mantissa, exponent) = text
                .as_str()
                .split_once('e')
                .unwrap_or((text.as_str(), "0"));
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(digits) => ('-', digits),
                None => ('+', exponent),
            };
            write!(writer, "{mantissa}e{sign}{digits:0>2}")
        } else {
            // Shortest round-trip digits, never an exponent in this range; Python adds `.0`.
            text.format(format_args!("{value}"))?;
            writer.write_all(text.as_str().as_bytes())?;
            if text.as_str().contains('.') {
                Ok(())
            } else {
                writer.write_all(b".0")
            }
        }
    }

    /// serde_json hands over the runs it does not escape itself: they may hold any character
    /// but `"`, `\` and the C0 controls, and `ensure_ascii` allows only printable ASCII.
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Almost every run is printable ASCII already: one quick check, one write.
        if fragment.is_ascii() && !fragment.as_bytes().contains(&0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut rest = fragment;
        while let Some((at, c)) = rest
            .char_indices()
            .find(|&(_, c)| !(' '..='~').contains(&c))
        {
            writer.write_all(&rest.as_bytes()[..at])?;
            for unit in c.encode_utf16(&mut [0; 2]) {
                write!(writer, "\\u{unit:04x}")?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// A float's text on the stack: the longest a double prints, in either form, is 24 bytes
/// (`-2.2250738585072014e-308`, `-0.00012345678901234568`), so no per-number allocation.
#[derive(Default)]
struct FloatText {
    bytes: [u8; 32],
    len: usize,
}

impl FloatText {
    fn format(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        fmt::Write::write_fmt(self, args)
            .map_err(|_| io::Error::other("float text longer than 32 bytes"))
    }

    fn as_str(&self) -> &str {
        // Only whole `str`s are ever copied in (`write_str`), so this is always UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for FloatText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python(value: &impl Serialize) -> String {
        String::from_utf8(dumps(value, 0)).unwrap()
    }

    /// Expectations printed by CPython 3 `json.dumps` (default arguments).
    #[test]
    fn strings_as_python_writes_them() {
        #[derive(Serialize)]
        struct Object {
            s: &'static str,
            #[serde(rename = "k\u{e9}y")]
            key: u8,
        }
        let object = Object {
            s: "a\"b\\c/d\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}\u{e9}\u{2026}\u{a0}\u{1F600} end",
            key: 1,
        };
        assert_eq!(
            python(&object),
            r#"{"s": "a\"b\\c/d\n\r\t\b\f\u0001\u001f\u007f\u00e9\u2026\u00a0\ud83d\ude00 end", "k\u00e9y": 1}"#
        );
        assert_eq!(python(&(1, 2.0, "x")), r#"[1, 2.0, "x"]"#);
        assert_eq!(python(&""), r#""""#);
    }

    /// `repr(float)` per CPython 3, for both forms and the switch points between them.
    #[test]
    fn floats_as_python_writes_them() {
        for (value, want) in [
            (1e-05, "1e-05"),
            (12.0, "12.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (0.0001, "0.0001"),
            (0.000_012_34, "1.234e-05"),
            (2.5e-5, "2.5e-05"),
            (-1e-7, "-1e-07"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e22, "1e+22"),
            (9_999_999_999_999_998.0, "9999999999999998.0"),
            (123_456_789_012_345.6, "123456789012345.6"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (-2.2250738585072014e-308, "-2.2250738585072014e-308"),
            (0.1, "0.1"),
            (-88.8298, "-88.8298"),
            (-170.188, "-170.188"),
        ] {
            assert_eq!(python(&value), want, "{value:e}");
        }
    }

    #[test]
    fn datetimes_as_python_str_writes_them() {
        #[derive(Serialize)]
        struct At {
            #[serde(serialize_with = "python_datetime")]
            at: NaiveDateTime,
        }
        let at = chrono::NaiveDate::from_ymd_opt(2020, 2, 29)
            .and_then(|d| d.and_hms_opt(1, 1, 1))
            .unwrap();
        assert_eq!(python(&At { at }), r#"{"at": "2020-02-29 01:01:01"}"#);
    }
}
