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
//! Written by hand, not through serde: the records are flat and fixed, and at 100k events/s the
//! serde walk plus a second escaping pass per string were a large share of the emulator's cost.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDateTime, Timelike};

/// A `pin` message, fields in the order of the real table.
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

impl PinRecord<'_> {
    /// `json.dumps(record)`.
    pub(super) fn dumps(&self) -> Vec<u8> {
        let mut object = PythonObject::with_capacity(1024);
        object.integer("index", self.index);
        object.string("unique_id", self.unique_id);
        object.string("title", self.title);
        object.string("description", self.description);
        object.string("poster_name", self.poster_name);
        object.string("follower_count", self.follower_count);
        object.string("tag_list", self.tag_list);
        object.string("is_image_or_video", self.is_image_or_video);
        object.string("image_src", self.image_src);
        object.integer("downloaded", self.downloaded.into());
        object.string("save_location", self.save_location);
        object.string("category", self.category);
        object.finish()
    }
}

/// A `geo` message.
pub(super) struct GeoRecord<'a> {
    pub ind: u64,
    pub timestamp: NaiveDateTime,
    pub latitude: f64,
    pub longitude: f64,
    pub country: &'a str,
}

impl GeoRecord<'_> {
    /// `json.dumps(record)`.
    pub(super) fn dumps(&self) -> Vec<u8> {
        let mut object = PythonObject::with_capacity(160);
        object.integer("ind", self.ind);
        object.datetime("timestamp", self.timestamp);
        object.float("latitude", self.latitude);
        object.float("longitude", self.longitude);
        object.string("country", self.country);
        object.finish()
    }
}

/// A `user` message.
pub(super) struct UserRecord<'a> {
    pub ind: u64,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub age: u8,
    pub date_joined: NaiveDateTime,
}

impl UserRecord<'_> {
    /// `json.dumps(record)`.
    pub(super) fn dumps(&self) -> Vec<u8> {
        let mut object = PythonObject::with_capacity(128);
        object.integer("ind", self.ind);
        object.string("first_name", self.first_name);
        object.string("last_name", self.last_name);
        object.integer("age", self.age.into());
        object.datetime("date_joined", self.date_joined);
        object.finish()
    }
}

/// One flat JSON object as `json.dumps` writes it, fields in the order they are added.
struct PythonObject {
    text: String,
}

impl PythonObject {
    /// `capacity` is the usual size of such a record, so the buffer is allocated once.
    fn with_capacity(capacity: usize) -> Self {
        let mut text = String::with_capacity(capacity);
        text.push('{');
        PythonObject { text }
    }

    /// Keys are the tables' column names, plain ASCII with nothing to escape: written as they
    /// are, without the scan.
    fn key(&mut self, key: &'static str) {
        debug_assert!(key.bytes().all(is_plain), "{key:?}");
        if self.text.len() > 1 {
            self.text.push_str(", ");
        }
        self.text.push('"');
        self.text.push_str(key);
        self.text.push_str("\": ");
    }

    fn string(&mut self, key: &'static str, value: &str) {
        self.key(key);
        write_string(&mut self.text, value);
    }

    fn integer(&mut self, key: &'static str, value: u64) {
        self.key(key);
        push_decimal(&mut self.text, value);
    }

    fn float(&mut self, key: &'static str, value: f64) {
        self.key(key);
        write_float(&mut self.text, value);
    }

    fn datetime(&mut self, key: &'static str, value: NaiveDateTime) {
        self.key(key);
        self.text.push('"');
        write_datetime(&mut self.text, value);
        self.text.push('"');
    }

    fn finish(mut self) -> Vec<u8> {
        self.text.push('}');
        self.text.into_bytes()
    }
}

/// Appends `value` in decimal, digits from the last on the stack (`write!` took its formatting
/// machinery per number).
pub(super) fn push_decimal(text: &mut String, value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    text.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

/// Bytes `ensure_ascii` writes as they are: printable ASCII but the quote and the backslash.
fn is_plain(byte: u8) -> bool {
    matches!(byte, b' '..=b'~') && byte != b'"' && byte != b'\\'
}

/// The length of the plain start of `bytes`: eight bytes at a time while all eight are plain
/// (whole strings, nearly always: the escaping scan was a large share of the emulator's cost
/// byte by byte), then byte by byte to the first that is not.
fn plain_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = ONES * 0x80;
    // High bits set if some byte of `x` is below `n` (at most 0x80), or is `byte`: exact for
    // the whole word, though not byte by byte.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x;
    let has = |x: u64, byte: u8| below(x ^ (ONES * u64::from(byte)), 1);
    let mut at = 0;
    for chunk in bytes.chunks_exact(8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("chunks of eight bytes"));
        // Controls, non-ASCII (its own high bits), DEL, the quote and the backslash: one test.
        let escapes = below(x, 0x20) | x | has(x, 0x7f) | has(x, b'"') | has(x, b'\\');
        if escapes & HIGHS != 0 {
            break;
        }
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|&b| !is_plain(b))
        .unwrap_or(bytes.len() - at)
}

/// `value` as a JSON string: plain bytes as they are, `"` `\` and `\n` `\r` `\t` `\b` `\f` with a
/// backslash, every other character as `\uXXXX` (lowercase hex; a surrogate pair above the BMP).
fn write_string(text: &mut String, value: &str) {
    text.push('"');
    let mut rest = value;
    // Almost every string is plain throughout: one scan, one copy.
    loop {
        let at = plain_prefix(rest.as_bytes());
        if at == rest.len() {
            break;
        }
        text.push_str(&rest[..at]);
        // Everything before `at` is ASCII, so a character starts there.
        let c = rest[at..].chars().next().unwrap_or_default();
        match c {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            '\t' => text.push_str("\\t"),
            '\u{8}' => text.push_str("\\b"),
            '\u{c}' => text.push_str("\\f"),
            _ => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    let _ = write!(text, "\\u{unit:04x}");
                }
            }
        }
        rest = &rest[at + c.len_utf8()..];
    }
    text.push_str(rest);
    text.push('"');
}

/// Python's `repr(float)` (module comment). Non-finite floats never reach it (Python writes
/// `NaN` / `Infinity`, not JSON): the generator makes none.
pub(super) fn write_float(text: &mut String, value: f64) {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-4..1e16).contains(&magnitude) {
        let start = text.len();
        // Rust writes `1.234e-5` and `1e16`; Python `1.234e-05` and `1e+16`.
        let _ = write!(text, "{value:e}");
        let e = start + text[start..].find('e').unwrap_or(text.len() - start);
        let exponent = text.split_off(e);
        let (sign, digits) = match exponent.strip_prefix("e-") {
            Some(digits) => ('-', digits),
            None => ('+', exponent.strip_prefix('e').unwrap_or("0")),
        };
        let _ = write!(text, "e{sign}{digits:0>2}");
    } else {
        // Shortest round-trip digits, as Python's; ryu writes no exponent in this range and
        // adds `.0` to integral values, as Python does. (`Display` gave the same digits for
        // the generator's coordinates in about twice the instructions, ~900 against ~460:
        // two thirds of the `geo` message's cost.)
        text.push_str(ryu::Buffer::new().format_finite(value));
    }
}

/// `str(datetime)`: `YYYY-MM-DD HH:MM:SS` for whole seconds in years 0 to 9999 (the generator's
/// are), digit by digit rather than through `Display`'s formatting machinery; anything else as
/// chrono's `Display`, which is Python's there too.
fn write_datetime(text: &mut String, at: NaiveDateTime) {
    let year = at.year();
    if !(0..=9999).contains(&year) || at.nanosecond() != 0 {
        let _ = write!(text, "{at}");
        return;
    }
    let two = |text: &mut String, value: u32| {
        text.push(char::from(b'0' + (value / 10) as u8));
        text.push(char::from(b'0' + (value % 10) as u8));
    };
    let year = year as u32;
    two(text, year / 100);
    two(text, year % 100);
    text.push('-');
    two(text, at.month());
    text.push('-');
    two(text, at.day());
    text.push(' ');
    two(text, at.hour());
    text.push(':');
    two(text, at.minute());
    text.push(':');
    two(text, at.second());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(build: impl FnOnce(&mut PythonObject)) -> String {
        let mut object = PythonObject::with_capacity(0);
        build(&mut object);
        String::from_utf8(object.finish()).unwrap()
    }

    /// Expectations printed by CPython 3 `json.dumps` (default arguments).
    #[test]
    fn strings_as_python_writes_them() {
        assert_eq!(
            object(|o| {
                o.string(
                    "s",
                    "a\"b\\c/d\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}\u{e9}\u{2026}\u{a0}\u{1F600} end",
                );
            }),
            r#"{"s": "a\"b\\c/d\n\r\t\b\f\u0001\u001f\u007f\u00e9\u2026\u00a0\ud83d\ude00 end"}"#
        );
        assert_eq!(
            object(|o| {
                o.integer("a", 1);
                o.float("b", 2.0);
                o.string("c", "x");
                o.string("d", "");
            }),
            r#"{"a": 1, "b": 2.0, "c": "x", "d": ""}"#
        );
        assert_eq!(
            object(|o| {
                o.integer("z", 0);
                o.integer("m", u64::MAX);
                o.integer("t", 1_000_000);
            }),
            r#"{"z": 0, "m": 18446744073709551615, "t": 1000000}"#
        );
        assert_eq!(object(|_| {}), "{}");
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
            // Two shortest candidates, .2 and .3, equally near: Python writes the even one
            // (`Display` writes .3).
            (1_902_313_706_282_076.2, "1902313706282076.2"),
        ] {
            let mut text = "x".to_string();
            write_float(&mut text, value);
            assert_eq!(text, format!("x{want}"), "{value:e}");
        }
    }

    /// Without an exponent, ryu's digits are `Display`'s, with `.0` on integral values,
    /// wherever the shortest digits are one number: the generator's own six-significant-digit
    /// coordinates, and random values of up to 15 significant digits over the whole range.
    /// (At a tie of two 17-digit candidates the two differ, and ryu's is Python's: see
    /// [`floats_as_python_writes_them`].)
    #[test]
    fn plain_floats_are_display_s_digits() {
        use rand::{Rng, SeedableRng};
        let rng = &mut rand_pcg::Pcg64Mcg::seed_from_u64(5);
        let coordinates = (0..200_000)
            .map(|i| super::super::round_significant(-180.0 + f64::from(i) * 0.0018, 6));
        let random = (0..200_000).map(|_| {
            let digits = rng.random_range(1..=15);
            let mantissa = rng.random_range(1..10u64.pow(digits));
            let exponent = rng.random_range(-4 - i32::try_from(digits).unwrap()..16);
            format!("{mantissa}e{exponent}").parse::<f64>().unwrap()
        });
        for value in coordinates
            .chain(random)
            .filter(|v| (1e-4..1e16).contains(&v.abs()) || *v == 0.0)
            .flat_map(|v| [v, -v])
        {
            let mut want = value.to_string();
            if !want.contains('.') {
                want.push_str(".0");
            }
            let mut text = String::new();
            write_float(&mut text, value);
            assert_eq!(text, want, "{value:e}");
        }
    }

    /// Every byte, at every place in and after the first eight-byte word.
    #[test]
    fn plain_prefix_stops_at_the_first_byte_to_escape() {
        for byte in 0..=255u8 {
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 24] {
                for at in 0..=len {
                    let mut bytes = vec![b'a'; len];
                    if at < len {
                        bytes[at] = byte;
                    }
                    let want = bytes.iter().position(|&b| !is_plain(b)).unwrap_or(len);
                    assert_eq!(plain_prefix(&bytes), want, "{byte:#x} at {at} of {len}");
                }
            }
        }
        // Neighbours of the edges in one word (borrows between bytes must not hide them).
        for word in [
            *b"\x1f !~\x7f\x80ab",
            *b"\x00\x01 #[]}~",
            *b"!#[]} ~\x1f",
            *b"\x21\x23\x5b\x5d\x7e\x20\x20\x22",
        ] {
            let want = word.iter().position(|&b| !is_plain(b)).unwrap_or(8);
            assert_eq!(plain_prefix(&word), want, "{word:?}");
        }
    }

    #[test]
    fn datetimes_as_python_str_writes_them() {
        let at = chrono::NaiveDate::from_ymd_opt(2020, 2, 29)
            .and_then(|d| d.and_hms_opt(1, 1, 1))
            .unwrap();
        assert_eq!(
            object(|o| o.datetime("at", at)),
            r#"{"at": "2020-02-29 01:01:01"}"#
        );
        // Digit by digit as chrono's `Display` (Python's `str`) writes them, inside and outside
        // the years written by hand.
        for seconds in (-70_000_000_000..300_000_000_000).step_by(987_654_321) {
            let at = chrono::DateTime::from_timestamp(seconds, 0)
                .unwrap()
                .naive_utc();
            let mut text = String::new();
            write_datetime(&mut text, at);
            assert_eq!(text, at.to_string());
        }
    }
}
