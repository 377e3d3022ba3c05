//! Stream `user` -> table `user` (SPEC §2).

use serde::Deserialize;

use super::field::Field;
use super::geo::timestamp;
use super::{Reason, UserRow, parse_object};

#[derive(Deserialize)]
struct RawUser<'a> {
    #[serde(borrow, default)]
    ind: Field<'a>,
    #[serde(borrow, default)]
    first_name: Field<'a>,
    #[serde(borrow, default)]
    last_name: Field<'a>,
    #[serde(borrow, default)]
    age: Field<'a>,
    #[serde(borrow, default)]
    date_joined: Field<'a>,
}

const AGES: std::ops::RangeInclusive<i64> = 0..=150;

/// Fields are checked in the order of SPEC §1; the first bad one names the reason.
pub(crate) fn clean(json: &str) -> Result<UserRow, Reason> {
    let raw: RawUser = parse_object(json)?;
    let ind = raw.ind.int("ind")?;
    let first_name = raw.first_name.required_text("first_name")?;
    let last_name = raw.last_name.required_text("last_name")?;
    let age = raw.age.int("age")?;
    if !AGES.contains(&age) {
        return Err(Reason::AgeOutOfRange(age));
    }
    let date_joined = timestamp(raw.date_joined, "date_joined")?;
    let mut user_name = String::with_capacity(first_name.len() + 1 + last_name.len());
    user_name.push_str(&first_name);
    user_name.push(' ');
    user_name.push_str(&last_name);
    Ok(UserRow {
        ind,
        user_name,
        age: age as i32,
        date_joined,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clean::text::NULL_MARKERS;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    /// 2015-10-21 21:26:45 UTC.
    const MICROS: i64 = 1_445_462_805_000_000;

    fn valid() -> Map<String, Value> {
        let Value::Object(map) = json!({
            "ind": 7,
            "first_name": "Ann",
            "last_name": "Example",
            "age": 20,
            "date_joined": "2015-10-21 21:26:45"
        }) else {
            unreachable!()
        };
        map
    }

    fn expected() -> UserRow {
        UserRow {
            ind: 7,
            user_name: "Ann Example".into(),
            age: 20,
            date_joined: MICROS,
        }
    }

    fn run(map: &Map<String, Value>) -> Result<UserRow, Reason> {
        clean(&serde_json::to_string(map).unwrap())
    }

    fn with(key: &str, value: Value) -> Result<UserRow, Reason> {
        let mut map = valid();
        map.insert(key.into(), value);
        run(&map)
    }

    const FIELDS: [&str; 5] = ["ind", "first_name", "last_name", "age", "date_joined"];

    #[test]
    fn valid_record_and_extra_fields() {
        assert_eq!(run(&valid()), Ok(expected()));
        let mut map = valid();
        map.insert("user_name".into(), json!("Someone Else"));
        assert_eq!(run(&map), Ok(expected()));
    }

    #[test]
    fn every_missing_field_is_named() {
        for field in FIELDS {
            let mut map = valid();
            map.remove(field);
            assert_eq!(run(&map), Err(Reason::MissingField(field)), "{field}");
        }
    }

    #[test]
    fn names() {
        for field in ["first_name", "last_name"] {
            assert_eq!(with(field, Value::Null), Err(Reason::NullField(field)));
            for marker in NULL_MARKERS {
                assert_eq!(
                    with(field, json!(marker)),
                    Err(Reason::NullField(field)),
                    "{marker:?}"
                );
                let padded = format!("\t{marker} ");
                assert_eq!(with(field, json!(padded)), Err(Reason::NullField(field)));
            }
            for value in [json!(true), json!(["Ann"]), json!({"a": "b"})] {
                assert_eq!(
                    with(field, value),
                    Err(Reason::WrongType {
                        field,
                        expected: "string"
                    })
                );
            }
        }
        // Kept as given, joined by one space.
        let mut map = valid();
        map.insert("first_name".into(), json!(" Ann"));
        map.insert("last_name".into(), json!(42));
        assert_eq!(run(&map).unwrap().user_name, " Ann 42");
    }

    #[test]
    fn age_bounds() {
        let cases: Vec<(Value, Result<i32, Reason>)> = vec![
            (json!(0), Ok(0)),
            (json!(150), Ok(150)),
            (json!(42), Ok(42)),
            (json!("42"), Ok(42)),
            (json!(42.0), Ok(42)),
            (json!(-1), Err(Reason::AgeOutOfRange(-1))),
            (json!(151), Err(Reason::AgeOutOfRange(151))),
            (json!(i64::MIN), Err(Reason::AgeOutOfRange(i64::MIN))),
            (json!("151"), Err(Reason::AgeOutOfRange(151))),
            (
                json!(u64::MAX),
                Err(Reason::IntegerOverflow { field: "age" }),
            ),
            (
                json!(42.5),
                Err(Reason::WrongType {
                    field: "age",
                    expected: "integer",
                }),
            ),
            (
                json!("forty"),
                Err(Reason::WrongType {
                    field: "age",
                    expected: "integer",
                }),
            ),
            (Value::Null, Err(Reason::NullField("age"))),
        ];
        for (value, expected) in cases {
            assert_eq!(
                with("age", value.clone()).map(|r| r.age),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn date_joined() {
        assert_eq!(
            with("date_joined", json!("2015-10-21T23:26:45+02:00")),
            Ok(expected())
        );
        assert_eq!(
            with("date_joined", json!("2015-10-21T21:26:45.123Z")).map(|r| r.date_joined),
            Ok(MICROS + 123_000)
        );
        assert_eq!(
            with("date_joined", json!("2015-02-29 00:00:00")),
            Err(Reason::InvalidTimestamp {
                field: "date_joined"
            })
        );
        assert_eq!(
            with("date_joined", Value::Null),
            Err(Reason::NullField("date_joined"))
        );
    }

    fn valid_user() -> impl Strategy<Value = (Map<String, Value>, UserRow)> {
        let name = "[A-Za-z][A-Za-z' -]{0,15}";
        (
            any::<i64>(),
            name,
            name,
            0i64..=150,
            -2_208_988_800i64..4_102_444_800,
            prop::bool::ANY,
        )
            .prop_map(|(ind, first, last, age, seconds, iso)| {
                let time = chrono::DateTime::from_timestamp(seconds, 0).unwrap();
                let format = if iso {
                    "%Y-%m-%dT%H:%M:%SZ"
                } else {
                    "%Y-%m-%d %H:%M:%S"
                };
                let mut map = Map::new();
                map.insert("ind".into(), json!(ind));
                map.insert("first_name".into(), json!(first));
                map.insert("last_name".into(), json!(last));
                map.insert(
                    "age".into(),
                    if iso {
                        json!(age.to_string())
                    } else {
                        json!(age)
                    },
                );
                map.insert("date_joined".into(), json!(time.format(format).to_string()));
                let row = UserRow {
                    ind,
                    user_name: format!("{first} {last}"),
                    age: age as i32,
                    date_joined: seconds * 1_000_000,
                };
                (map, row)
            })
    }

    proptest! {
        #[test]
        fn valid_records_clean_to_the_expected_row((map, row) in valid_user()) {
            prop_assert_eq!(run(&map), Ok(row));
        }

        #[test]
        fn mutated_records_never_panic(
            (map, _) in valid_user(),
            changes in prop::collection::vec((prop::sample::select(FIELDS.to_vec()), prop::option::of(crate::clean::pin::tests::any_value())), 0..4),
        ) {
            let mut map = map;
            for (field, value) in changes {
                match value {
                    Some(value) => map.insert(field.into(), value),
                    None => map.remove(field),
                };
            }
            let _ = run(&map);
        }
    }
}
