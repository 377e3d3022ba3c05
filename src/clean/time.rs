//! Timestamp parsing (SPEC §1, §2): text -> microseconds since the Unix epoch, UTC.
//!
//! Accepted: `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`, optional fractional seconds
//! (any number of digits; microsecond precision is kept, further digits are truncated), then
//! optionally `Z`, `+HH:MM`/`-HH:MM` or `+HHMM`/`-HHMM`. No offset means UTC. White space
//! around the whole text is ignored. Anything else, including dates that do not exist
//! (`2021-02-30`) and leap seconds (`:60`), is rejected.
//!
//! A small hand parser: one pass over the bytes, no allocation; it runs for every geo and
//! user message.

use super::Micros;

/// Parses `text` to UTC microseconds since the epoch; `None` when it is not a timestamp.
pub(crate) fn parse_timestamp(text: &str) -> Option<Micros> {
    let b = text.trim().as_bytes();
    if b.len() < 19 {
        return None;
    }
    let year = digits(&b[0..4])?;
    expect(b[4], b'-')?;
    let month = digits(&b[5..7])?;
    expect(b[7], b'-')?;
    let day = digits(&b[8..10])?;
    if !matches!(b[10], b' ' | b'T' | b't') {
        return None;
    }
    let hour = digits(&b[11..13])?;
    expect(b[13], b':')?;
    let minute = digits(&b[14..16])?;
    expect(b[16], b':')?;
    let second = digits(&b[17..19])?;

    let mut rest = &b[19..];
    let mut micros: i64 = 0;
    if let Some((b'.', fraction)) = rest.split_first() {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let mut scale = 100_000;
        for &c in fraction.iter().take(n.min(6)) {
            micros += i64::from(c - b'0') * scale;
            scale /= 10;
        }
        rest = &fraction[n..];
    }
    let offset_seconds = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h @ .., b':', m1, m2] | [sign @ (b'+' | b'-'), h @ .., m1, m2]
            if h.len() == 2 =>
        {
            let hours = digits(h)?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };

    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * 1_000_000 + micros)
}

fn expect(byte: u8, wanted: u8) -> Option<()> {
    (byte == wanted).then_some(())
}

/// The value of a run of ASCII digits (at most 4 here, so no overflow).
fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0i64, |value, &c| {
        c.is_ascii_digit().then(|| value * 10 + i64::from(c - b'0'))
    })
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    use proptest::prelude::*;

    fn utc(text: &str) -> Micros {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    #[test]
    fn accepted_formats() {
        let cases: &[(&str, Micros)] = &[
            ("1970-01-01 00:00:00", 0),
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01 00:00:01", 1_000_000),
            ("1969-12-31 23:59:59", -1_000_000),
            ("2022-07-07 00:18:41", utc("2022-07-07 00:18:41")),
            ("2022-07-07T00:18:41", utc("2022-07-07 00:18:41")),
            ("2022-07-07t00:18:41z", utc("2022-07-07 00:18:41")),
            ("2022-07-07 00:18:41Z", utc("2022-07-07 00:18:41")),
            ("  2022-07-07 00:18:41 \n", utc("2022-07-07 00:18:41")),
            ("2022-07-07T00:18:41.5", utc("2022-07-07 00:18:41.5")),
            (
                "2022-07-07T00:18:41.123456Z",
                utc("2022-07-07 00:18:41.123456"),
            ),
            // Beyond microseconds: truncated, not rounded.
            (
                "2022-07-07T00:18:41.1234569Z",
                utc("2022-07-07 00:18:41.123456"),
            ),
            (
                "2022-07-07T00:18:41.999999999",
                utc("2022-07-07 00:18:41.999999"),
            ),
            ("2022-07-07T00:18:41.000", utc("2022-07-07 00:18:41")),
            // Offsets convert to UTC.
            ("2022-07-07T02:18:41+02:00", utc("2022-07-07 00:18:41")),
            ("2022-07-07T02:18:41+0200", utc("2022-07-07 00:18:41")),
            ("2022-07-06T22:48:41-01:30", utc("2022-07-07 00:18:41")),
            ("2022-07-07 00:18:41+00:00", utc("2022-07-07 00:18:41")),
            ("2022-07-07 00:18:41-00:00", utc("2022-07-07 00:18:41")),
            (
                "2022-01-01T00:30:00.25+01:00",
                utc("2021-12-31 23:30:00.25"),
            ),
            // Calendar edges.
            ("2020-02-29 12:00:00", utc("2020-02-29 12:00:00")),
            ("2000-02-29 12:00:00", utc("2000-02-29 12:00:00")),
            ("2021-12-31 23:59:59", utc("2021-12-31 23:59:59")),
            ("0000-01-01 00:00:00", utc("0000-01-01 00:00:00")),
            (
                "9999-12-31 23:59:59.999999",
                utc("9999-12-31 23:59:59.999999"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_timestamp(text), Some(*expected), "{text:?}");
        }
    }

    #[test]
    fn rejected_texts() {
        for text in [
            "",
            "   ",
            "yesterday",
            "2021-02-30 00:00:00",
            "2021-02-29 00:00:00",
            "1900-02-29 00:00:00",
            "2021-04-31 00:00:00",
            "2021-13-01 00:00:00",
            "2021-00-01 00:00:00",
            "2021-01-00 00:00:00",
            "2021-01-32 00:00:00",
            "2021-01-01 24:00:00",
            "2021-01-01 23:60:00",
            "2021-01-01 23:59:60",
            "2021-01-01",
            "2021-01-01 00:00",
            "2021-1-01 00:00:00",
            "21-01-01 00:00:00",
            "2021/01/01 00:00:00",
            "2021-01-01_00:00:00",
            "2021-01-01 00:00:00.",
            "2021-01-01 00:00:00.x",
            "2021-01-01 00:00:00,5",
            "2021-01-01 00:00:00 Z",
            "2021-01-01 00:00:00ZZ",
            "2021-01-01 00:00:00+2",
            "2021-01-01 00:00:00+02",
            "2021-01-01 00:00:00+2:00",
            "2021-01-01 00:00:00+24:00",
            "2021-01-01 00:00:00+02:60",
            "2021-01-01 00:00:00+02:00:00",
            "2021-01-01 00:00:00 UTC",
            "+2021-01-01 00:00:00",
            "2021-01-01 00:00:00.5.5",
            "２０２１-01-01 00:00:00",
            "1609459200",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_timestamp(&text);
        }

        #[test]
        fn never_panics_near_the_format(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[ Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:?[0-9]{2})?") {
            let _ = parse_timestamp(&text);
        }

        /// Agrees with chrono on every valid date-time, offset and fraction.
        #[test]
        fn agrees_with_chrono(
            days in -719_162i64..2_932_896,
            second_of_day in 0i64..86_400,
            nanos in 0u32..1_000_000_000,
            offset_minutes in -1439i32..=1439,
            t in prop::bool::ANY,
        ) {
            let date = NaiveDate::from_num_days_from_ce_opt((days + 719_163) as i32).unwrap();
            let naive = date
                .and_hms_nano_opt((second_of_day / 3600) as u32, (second_of_day / 60 % 60) as u32, (second_of_day % 60) as u32, nanos)
                .unwrap();
            let sign = if offset_minutes < 0 { '-' } else { '+' };
            let abs = offset_minutes.abs();
            let text = format!(
                "{}{}{sign}{:02}:{:02}",
                naive.format("%Y-%m-%d"),
                naive.format(if t { "T%H:%M:%S%.9f" } else { " %H:%M:%S%.9f" }),
                abs / 60,
                abs % 60,
            );
            let expected = DateTime::parse_from_rfc3339(&text.replace(' ', "T")).unwrap().timestamp_micros();
            // chrono rounds nothing: %.9f then timestamp_micros truncates, like we do.
            prop_assert_eq!(parse_timestamp(&text), Some(expected), "{}", text);
        }
    }
}
